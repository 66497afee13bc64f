"""The event log's bulk append: what the fast path stores is what the plain path would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from otklik.ingest import repository
from otklik.kit.db import write_tx
from otklik.kit.rawsql import Dialect
from tests.conftest import make_tenant
from tests.ingest.support import normalised


def rows_for(workspace_id, count: int, received: datetime, prefix: str = "a"):
    out = []
    for i in range(count):
        item = {
            "type": "track" if i % 3 else "identify",
            "userId": f"u-{i % 7}",
            "event": "Viewed",
            "messageId": f"{prefix}-{i}",
            "traits": {"name": 'Татьяна "T" \\ ☃'},
            # Whole seconds on some: isoformat leaves out a zero microsecond.
            "timestamp": f"2026-05-01T05:58:{i % 60:02d}{'.5' if i % 2 else ''}Z",
        }
        accepted = normalised(item, received)
        out.append(accepted.row(workspace_id, received))
    return out


def stored(engine, workspace_id):
    d = Dialect(engine)
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            d.sql(
                "SELECT message_id, type, name, user_id, timestamp, received_at,"
                " CAST(payload AS TEXT), needs_payload FROM event"
                " WHERE workspace_id = ? ORDER BY seq"
            ),
            (d.uuid(workspace_id),),
        ).all()


def test_bulk_append_stores_every_row_once_in_order_whatever_the_count(engine):
    tenant = make_tenant(engine)
    received = datetime(2026, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)
    rows = rows_for(tenant.id, 64 + 32 + 8 + 2 + 1, received)  # every chunk size at once
    with write_tx(engine) as conn:
        added = repository.append_events(conn, rows)
    with write_tx(engine) as conn:  # a retry of part of it, and a duplicate inside the batch
        again = repository.append_events(conn, rows[:10] + rows[5:6])
    assert (added, again) == (len(rows), 0)
    got = stored(engine, tenant.id)
    assert [r[0] for r in got] == [row["message_id"] for row in rows]


def test_an_append_belongs_to_the_callers_transaction_with_or_without_duplicates(engine):
    """A rolled-back transaction leaves nothing: neither PostgreSQL's direct COPY nor its
    fall-back for a batch that holds a stored messageId commits on its own."""
    tenant = make_tenant(engine)
    received = datetime(2026, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)
    rows = rows_for(tenant.id, 20, received, prefix="tx")
    with write_tx(engine) as conn:
        repository.append_events(conn, rows[:5])

    class Undo(Exception):
        pass

    for batch in (rows[5:12], rows[3:15]):  # all new (direct), then one holding stored ids
        try:
            with write_tx(engine) as conn:
                repository.append_events(conn, batch)
                raise Undo
        except Undo:
            pass
    assert [r[0] for r in stored(engine, tenant.id)] == [row["message_id"] for row in rows[:5]]

    with write_tx(engine) as conn:
        added = repository.append_events(conn, rows[3:15] + rows[14:15])
    assert added == 10
    assert [r[0] for r in stored(engine, tenant.id)] == [row["message_id"] for row in rows[:15]]


def test_the_fast_path_stores_exactly_what_the_plain_path_stores(engine):
    """Pre-serialised bytes and pre-formatted times change nothing that is stored."""
    fast, plain = make_tenant(engine), make_tenant(engine)
    received = datetime(2026, 5, 1, 6, 0, 0, tzinfo=UTC)
    fast_rows = rows_for(fast.id, 20, received)
    plain_rows = [
        {k: v for k, v in row.items() if k not in ("payload_json", "timestamp_iso")}
        for row in rows_for(plain.id, 20, received)
    ]
    with write_tx(engine) as conn:
        repository.append_events(conn, fast_rows)
        repository.append_events(conn, plain_rows)
    a, b = stored(engine, fast.id), stored(engine, plain.id)
    assert len(a) == 20
    if engine.dialect.name == "sqlite":
        assert a == b
        with engine.connect() as conn:
            kinds = conn.execute(text("SELECT DISTINCT typeof(payload) FROM event")).all()
        assert kinds == [("text",)]
    else:  # jsonb renders its own way; the values are what count
        assert [r[:6] + r[7:] for r in a] == [r[:6] + r[7:] for r in b]


def test_the_request_path_hands_the_driver_what_the_row_path_does(engine):
    """`accepted_params` (parsed events straight to driver values) equals rows made first."""
    workspace_id = make_tenant(engine).id
    received = datetime(2026, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)
    items = [
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "o-1"},
        {"type": "page", "anonymousId": "a", "name": "Home", "messageId": "p-1"},
        {
            "type": "track",
            "userId": "u",
            "event": "Viewed",
            "messageId": "t-1",
            "originalTimestamp": "2026-05-01T05:00:00.250Z",
            "sentAt": "2026-05-01T05:00:01Z",
        },
        {"type": "identify", "userId": "u", "traits": {"email": "a@b.c"}, "messageId": "i-1"},
        {"type": "track", "userId": "u", "event": "e", "timestamp": "2026-05-01T08:00:00+03:00"},
    ]
    accepted = [normalised(item, received, client_ip="10.0.0.1") for item in items]
    d = Dialect(engine)
    from_rows = repository.event_params(d, [a.row(workspace_id, received) for a in accepted])
    direct = repository.accepted_params(d, workspace_id, received, accepted)
    if d.postgres:
        # The request path hands PostgreSQL text, COPY's own form (the journal stores plain
        # values): the same ids and instants.
        assert all(isinstance(r[0], str) and isinstance(r[6], str) for r in direct)
        direct = [
            (
                uuid.UUID(r[0]),
                *r[1:6],
                datetime.fromisoformat(r[6]),
                datetime.fromisoformat(r[7]),
                *r[8:],
            )
            for r in direct
        ]
    assert direct == from_rows
    assert [p[-1] for p in direct] == [True, False, False, True, False]
