"""`otklik` commands: serve, migrate, workspace, demo, import, export, bench."""

from __future__ import annotations

import typer
from rich.console import Console

from otklik.cli.context import engine_and_settings
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError
from otklik.kit.migrate import upgrade
from otklik.workspaces import service as workspaces

app = typer.Typer(help="Otklik: customer data platform and engagement.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants) and their keys.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
console = Console()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    engine, _ = engine_and_settings()
    upgrade(engine)
    console.print(f"[green]Schema is up to date[/] ({engine.url.render_as_string()})")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: bool | None = typer.Option(
        None, help="Run background work in this process (default: OTKLIK_EMBEDDED_WORKER, on)"
    ),
    processes: int = 1,
) -> None:
    """Run everything in one process: API, ingest, and background work (embedded mode)."""
    import os

    import uvicorn

    if workers is not None:
        os.environ["OTKLIK_EMBEDDED_WORKER"] = "true" if workers else "false"
    engine, _ = engine_and_settings()
    upgrade(engine)
    engine.dispose()
    uvicorn.run(
        "otklik.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=processes if processes > 1 else None,
        log_level="info",
        access_log=False,
    )


@app.command()
def api(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    processes: int = typer.Option(1, help="API processes sharing the port (PostgreSQL)"),
) -> None:
    """Scale-out mode: serve the API and ingest only; run `otklik worker` elsewhere."""
    serve(host=host, port=port, workers=False, processes=processes)


@app.command()
def worker(
    resolve: bool = typer.Option(True, help="Resolve stored events into profiles"),
    deliver: bool = typer.Option(True, help="Send messages from the task queue"),
    dispatch: bool = typer.Option(True, help="Queue due, retried and orphaned messages"),
    segments: bool = typer.Option(True, help="Keep segments current (one loop runs at a time)"),
) -> None:
    """Scale-out mode: background work; any number may run, on any machines."""
    import signal
    import threading

    from otklik.delivery.runtime import DeliveryRuntime
    from otklik.worker.resolver_loop import ResolverLoop
    from otklik.worker.segment_loop import SegmentLoop

    engine, settings = engine_and_settings()
    loop = ResolverLoop(engine, settings)
    segment_loop = SegmentLoop(engine, settings)
    loop.on_batch = segment_loop.wake
    delivery = DeliveryRuntime(engine, settings)
    if resolve:
        loop.start()
    if segments:
        segment_loop.start()
    delivery.start(consume=deliver, dispatch=dispatch)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(
        f"[green]worker running[/] (resolve={resolve}, deliver={deliver}, dispatch={dispatch},"
        f" queue={settings.queue_backend}); Ctrl-C to stop"
    )
    stop.wait()
    loop.stop()
    segment_loop.stop()
    delivery.stop()


@workspace_app.command("create")
def workspace_create(
    slug: str,
    name: str = typer.Option("", help="Display name (defaults to the slug)"),
    timezone: str = typer.Option("Europe/Moscow"),
    region: str = typer.Option("RU", help="Default phone region"),
    currency: str = typer.Option("RUB"),
) -> None:
    """Create a workspace and print its first write key and secret key (shown once)."""
    engine, _ = engine_and_settings()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            ws, write, secret = workspaces.create_workspace(
                session,
                name=name or slug,
                slug=slug,
                timezone=timezone,
                default_region=region,
                currency=currency,
            )
    except AppError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(2) from exc
    console.print(f"workspace [bold]{ws.slug}[/] {ws.id}")
    console.print(f"write key  (SDKs):     {write.token}")
    console.print(f"secret key (REST API): {secret.token}")


@workspace_app.command("list")
def workspace_list() -> None:
    engine, _ = engine_and_settings()
    with session_scope(engine, write=False) as session:
        for ws in workspaces.list_workspaces(session):
            console.print(f"{ws.slug}\t{ws.id}\t{ws.name}")


def register_extra_commands() -> None:
    """Commands defined in their own modules attach themselves here."""
    from otklik.cli import extra

    extra.register(app)


register_extra_commands()


if __name__ == "__main__":
    app()
