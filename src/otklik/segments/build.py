"""A full build of one segment: one set-based query, then the difference applied at once.

The members are first computed into a temporary table while holding no write lock (on
SQLite a temporary table lives in its own file, so ingest keeps committing meanwhile);
then, in one short write transaction, the difference with the current members is applied.
Readers see either the old members or the new ones, never a half-built segment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    Table,
    Uuid,
    func,
    insert,
    select,
)

from otklik.kit.db import write_tx, writer_turn
from otklik.models.base import UTCDateTime
from otklik.segments import behaviour as b
from otklik.segments import compiler as c
from otklik.segments import context as cx
from otklik.segments import repository as repo
from otklik.segments import rules as r
from otklik.segments import schedule
from otklik.segments.evaluate import Changes, Compiled, tell

Progress = Callable[[str, int, int], None]  # stage, step, of
STAGES = ("evaluating", "applying", "scheduling")


@dataclass(frozen=True)
class BuildResult:
    segment_id: uuid.UUID
    members: int
    entered: int
    exited: int
    build_ms: int
    applied: bool  # False when the rules changed during the build (it will run again)


def _quiet(stage: str, step: int, of: int) -> None:
    return None


def build(
    engine: Engine,
    segment: Compiled,
    base: cx.Context,
    *,
    first_build: bool,
    progress: Progress = _quiet,
) -> BuildResult:
    started = time.perf_counter()
    temporary = _Temporary()
    staging = temporary.table(Column("profile_id", Uuid, primary_key=True))
    with engine.connect() as conn:
        try:
            progress(STAGES[0], 1, len(STAGES))
            with conn.begin():
                ctx = _with_totals(conn, segment, segment.context(base), temporary)
                staging.create(conn)
                members = c.members(segment.rules, ctx)
                conn.execute(insert(staging).from_select(["profile_id"], members))
                dues = _dues(conn, segment, ctx, temporary)
            progress(STAGES[1], 2, len(STAGES))
            with writer_turn(engine):
                conn = conn.execution_options(write=True, durable=False)
                with conn.begin():
                    result = _apply(
                        conn, segment, base, staging, dues, first_build, started, progress
                    )
            return result
        finally:
            conn = conn.execution_options(write=False)
            with conn.begin():
                for table in temporary.tables:
                    table.drop(conn, checkfirst=True)


class _Temporary:
    """The build's temporary tables, named apart (several builds may run at once)."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self.prefix = f"segment_build_{uuid.uuid4().hex[:12]}"

    def table(self, *columns: Column[Any]) -> Table:
        name = f"{self.prefix}_{len(self.tables)}"
        made = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
        self.tables.append(made)
        return made


def _with_totals(
    conn: Connection, segment: Compiled, ctx: cx.Context, temporary: _Temporary
) -> cx.Context:
    """Each time-relative event condition's totals, computed once for members and due times."""
    if not segment.analysis.time_relative:
        return ctx
    totals: dict[int, Table] = {}
    for _path, node in r.walk(segment.rules):
        if isinstance(node, r.EventRule) and node.within_days:
            table = temporary.table(
                Column("profile_id", Uuid, primary_key=True),
                Column("total", Float),
                Column("oldest", Float),
            )
            table.create(conn)
            source = b.event_aggregate(node, ctx)
            conn.execute(insert(table).from_select(["profile_id", "total", "oldest"], source))
            totals[id(node)] = table
    return replace(ctx, totals=totals)


def _dues(
    conn: Connection, segment: Compiled, ctx: cx.Context, temporary: _Temporary
) -> Table | None:
    """The due times, computed before the write lock is taken (they only read)."""
    if not segment.analysis.time_relative:
        return None
    table = temporary.table(
        Column("profile_id", Uuid, primary_key=True), Column("due_at", UTCDateTime())
    )
    table.create(conn)
    rows = schedule.due_rows(schedule.candidates(segment.rules, ctx), ctx)
    if rows is not None:
        conn.execute(insert(table).from_select(["profile_id", "due_at"], rows))
    return table


def _apply(
    conn: Connection,
    segment: Compiled,
    base: cx.Context,
    staging: Table,
    dues: Table | None,
    first_build: bool,
    started: float,
    progress: Progress,
) -> BuildResult:
    row = conn.execute(
        select(repo.SEGMENT.c.version).where(repo.SEGMENT.c.id == segment.id)
    ).first()
    if row is None or row.version != segment.version:
        return BuildResult(segment.id, 0, 0, 0, 0, applied=False)
    now = base.now
    changes = Changes()
    if not first_build:
        # Told as events (journeys start on them), so the ids are needed; a first build
        # records its members quietly: a journey on "entered" must not fire for everyone
        # who already qualified the moment the segment is saved.
        current = repo.members_select(segment.id)
        entering = select(staging.c.profile_id).where(staging.c.profile_id.not_in(current))
        leaving = current.where(repo.MEMBERSHIP.c.profile_id.not_in(select(staging.c.profile_id)))
        changes.entered = [(segment.id, pid) for (pid,) in conn.execute(entering)]
        changes.exited = [(segment.id, pid) for (pid,) in conn.execute(leaving)]
    entered, exited = apply_difference(conn, base.workspace_id, segment.id, staging, now)
    if not first_build:
        tell(conn, base.workspace_id, {segment.id: segment.name}, changes, now)
    members = int(conn.execute(select(func.count()).select_from(staging)).scalar() or 0)
    progress(STAGES[2], 3, len(STAGES))
    values: dict[str, Any] = {"state": "ready", "members_count": members, "build_error": None}
    if dues is not None:
        repo.replace_all_dues(conn, base.workspace_id, segment.id, select(dues))
    if segment.analysis.calendar:
        values["next_sweep_at"] = schedule.next_midnight(now)
    elapsed = int((time.perf_counter() - started) * 1000)
    values.update(built_at=now, build_ms=elapsed)
    repo.update_segment(conn, segment.id, values)
    return BuildResult(segment.id, members, entered, exited, elapsed, applied=True)


def apply_difference(
    conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID, staging: Table, now: datetime
) -> tuple[int, int]:
    """Exits, then entries, each one set-based statement against the staged members."""
    staged = select(staging.c.profile_id)
    exited = repo.leave_all_but(conn, segment_id, staged, now)
    entered = repo.enter_all_new(conn, workspace_id, segment_id, staged, now)
    return entered, exited


def mark_failed(engine: Engine, segment_id: uuid.UUID, error: str, when: datetime) -> None:
    with write_tx(engine, durable=False) as conn:
        repo.update_segment(
            conn, segment_id, {"state": "failed", "build_error": error[:2000], "built_at": when}
        )
