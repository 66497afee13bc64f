"""SQL for the event log: idempotent appends and the record of rejected input."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any, cast
from uuid import UUID

from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, Table, func, insert, select

from otklik.ingest.spool import Position
from otklik.ingest.wire import Accepted
from otklik.kit.rawsql import Dialect, memo, sqlite_time_from_iso
from otklik.kit.time import iso, utc_now
from otklik.models import Event, IngestSpoolProgress, RejectedEvent
from otklik.models.event import PENDING, is_pending
from otklik.profiles.identity import needs_payload
from otklik.profiles.orders import ORDER_EVENTS

EVENT = cast(Table, Event.__table__)
REJECTED = cast(Table, RejectedEvent.__table__)
PROGRESS = cast(Table, IngestSpoolProgress.__table__)


def append_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert events, skipping any (workspace, messageId) already stored; returns rows added."""
    return insert_event_params(conn, event_params(Dialect(conn), rows))


def event_params(d: Dialect, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The driver's values for each event row, worked out before any transaction opens.

    The ingest writer calls this as each request is queued, so the store's write lock is
    held only for the insert itself. A row may carry `payload_json` (the payload already
    serialised, str or UTF-8 bytes) and `timestamp_iso` (`timestamp` as kit.time.iso
    formats it); both save work per row.
    """
    # Rows of one request share their workspace and receipt time: convert those once.
    workspace, received = memo(d.uuid), memo(d.time)
    stamp, postgres, rich = d.time, d.postgres, ORDER_EVENTS
    params = []
    for row in rows:
        payload = row["payload"]
        encoded = row.get("payload_json") or d.json(payload)
        if postgres and isinstance(encoded, bytes):
            encoded = encoded.decode()
        when = None if postgres else sqlite_time_from_iso(row.get("timestamp_iso"))
        kind, name = row["type"], row["name"]
        params.append(
            (
                workspace(row["workspace_id"]),
                row["message_id"],
                kind,
                name,
                row["user_id"],
                row["anonymous_id"],
                when or stamp(row["timestamp"]),
                received(row["received_at"]),
                encoded,
                needs_payload(kind, name, payload, rich),
            )
        )
    return params


def accepted_params(
    d: Dialect, workspace_id: UUID, received_at: datetime, items: Sequence[Accepted]
) -> list[tuple[Any, ...]]:
    """`event_params` of `item.row(workspace_id, received_at)` for each item, without the rows.

    The request path: building a dict per event only to read it back cost ~2 µs an event.
    """
    postgres, rich, json = d.postgres, ORDER_EVENTS, d.json
    if postgres:
        # Text, as COPY sends it to the server anyway: the rows are then plain values the
        # ingest journal can store as they are (converting them there cost ~5 µs an event).
        workspace, received = str(workspace_id), iso(received_at)
    else:
        workspace, received = d.uuid(workspace_id), d.time(received_at)
    params: list[tuple[Any, ...]] = []
    append = params.append
    for item in items:
        kind, name, payload = item.type, item.name, item.payload
        encoded: str | bytes = item.encoded or json(payload)
        if postgres:
            if isinstance(encoded, bytes):
                encoded = encoded.decode()
            when = item.timestamp_iso or iso(item.timestamp)
        else:
            when = sqlite_time_from_iso(item.timestamp_iso) or d.time(item.timestamp)
        append(
            (
                workspace,
                item.message_id,
                kind,
                name,
                item.user_id,
                item.anonymous_id,
                when,
                received,
                encoded,
                needs_payload(kind, name, payload, rich),
            )
        )
    return params


def insert_event_params(conn: Connection, params: list[tuple[Any, ...]]) -> int:
    """Insert rows made by `event_params`; returns how many were new."""
    if not params:
        return 0
    if Dialect(conn).postgres:
        return _append_postgres(conn, params)
    # Multi-row VALUES rather than executemany: the driver lets go of the GIL around every
    # statement step, and with the event loop busy parsing the next requests, taking it back
    # once per row made the writer wait far longer than it worked (see docs/benchmarks.md).
    # Chunks of powers of two keep the statements few (the driver caches them) and under the
    # 999 parameters old SQLite builds allow.
    added, start, total = 0, 0, len(params)
    while start < total:
        size = next(n for n in _CHUNKS if n <= total - start)
        chunk = params[start : start + size]
        result = conn.exec_driver_sql(_values_statement(size), tuple(chain.from_iterable(chunk)))
        added += max(int(result.rowcount or 0), 0)
        start += size
    return added


_CHUNKS = (64, 32, 16, 8, 4, 2, 1)  # 64 rows x 10 values < 999
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), NULL, 0, ?)"


@cache
def _values_statement(rows: int) -> str:
    # The payload may be bound as UTF-8 bytes: CAST stores them as the same TEXT a str
    # would be, without decoding and re-encoding ~1 KB per event.
    return (
        "INSERT INTO event (workspace_id, message_id, type, name, user_id, anonymous_id,"
        " timestamp, received_at, payload, profile_id, status, needs_payload) VALUES "
        + ", ".join([_ROW] * rows)
        + " ON CONFLICT (workspace_id, message_id) DO NOTHING"
    )


def _append_postgres(conn: Connection, params: list[tuple[Any, ...]]) -> int:
    """COPY straight into `event`; if a row is already there, through a staging table.

    psycopg's executemany pays a round of work per row; COPY streams them. COPY cannot skip
    conflicts, so it runs in a savepoint: a batch holding a retried messageId (rare: SDK
    retries) is rolled back to it and goes the staged way, one INSERT ... ON CONFLICT DO
    NOTHING. The direct way costs the server ~20 % less per row (34 vs 42 µs, measured).
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        # An SQL savepoint, not psycopg's transaction(): that one commits on its own when it
        # opens the connection's first statement, outside the caller's transaction.
        cur.execute("SAVEPOINT event_copy")
        try:
            with cur.copy(
                "COPY event (workspace_id, message_id, type, name, user_id, anonymous_id,"
                " timestamp, received_at, payload, needs_payload, status) FROM STDIN"
            ) as copy:
                for row in params:
                    copy.write_row((*row, PENDING))
        except UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT event_copy")
        else:
            cur.execute("RELEASE SAVEPOINT event_copy")
            return len(params)
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


def failure_row(workspace_id: UUID, code: str, error: Exception, payload: str) -> dict[str, Any]:
    """A `rejected_event` row for input accepted once and failed later (resolver, mover)."""
    return {
        "workspace_id": workspace_id,
        "received_at": utc_now(),
        "code": code,
        "message": f"{type(error).__name__}: {str(error)[:500]}",
        "payload": payload[:4096],
    }


def append_rejected(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(REJECTED), list(rows))


def count_pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).where(is_pending(EVENT.c.status))).scalar_one())


def spool_progress(conn: Connection, slot: str) -> Position | None:
    row = conn.execute(
        select(PROGRESS.c.segment, PROGRESS.c.byte_offset).where(PROGRESS.c.slot == slot)
    ).first()
    return None if row is None else Position(int(row.segment), int(row.byte_offset))


def save_spool_progress(conn: Connection, slot: str, position: Position) -> None:
    d = Dialect(conn)
    conn.exec_driver_sql(
        d.sql(
            "INSERT INTO ingest_spool_progress (slot, segment, byte_offset, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (slot) DO UPDATE SET segment = excluded.segment,"
            " byte_offset = excluded.byte_offset, updated_at = excluded.updated_at"
        ),
        (slot, position.segment, position.offset, d.time(utc_now())),
    )
