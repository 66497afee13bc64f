"""The resolver prepares a batch without the write lock and must never write stale decisions.

Every writer of profiles bumps a version; a batch prepared from older reads is redone under
the lock, so a change that landed in between (an API edit, a merge) is neither lost nor
contradicted. No live server here: this module drives the loop by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from otklik.config import Settings
from otklik.kit.db import write_tx
from otklik.kit.time import utc_now
from otklik.models import Event, Profile
from otklik.models.event import PROCESSED
from otklik.offline.service import event_rows, store
from otklik.profiles import repository as repo
from otklik.worker import resolver_loop
from otklik.worker.resolver_loop import ResolverLoop
from tests.conftest import make_tenant


def identify(user_id: str, message_id: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user_id, "traits": traits, "messageId": message_id}


def test_a_profile_write_between_prepare_and_write_makes_the_batch_redo(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(engine)
    loop = ResolverLoop(engine, settings)
    store(engine, event_rows(tenant.id, [identify("u-1", "m-1", plan="free")], utc_now()))
    loop.drain()
    with engine.connect() as conn:
        profile_id = conn.execute(
            select(Profile.id).where(Profile.workspace_id == tenant.id)
        ).scalar_one()

    store(engine, event_rows(tenant.id, [identify("u-1", "m-2", city="Казань")], utc_now()))
    real = resolver_loop.prepare_batch
    calls = []

    def prepare_then_someone_edits(*args: Any) -> Any:
        prepared = real(*args)
        if not calls:  # an API edit lands after the reads, before the write
            with write_tx(engine) as conn:
                repo.resolver_lock(conn)
                conn.execute(
                    Profile.__table__.update()
                    .where(Profile.id == profile_id)
                    .values(traits={"plan": "gold"})
                )
        calls.append(1)
        return prepared

    monkeypatch.setattr(resolver_loop, "prepare_batch", prepare_then_someone_edits)
    loop.drain()

    assert loop.totals.redone == 1
    assert len(calls) == 2  # prepared once outside the lock, once again under it
    with engine.connect() as conn:
        traits = conn.execute(select(Profile.traits).where(Profile.id == profile_id)).scalar_one()
        status = conn.execute(
            select(Event.status).where(Event.workspace_id == tenant.id, Event.message_id == "m-2")
        ).scalar_one()
    assert traits == {"plan": "gold", "city": "Казань"}  # the edit kept, the event applied
    assert status == PROCESSED


def test_without_concurrent_writes_a_batch_is_written_as_prepared(
    engine: Engine, settings: Settings
) -> None:
    tenant = make_tenant(engine)
    loop = ResolverLoop(engine, settings)
    messages = [identify(f"u-{i}", f"p-{i}", n=i) for i in range(50)]
    store(engine, event_rows(tenant.id, messages, utc_now()))

    loop.drain()

    assert loop.totals.redone == 0
    with engine.connect() as conn:
        count = conn.execute(select(Profile.id).where(Profile.workspace_id == tenant.id)).all()
    assert len(count) == 50
