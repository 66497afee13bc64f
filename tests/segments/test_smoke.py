from __future__ import annotations

import httpx

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send
from tests.segments.support import create, event, identify, member_ids, settle


def test_behaviour_segment_builds_and_follows_events(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(
        http,
        tenant,
        identify("u1", 10, email="a@example.com", city="Moscow"),
        identify("u2", 10, email="b@example.com", city="Kazan"),
        event("u1", "Product Viewed", 3, sku="A"),
        event("u1", "Product Viewed", 2, sku="B"),
        event("u2", "Product Viewed", 40, sku="A"),
    )
    settle(live)
    rules = {
        "kind": "all",
        "rules": [
            {"kind": "event", "name": "Product Viewed", "within_days": 30, "op": "gte", "value": 2},
            {"kind": "trait", "field": "city", "op": "eq", "value": "moscow"},
        ],
    }
    seg = create(http, tenant, rules, live)
    assert seg["state"] == "ready", seg
    u1 = pid_of(http, tenant, "user_id", "u1")
    assert member_ids(http, tenant, seg["id"]) == {u1}
    send(
        http,
        tenant,
        identify("u2", 0, city="Moscow"),
        event("u2", "Product Viewed", 1),
        event("u2", "Product Viewed", 0),
    )
    settle(live)
    u2 = pid_of(http, tenant, "user_id", "u2")
    assert member_ids(http, tenant, seg["id"]) == {u1, u2}
