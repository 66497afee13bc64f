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
            row.get("payload_json") or d.json(row["payload"]),
            needs_payload(row["type"], row["name"], row["payload"], ORDER_EVENTS),
        )
        for row in rows
    ]
    if d.postgres:
        return _append_postgres(conn, params)
    return executemany(conn, statement, params)


def _append_postgres(conn: Connection, params: list[tuple[Any, ...]]) -> int:
    """COPY into a per-session staging table, then one INSERT ... ON CONFLICT from it.

    psycopg's executemany pays a round of work per row; COPY streams them.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS event_staging (ord bigserial, workspace_id uuid,"
            " message_id text, type text, name text, user_id text, anonymous_id text,"
            " timestamp timestamptz, received_at timestamptz, payload text,"
            " needs_payload boolean) ON COMMIT DELETE ROWS"
        )
        with cur.copy(
            "COPY event_staging (workspace_id, message_id, type, name, user_id, anonymous_id,"
            " timestamp, received_at, payload, needs_payload) FROM STDIN"
        ) as copy:
            for row in params:
                copy.write_row(row)
        cur.execute(
            "INSERT INTO event (workspace_id, message_id, type, name, user_id, anonymous_id,"
            " timestamp, received_at, payload, profile_id, status, needs_payload)"
            " SELECT workspace_id, message_id, type, name, user_id, anonymous_id, timestamp,"
            " received_at, payload::jsonb, NULL, 0, needs_payload FROM event_staging ORDER BY ord"
            " ON CONFLICT (workspace_id, message_id) DO NOTHING"
        )
        added = cur.rowcount
        cur.execute("DELETE FROM event_staging")  # cheap here; a transaction may append twice
    return max(int(added or 0), 0)


def append_rejected(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(REJECTED), list(rows))


def count_pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(EVENT.c.status == PENDING)).scalar_one())
