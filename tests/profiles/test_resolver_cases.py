"""Resolution cases found by the property test, kept as plain specifications."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from otklik.models import MergeLog, Profile
from tests.conftest import LiveServer, Tenant
from tests.profiles.support import send


def test_an_event_naming_two_identifiers_of_one_other_profile_merges_it_once(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """u1 is one profile; a2 and x@shop.ru are another; an event with all three merges the
    second into the first once, and the counters add up to the three events."""
    send(
        http,
        tenant,
        {"type": "identify", "userId": "u1"},
        {"type": "identify", "anonymousId": "a2", "traits": {"email": "x@shop.ru"}},
        {"type": "identify", "userId": "u1", "anonymousId": "a2", "traits": {"email": "x@shop.ru"}},
    )
    live.drain()
    with live.engine.connect() as conn:
        roots = conn.execute(
            select(Profile.events_count).where(
                Profile.workspace_id == tenant.id, Profile.merged_into.is_(None)
            )
        ).all()
        merges = conn.execute(
            select(func.count()).select_from(MergeLog).where(MergeLog.workspace_id == tenant.id)
        ).scalar_one()
    assert [r.events_count for r in roots] == [3]
    assert merges == 1
