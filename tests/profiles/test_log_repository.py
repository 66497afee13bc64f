"""The resolver's marks on the event log: each event gets its profile and status, once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from otklik.ingest import repository as ingest_repo
from otklik.kit.db import write_tx
from otklik.kit.ids import uuid7
from otklik.models import Event
from otklik.models.event import PENDING, PROCESSED, UNATTRIBUTED
from otklik.profiles import log_repository
from tests.conftest import make_tenant

WHEN = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def stored_events(engine, workspace_id, count):
    rows = [
        {
            "workspace_id": workspace_id,
            "message_id": f"m-{i}",
            "type": "track",
            "name": "Viewed",
            "user_id": f"u-{i}",
            "anonymous_id": None,
            "timestamp": WHEN,
            "received_at": WHEN,
            "payload": {"type": "track", "event": "Viewed", "userId": f"u-{i}"},
        }
        for i in range(count)
    ]
    with write_tx(engine) as conn:
        ingest_repo.append_events(conn, rows)
    with engine.connect() as conn:
        return (
            conn.execute(
                select(Event.seq).where(Event.workspace_id == workspace_id).order_by(Event.seq)
            )
            .scalars()
            .all()
        )


def marks_of(engine, workspace_id):
    with engine.connect() as conn:
        return {
            seq: (pid, status)
            for seq, pid, status in conn.execute(
                select(Event.seq, Event.profile_id, Event.status).where(
                    Event.workspace_id == workspace_id
                )
            )
        }


def test_every_marked_event_gets_its_own_profile_and_status_whatever_the_count(engine):
    tenant = make_tenant(engine)
    seqs = stored_events(engine, tenant.id, 256 + 64 + 16 + 4 + 3)  # every chunk size
    profiles = [uuid7() for _ in range(7)]
    untouched = seqs[-1]
    wanted = {
        seq: (None, UNATTRIBUTED) if i % 5 == 0 else (profiles[i % 7], PROCESSED)
        for i, seq in enumerate(seqs[:-1])
    }
    # Given out of log order: the marks say which event, not where it stands.
    marks = [(seq, pid, status) for seq, (pid, status) in reversed(wanted.items())]
    with write_tx(engine) as conn:
        log_repository.mark_events(conn, marks)

    assert marks_of(engine, tenant.id) == {**wanted, untouched: (None, PENDING)}


def test_an_event_marked_twice_keeps_the_last_mark(engine):
    tenant = make_tenant(engine)
    first, second = stored_events(engine, tenant.id, 2)
    a, b = uuid7(), uuid7()
    with write_tx(engine) as conn:
        log_repository.mark_events(
            conn, [(first, a, PROCESSED), (second, a, PROCESSED), (first, b, PROCESSED)]
        )

    assert marks_of(engine, tenant.id) == {first: (b, PROCESSED), second: (a, PROCESSED)}
