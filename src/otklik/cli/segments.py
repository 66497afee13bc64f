"""`otklik segments ...`: list segments and rebuild them with a progress bar."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from otklik.cli.context import engine_and_settings
from otklik.cli.data import progress, workspace_or_exit
from otklik.kit.db import read_tx, write_tx
from otklik.kit.migrate import upgrade
from otklik.kit.time import utc_now
from otklik.segments import repository as repo
from otklik.segments import service
from otklik.worker.segment_loop import SegmentLoop

segments_app = typer.Typer(help="Segments: list, rebuild.", no_args_is_help=True)
console = Console()
Workspace = typer.Option("demo", "--workspace", "-w", help="Workspace slug")


@segments_app.command("list")
def list_command(workspace: str = Workspace) -> None:
    """Every segment with its state, members and last build time."""
    engine, _ = engine_and_settings()
    upgrade(engine)
    ws = workspace_or_exit(engine, workspace)
    table = Table("name", "kind", "state", "members", "built", "build ms")
    with read_tx(engine) as conn:
        for row in repo.segments(conn, ws.id):
            built = row.built_at.strftime("%Y-%m-%d %H:%M") if row.built_at else "-"
            table.add_row(
                row.name,
                row.kind,
                row.state,
                f"{row.members_count:,}",
                built,
                str(row.build_ms or "-"),
            )
    console.print(table)


@segments_app.command("rebuild")
def rebuild_command(
    names: list[str] = typer.Argument(None, help="Segment names (all dynamic ones if none)"),
    workspace: str = Workspace,
) -> None:
    """Rebuild segments now (set-based), showing each one's progress and build time."""
    engine, settings = engine_and_settings()
    upgrade(engine)
    ws = workspace_or_exit(engine, workspace)
    with write_tx(engine) as conn:
        rows = [r for r in repo.segments(conn, ws.id) if r.kind == "dynamic"]
        chosen = [r for r in rows if not names or r.name in names]
        missing = set(names or []) - {r.name for r in chosen}
        if missing:
            console.print(f"[red]no dynamic segment named[/] {', '.join(sorted(missing))}")
            raise typer.Exit(2)
        for row in chosen:
            service.rebuild(conn, ws.id, row.id, utc_now())
    loop = SegmentLoop(engine, settings)
    with progress() as bar:
        task = bar.add_task(f"building {len(chosen)} segment(s)", total=3 * len(chosen))
        done = [0]

        def step(stage: str, at: int, of: int) -> None:
            done[0] += 1
            bar.update(task, completed=done[0], description=f"{stage}")

        loop.build_waiting(step)
    for result in loop.last_builds:
        name = next(r.name for r in chosen if r.id == result.segment_id)
        console.print(
            f"{name}: {result.members:,} members (+{result.entered:,} / -{result.exited:,})"
            f" in {result.build_ms:,} ms"
        )
