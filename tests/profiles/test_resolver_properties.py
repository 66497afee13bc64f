"""Whatever order people's events arrive in, identity resolution keeps its promises.

Random histories over a small pool of user ids, devices and emails (so they collide often)
are sent in a few batches; after each history is resolved the store must satisfy the
invariants below.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from otklik.models import Event, Identity, MergeLog, Profile
from otklik.models.event import PROCESSED
from tests.conftest import LiveServer, make_tenant
from tests.profiles.support import send

USERS = ["u1", "u2", "u3"]
DEVICES = ["a1", "a2", "a3", "a4"]
# Spellings of two addresses, and a placeholder that must never link anyone.
EMAILS = ["x@shop.ru", " X@Shop.RU", "y@shop.ru", "test@test.com"]
EXAMPLES = int(os.environ.get("OTKLIK_PROPERTY_EXAMPLES", "25"))


def _event(kind: str, user: str | None, device: str | None, email: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind}
    if user:
        event["userId"] = user
    if device:
        event["anonymousId"] = device
    if kind == "identify" and email:
        event["traits"] = {"email": email}
    if kind == "track":
        event["event"] = "Viewed"
    return event


plain_events = st.builds(
    _event,
    st.sampled_from(["identify", "identify", "track", "page"]),
    st.none() | st.sampled_from(USERS),
    st.none() | st.sampled_from(DEVICES),
    st.none() | st.sampled_from(EMAILS),
).filter(lambda e: "userId" in e or "anonymousId" in e)
aliases = st.builds(
    lambda previous, user: {"type": "alias", "previousId": previous, "userId": user},
    st.sampled_from(USERS + DEVICES),
    st.sampled_from(USERS),
)
histories = st.lists(
    st.lists(st.one_of(plain_events, plain_events, plain_events, aliases), min_size=1, max_size=8),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=histories)
def test_resolution_invariants_hold_for_any_history(
    live: LiveServer, http: httpx.Client, batches: list[list[dict[str, Any]]]
) -> None:
    tenant = make_tenant(live.engine)
    for batch in batches:
        send(http, tenant, *batch)
        live.drain()
    sent = [e for batch in batches for e in batch]
    aliased = any(e["type"] == "alias" for e in sent)

    with live.engine.connect() as conn:
        ws = tenant.id
        profiles = {
            p.id: p
            for p in conn.execute(
                select(Profile.id, Profile.merged_into, Profile.events_count).where(
                    Profile.workspace_id == ws
                )
            )
        }
        identities = conn.execute(
            select(Identity.type, Identity.value, Identity.profile_id).where(
                Identity.workspace_id == ws
            )
        ).all()
        events = conn.execute(
            select(Event.type, Event.user_id, Event.profile_id, Event.status).where(
                Event.workspace_id == ws
            )
        ).all()
        merges = conn.execute(
            select(MergeLog.winner_id, MergeLog.reason).where(MergeLog.workspace_id == ws)
        ).all()

    roots = {pid for pid, p in profiles.items() if p.merged_into is None}

    def root(pid: uuid.UUID) -> uuid.UUID:
        merged_into = profiles[pid].merged_into
        return pid if merged_into is None else merged_into

    # Merges stay flat: a merged profile points straight at a root.
    for pid, p in profiles.items():
        assert p.merged_into is None or p.merged_into in roots, pid
    # Every identifier names exactly one person: it belongs to one root profile.
    assert Counter((i.type, i.value) for i in identities).most_common(1)[0][1] == 1
    assert all(i.profile_id in roots for i in identities)
    assert not any(i.value.lower() == "test@test.com" for i in identities)
    # Never two user ids on one person, unless an alias said they are one.
    users_per_root = Counter(i.profile_id for i in identities if i.type == "user_id")
    alias_winners = {root(m.winner_id) for m in merges if m.reason == "alias"}
    for pid, count in users_per_root.items():
        assert count == 1 or (aliased and pid in alias_winners), pid
    # Every event was resolved to someone, and an event's user id is its person's.
    activity = [e for e in events if e.type != "system"]
    assert len(activity) == len(sent)
    assert all(e.status == PROCESSED and e.profile_id is not None for e in activity)
    owner = {i.value: i.profile_id for i in identities if i.type == "user_id"}
    for e in activity:
        if e.user_id is not None:
            assert root(e.profile_id) == owner[e.user_id], e
    # Counters add up: the people's event counts are exactly the events on them.
    assert sum(profiles[pid].events_count for pid in roots) == len(activity)
    # A merge log row and a "profile.merged" record for every merge.
    assert sum(e.type == "system" for e in events) == len(merges)
    assert len(roots) == len(profiles) - len(merges)
