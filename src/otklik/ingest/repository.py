"""SQL for the event log: idempotent appends and the record of rejected input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from otklik.models import Event, RejectedEvent
from otklik.models.event import PENDING

EVENT = Event.__table__
REJECTED = RejectedEvent.__table__


def append_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert events, skipping any (workspace, messageId) already stored; returns rows added."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(EVENT).on_conflict_do_nothing(
        index_elements=["workspace_id", "message_id"]
    )
    result = conn.execute(stmt, list(rows))
    return max(int(result.rowcount or 0), 0)


def append_rejected(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(REJECTED), list(rows))


def count_pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(EVENT.c.status == PENDING)).scalar_one())
