"""The resolver's hot-path SQL over the event log: read the pending tail, mark it resolved."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.kit.rawsql import Dialect, executemany


@dataclass(slots=True)
class PendingEvent:
    seq: int
    workspace_id: uuid.UUID
    type: str
    name: str | None
    timestamp: datetime
    user_id: str | None
    anonymous_id: str | None
    # None when the event needs no more than its id columns (see identity.needs_payload).
    payload: dict[str, Any] | None


def pending_events(conn: Connection, limit: int) -> list[PendingEvent]:
    d = Dialect(conn)
    rows = conn.exec_driver_sql(
        d.sql(
            "SELECT seq, workspace_id, type, name, timestamp, user_id, anonymous_id,"
            " CASE WHEN needs_payload THEN payload END"
            " FROM event WHERE status = 0 ORDER BY seq LIMIT ?"
        ),
        (limit,),
    ).fetchall()
    read_uuid, read_time, read_json = d.read_uuid(), d.read_time(), d.read_json()
    # A plain loop over positional fields: this runs for every event the resolver takes.
    out: list[PendingEvent] = []
    append = out.append
    for seq, workspace, kind, name, timestamp, user_id, anonymous_id, payload in rows:
        append(
            PendingEvent(
                seq,
                read_uuid(workspace),  # type: ignore[arg-type]
                kind,
                name,
                read_time(timestamp),
                user_id,
                anonymous_id,
                None if payload is None else read_json(payload),
            )
        )
    return out


def mark_events(conn: Connection, marks: list[tuple[int, uuid.UUID | None, int]]) -> None:
    """(seq, profile_id, status) for each resolved event."""
    if not marks:
        return
    d = Dialect(conn)
    if d.postgres:
        # One statement over arrays: psycopg's executemany pays a round of work per row.
        seqs, pids, statuses = (list(column) for column in zip(*marks, strict=True))
        conn.exec_driver_sql(
            "UPDATE event SET profile_id = m.pid, status = m.status"
            " FROM unnest(%s::bigint[], %s::uuid[], %s::smallint[]) AS m(seq, pid, status)"
            " WHERE event.seq = m.seq",
            (seqs, pids, statuses),
        )
        return
    statement = d.sql("UPDATE event SET profile_id = ?, status = ? WHERE seq = ?")
    executemany(conn, statement, [(d.uuid(pid), status, seq) for seq, pid, status in marks])


def mark_failed(conn: Connection, seq: int, status: int) -> None:
    d = Dialect(conn)
    conn.exec_driver_sql(d.sql("UPDATE event SET status = ? WHERE seq = ?"), (status, seq))
