"""SQL for the live events debugger: the newest events and rejected input of one workspace.

Every read is bounded by a high-water mark taken first: the largest `seq` (or rejected `id`)
in the whole table at that moment. A page shows rows up to the mark and the next poll asks
only for rows above it, so a poll walks the primary key over the few rows that arrived in
the last seconds (across all workspaces) instead of the workspace's whole history, even when
this workspace is quiet and others are busy.

A row whose key was taken before the mark but committed after it (two writers racing on
PostgreSQL) is not shown by the live view; it is in the log and in the customer's timeline.
A debugger may lose such a row, never show one twice or another workspace's.

Plans (EXPLAIN, 300,000 events in two workspaces, SQLite and PostgreSQL 16): a page walks
ix_event_ws_received backwards (PostgreSQL adds an incremental sort on seq) and stops at the
limit; a poll is a primary-key range scan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, Table, func, or_, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from otklik.models import Event, RejectedEvent

REJECTED = cast(Table, RejectedEvent.__table__)
AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]

# The newest this many events of a workspace are searched when the view is filtered: a filter
# that matches nothing must not read the whole log on every page load.
FILTER_WINDOW = 5000

LIST_COLUMNS = (
    Event.seq,
    Event.message_id,
    Event.type,
    Event.name,
    Event.user_id,
    Event.anonymous_id,
    Event.received_at,
    Event.profile_id,
    Event.status,
)


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    name: str | None = None
    identifier: str | None = None  # part of a userId, anonymousId or messageId

    @property
    def active(self) -> bool:
        return bool(self.type or self.name or self.identifier)


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _no_index(conn: Connection, column: Any) -> Any:
    """The column wrapped so SQLite will not pick an index on it (`+column`).

    Without statistics SQLite prefers ix_event_ws_received's equality on workspace_id over the
    primary-key range, and would then read all of the workspace's events to find a few new
    ones. PostgreSQL chooses by its statistics and needs no such hint.
    """
    if not _sqlite(conn):
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _filtered(stmt: AnySelect, source: Any, flt: EventFilter) -> AnySelect:
    if flt.type:
        stmt = stmt.where(source.type == flt.type)
    if flt.name:
        stmt = stmt.where(source.name.icontains(flt.name, autoescape=True))
    if flt.identifier:
        text = flt.identifier
        stmt = stmt.where(
            or_(
                source.user_id.icontains(text, autoescape=True),
                source.anonymous_id.icontains(text, autoescape=True),
                source.message_id.icontains(text, autoescape=True),
            )
        )
    return stmt


def event_mark(conn: Connection) -> int:
    return int(conn.scalar(select(func.max(Event.seq))) or 0)


def newest_events(
    conn: Connection, workspace_id: uuid.UUID, upto: int, flt: EventFilter, limit: int
) -> list[AnyRow]:
    """The workspace's newest events up to `upto`, newest first (ix_event_ws_received)."""
    if not flt.active:
        stmt = (
            select(*LIST_COLUMNS)
            .where(Event.workspace_id == workspace_id, Event.seq <= upto)
            .order_by(Event.received_at.desc(), Event.seq.desc())
            .limit(limit)
        )
        return list(conn.execute(stmt).all())
    window = (
        select(*LIST_COLUMNS)
        .where(Event.workspace_id == workspace_id, Event.seq <= upto)
        .order_by(Event.received_at.desc(), Event.seq.desc())
        .limit(FILTER_WINDOW)
        .subquery("recent")
    )
    stmt = _filtered(select(window), window.c, flt)
    stmt = stmt.order_by(window.c.received_at.desc(), window.c.seq.desc()).limit(limit)
    return list(conn.execute(stmt).all())


def events_between(
    conn: Connection,
    workspace_id: uuid.UUID,
    after: int,
    upto: int,
    flt: EventFilter,
    limit: int,
) -> list[AnyRow]:
    """The workspace's events with after < seq <= upto, newest first (a primary-key range)."""
    stmt = select(*LIST_COLUMNS).where(
        _no_index(conn, Event.workspace_id) == workspace_id,
        Event.seq > after,
        Event.seq <= upto,
    )
    stmt = _filtered(stmt, Event, flt).order_by(Event.seq.desc()).limit(limit)
    return list(conn.execute(stmt).all())


def get_event(conn: Connection, workspace_id: uuid.UUID, seq: int) -> AnyRow | None:
    stmt = select(cast(Table, Event.__table__)).where(
        Event.seq == seq, Event.workspace_id == workspace_id
    )
    return conn.execute(stmt).first()


def rejected_mark(conn: Connection) -> int:
    return int(conn.scalar(select(func.max(RejectedEvent.id))) or 0)


def newest_rejected(
    conn: Connection, workspace_id: uuid.UUID, upto: int, limit: int
) -> list[AnyRow]:
    """The workspace's newest rejected input up to `upto`, newest first.

    ix_rejected_ws_received gives the order.
    """
    stmt = (
        select(REJECTED)
        .where(RejectedEvent.workspace_id == workspace_id, RejectedEvent.id <= upto)
        .order_by(RejectedEvent.received_at.desc(), RejectedEvent.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def rejected_between(
    conn: Connection, workspace_id: uuid.UUID, after: int, upto: int, limit: int
) -> list[AnyRow]:
    stmt = (
        select(REJECTED)
        .where(
            _no_index(conn, RejectedEvent.workspace_id) == workspace_id,
            RejectedEvent.id > after,
            RejectedEvent.id <= upto,
        )
        .order_by(RejectedEvent.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())
