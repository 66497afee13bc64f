"""SDKs retry: an event is stored once per (workspace, messageId), however often it arrives."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import make_tenant
from tests.ingest.support import basic, by_message_id, events, profile_of


def send(http, tenant, items):
    r = http.post("/v1/batch", json={"batch": items}, headers=basic(tenant.write_key))
    assert r.status_code == 200, r.text
    return r.json()


def batch_of(n: int, prefix: str = "m") -> list[dict]:
    return [
        {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": f"{prefix}-{i}"}
        for i in range(n)
    ]


def test_the_same_batch_sent_twice_stores_each_message_once(live, http, tenant):
    items = batch_of(20)

    send(http, tenant, items)
    again = send(http, tenant, items)

    assert again["success"] is True  # a retry is a success for the SDK, not an error
    stored = by_message_id(live.engine, tenant.id)
    assert sorted(stored) == sorted(item["messageId"] for item in items)


def test_a_retry_never_overwrites_what_was_stored_first(live, http, tenant):
    first = {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": "m-1"}

    send(http, tenant, [{**first, "properties": {"try": 1}}])
    send(http, tenant, [{**first, "properties": {"try": 2}}])

    [row] = events(live.engine, tenant.id)
    assert row.payload["properties"] == {"try": 1}


def test_the_same_message_id_in_two_workspaces_is_stored_in_both(live, http, engine, tenant):
    other = make_tenant(engine)
    items = batch_of(3, prefix="shared")

    send(http, tenant, items)
    send(http, other, items)

    assert sorted(by_message_id(live.engine, tenant.id)) == sorted(by_message_id(engine, other.id))
    assert len(events(live.engine, other.id)) == 3


def test_duplicates_inside_one_batch_are_stored_once(live, http, tenant):
    items = batch_of(3)
    duplicated = [items[0], items[1], {**items[0], "event": "Again"}, items[2], items[1]]

    send(http, tenant, duplicated)

    stored = by_message_id(live.engine, tenant.id)
    assert sorted(stored) == ["m-0", "m-1", "m-2"]
    assert stored["m-0"].name == "Viewed"  # the first copy is the one kept


def test_single_calls_are_idempotent_too(live, http, tenant):
    body = {"userId": "u-1", "event": "Viewed", "messageId": "single-1"}
    for _ in range(3):
        r = http.post("/v1/track", json=body, headers=basic(tenant.write_key))
        assert r.status_code == 200

    assert [row.message_id for row in events(live.engine, tenant.id)] == ["single-1"]


def test_a_retried_order_is_counted_once_on_the_profile(live, http, tenant):
    order = {
        "type": "track",
        "userId": "buyer-1",
        "event": "Order Completed",
        "messageId": "order-msg-1",
        "properties": {"order_id": "o-1", "revenue": 100.5, "currency": "RUB"},
    }

    send(http, tenant, [order])
    send(http, tenant, [order])
    live.drain()

    profile = profile_of(live.engine, tenant.id, "user_id", "buyer-1")
    assert profile.orders_count == 1
    assert Decimal(profile.revenue) == Decimal("100.50")
    assert profile.events_count == 1
