"""`otklik import`, `otklik export` and `otklik demo`: bulk data with progress bars."""

from __future__ import annotations

import csv
import io
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from otklik.cli.context import engine_and_settings
from otklik.config import Settings
from otklik.ingest.repository import count_pending
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError
from otklik.kit.migrate import upgrade
from otklik.kit.time import utc_now
from otklik.models import Workspace
from otklik.offline import repository as exports
from otklik.offline.service import ImportReport, event_rows, run_import, store
from otklik.users import service as users
from otklik.users.roles import ROLES
from otklik.worker.resolver_loop import ResolverLoop
from otklik.workspaces import service as workspaces

console = Console(stderr=True)


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def workspace_or_exit(engine: Engine, slug: str) -> Workspace:
    with session_scope(engine, write=False) as session:
        try:
            return workspaces.find_workspace(session, slug)
        except AppError as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(2) from exc


def resolve_all(engine: Engine, settings: Settings) -> None:
    """Turn everything pending into profiles, with a progress bar."""
    with engine.connect() as conn:
        total = count_pending(conn)
    if not total:
        return
    loop = ResolverLoop(engine, settings)
    with progress() as bar:
        task = bar.add_task("resolving profiles", total=total)
        while taken := loop.run_once():
            bar.advance(task, taken)


def import_command(
    kind: str = typer.Argument(..., help="customers or orders"),
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, JSON or JSONL file"),
    workspace: str = typer.Option(..., "--workspace", "-w", help="Workspace slug"),
    fmt: str = typer.Option("", "--format", help="csv, json or jsonl (default: by extension)"),
    errors: Path | None = typer.Option(None, help="Write the rejected rows and reasons here (CSV)"),
) -> None:
    """Import customers or orders idempotently; bad rows are reported, good rows imported."""
    engine, settings = engine_and_settings()
    upgrade(engine)
    ws = workspace_or_exit(engine, workspace)
    data = path.read_bytes()
    fmt = fmt or {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix, "csv")
    with progress() as bar:
        task = bar.add_task(f"importing {kind}", total=None)
        try:
            report = run_import(
                engine,
                ws.id,
                kind,
                data,
                fmt,
                region=ws.default_region,
                currency=ws.currency,
                now=utc_now(),
                progress=lambda n: bar.advance(task, n),
            )
        except AppError as exc:
            console.print(f"[red]{exc.code}[/]: {exc.message}")
            raise typer.Exit(2) from exc
        bar.update(task, total=report.accepted, completed=report.accepted)
    resolve_all(engine, settings)
    print_report(report)
    if errors is not None:
        write_errors(report, errors)
        console.print(f"rejected rows written to {errors}")


def print_report(report: ImportReport) -> None:
    console.print(
        f"{report.kind}: {report.rows} rows read, {report.accepted} accepted "
        f"({report.stored} new, {report.unchanged} unchanged), {len(report.rejected)} rejected"
    )
    if report.rejected:
        table = Table("row", "code", "field", "reason", title="Rejected rows (first 20)")
        for error in report.rejected[:20]:
            table.add_row(str(error.row), error.code, error.field or "", error.message)
        console.print(table)


def write_errors(report: ImportReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "code", "field", "message"])
        for error in report.rejected:
            writer.writerow([error.row, error.code, error.field or "", error.message])


def export_command(
    what: str = typer.Argument(..., help="profiles or events"),
    workspace: str = typer.Option(..., "--workspace", "-w"),
    out: Path | None = typer.Option(None, help="Output file (default: standard output)"),
) -> None:
    """Export profiles (with identifiers) or the raw event log as JSON lines."""
    if what not in ("profiles", "events"):
        console.print("[red]export profiles or events[/]")
        raise typer.Exit(2)
    engine, _ = engine_and_settings()
    upgrade(engine)  # a database never migrated has no workspace: say so, not "no such table"
    ws = workspace_or_exit(engine, workspace)
    if what == "profiles":
        total, pages = exports.count_profiles(engine, ws.id), exports.profile_pages(engine, ws.id)
    else:
        total, pages = exports.count_events(engine, ws.id), exports.event_pages(engine, ws.id)
    handle: Any = out.open("wb") if out else sys.stdout.buffer
    try:
        with progress() as bar:
            task = bar.add_task(f"exporting {what}", total=total)
            for page in pages:
                handle.write(b"".join(orjson.dumps(item) + b"\n" for item in page))
                bar.advance(task, len(page))
    except BrokenPipeError:
        # `otklik export events | head`: the reader has all it wanted; that is not an error.
        sys.stderr.close()
        raise typer.Exit(0) from None
    finally:
        if out:
            handle.close()


def demo_command(
    customers: int = typer.Option(2000, help="Online customers to simulate"),
    seed: int = typer.Option(42, help="Same seed, same shop"),
    workspace: str = typer.Option("demo", help="Workspace slug"),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if already loaded"),
) -> None:
    """Load a realistic demo shop: visits, carts, orders, sign-ups, offline POS data."""
    from otklik.demo.generator import (
        DemoConfig,
        customers_csv_rows,
        generate_events,
        orders_csv_rows,
    )

    engine, settings = engine_and_settings()
    upgrade(engine)
    ws = _demo_workspace(engine, workspace)
    if if_empty and exports.count_events(engine, ws.id):
        console.print(f"demo workspace [bold]{workspace}[/] already has data; skipping")
        return
    cfg = DemoConfig(customers=customers, seed=seed)
    with progress() as bar:
        task = bar.add_task("generating and storing events", total=None)
        chunk: list[dict[str, Any]] = []
        for message in generate_events(cfg):
            chunk.append(message)
            if len(chunk) == 5000:
                store(engine, event_rows(ws.id, chunk, utc_now()), lambda n: bar.advance(task, n))
                chunk = []
        store(engine, event_rows(ws.id, chunk, utc_now()), lambda n: bar.advance(task, n))
        bar.update(task, total=bar.tasks[0].completed)
    for kind, rows in (("customers", customers_csv_rows(cfg)), ("orders", orders_csv_rows(cfg))):
        report = run_import(
            engine,
            ws.id,
            kind,
            _csv_bytes(list(rows)),
            "csv",
            region=ws.default_region,
            currency=ws.currency,
            now=utc_now(),
        )
        print_report(report)
    resolve_all(engine, settings)
    from otklik.demo.messaging import load_messaging

    sent = load_messaging(engine, settings, ws.id, seed)
    console.print(f"demo messaging: providers (log only), templates, consents; {sent} sent")
    from otklik.demo.insights import fit_models

    fit = fit_models(engine, ws.id)
    console.print(f"demo customer models: {fit.status}, {fit.scored} customers scored")
    from otklik.demo.segments import load_segments

    with progress() as bar:
        task = bar.add_task("building demo segments", total=3)
        made, skipped = load_segments(
            engine, settings, ws.id, lambda stage, step, of: bar.update(task, completed=step)
        )
    console.print(f"demo segments: {made} built")
    for line in skipped:
        console.print(f"[yellow]segment skipped[/] {line}")
    console.print(f"[green]demo shop loaded[/] into workspace [bold]{workspace}[/]")


def _demo_workspace(engine: Engine, slug: str) -> Workspace:
    with session_scope(engine) as session:
        try:
            return workspaces.find_workspace(session, slug)
        except AppError:
            pass
        ws, write, secret = workspaces.create_workspace(
            session, name="Demo shop", slug=slug, timezone="Europe/Moscow"
        )
        password = os.environ.get("OTKLIK_DEMO_PASSWORD") or secrets.token_urlsafe(12)
        for role in ROLES:
            users.add_member(
                session, ws.id, email=f"{role}@example.com", role=role, password=password
            )
    keys = Path(os.environ.get("OTKLIK_DEMO_KEYS", "var/demo-keys.txt"))
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text(
        f"write_key={write.token}\nsecret_key={secret.token}\n"
        f"console_users={','.join(f'{role}@example.com' for role in ROLES)}\n"
        f"console_password={password}\n"
    )
    keys.chmod(0o600)
    console.print(f"created workspace [bold]{slug}[/]; its keys are in {keys} (shown once here):")
    console.print(f"  write key  (SDKs):     {write.token}")
    console.print(f"  secret key (REST API): {secret.token}")
    console.print(f"  console: admin@example.com (also marketer@, operator@, viewer@) / {password}")
    return ws


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    if not rows:
        return b""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
