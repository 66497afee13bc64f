"""SQL for the event log: idempotent appends and the record of rejected input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select

from otklik.kit.rawsql import Dialect, executemany, memo
from otklik.models import Event, RejectedEvent
from otklik.models.event import PENDING
from otklik.profiles.identity import needs_payload
from otklik.profiles.orders import ORDER_EVENTS

EVENT = cast(Table, Event.__table__)
REJECTED = cast(Table, RejectedEvent.__table__)


def append_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert events, skipping any (workspace, messageId) already stored; returns rows added."""
    if not rows:
        return 0
    d = Dialect(conn)
    statement = d.sql(
        "INSERT INTO event (workspace_id, message_id, type, name, user_id, anonymous_id,"
        " timestamp, received_at, payload, profile_id, status, needs_payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        + d.json_cast
        + ", NULL, 0, ?) ON CONFLICT (workspace_id, message_id) DO NOTHING"
    )
    # Rows of one request share their workspace and receipt time: convert those once.
    workspace, received = memo(d.uuid), memo(d.time)
    params = [
        (
            workspace(row["workspace_id"]),
            row["message_id"],
            row["type"],
            row["name"],
            row["user_id"],
            row["anonymous_id"],
            d.time(row["timestamp"]),
            received(row["received_at"]),
            d.json(row["payload"]),
            needs_payload(row["type"], row["name"], row["payload"], ORDER_EVENTS),
        )
        for row in rows
    ]
    return executemany(conn, statement, params)


def append_rejected(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(REJECTED), list(rows))


def count_pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(EVENT.c.status == PENDING)).scalar_one())
