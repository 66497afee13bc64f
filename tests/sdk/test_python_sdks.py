"""The official Python SDKs, unchanged, pointed at Otklik: what they send is stored field by
field and lands on the right profile.

segment-analytics-python puts identify traits at the top level; rudder-sdk-python puts them in
`context.traits`, gzips by default and counts only HTTP 200 as success.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from otklik.kit.time import parse_iso
from tests.ingest.support import by_message_id, profile_of

TS = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
TRAITS = {"email": " Ivan.Petrov@Example.COM", "name": "Иван Петров", "plan": "gold"}
ORDER = {
    "order_id": "o-1001",
    "revenue": 59.9,
    "currency": "RUB",
    "products": [{"sku": "sku-1", "quantity": 2, "price": 29.95}],
}


def drive(client: Any) -> dict[str, dict[str, Any]]:
    """The calls a shop backend makes, in order; returns each message as the SDK built it."""
    sent = {}
    _, sent["visit"] = client.page(
        anonymous_id="anon-9", name="Landing", properties={"url": "http://shop/"}, timestamp=TS
    )
    _, sent["identify"] = client.identify("user-42", dict(TRAITS), timestamp=TS)
    _, sent["track"] = client.track(
        "user-42",
        "Order Completed",
        dict(ORDER),
        context={"ip": "10.1.2.3"},
        timestamp=TS,
        anonymous_id="anon-7",
    )
    _, sent["page"] = client.page(
        "user-42", "Shop", "Product", {"url": "http://shop/p/1"}, timestamp=TS
    )
    _, sent["screen"] = client.screen("user-42", "App", "Cart", {"items": 2}, timestamp=TS)
    _, sent["group"] = client.group("user-42", "company-9", {"name": "ACME"}, timestamp=TS)
    _, sent["alias"] = client.alias("anon-9", "user-42", timestamp=TS)
    return sent


def check_stored(live, tenant, sent: dict[str, dict[str, Any]], *, traits_in_context: bool):
    rows = by_message_id(live.engine, tenant.id)
    assert set(rows) == {msg["messageId"] for msg in sent.values()}  # the SDK's own ids
    stored = {name: rows[msg["messageId"]] for name, msg in sent.items()}

    for name, row in stored.items():
        payload = row.payload
        assert row.type == payload["type"] == sent[name]["type"]
        assert row.timestamp == TS, name
        assert parse_iso(payload["timestamp"]) == TS
        assert payload["context"]["library"]["name"] == "analytics-python"
        assert "writeKey" not in payload

    visit = stored["visit"]
    assert (visit.type, visit.name, visit.user_id, visit.anonymous_id) == (
        "page",
        "Landing",
        None,
        "anon-9",
    )

    identify = stored["identify"].payload
    assert stored["identify"].user_id == "user-42"
    assert stored["identify"].anonymous_id is None
    if traits_in_context:
        assert identify["context"]["traits"] == TRAITS
    else:
        assert identify["traits"] == TRAITS

    track = stored["track"]
    assert (track.name, track.user_id, track.anonymous_id) == (
        "Order Completed",
        "user-42",
        "anon-7",
    )
    assert track.payload["event"] == "Order Completed"
    assert track.payload["properties"] == ORDER
    assert track.payload["context"]["ip"] == "10.1.2.3"  # given by the client: kept

    page = stored["page"]
    assert (page.name, page.user_id) == ("Product", "user-42")
    assert page.payload["category"] == "Shop"
    assert page.payload["properties"] == {"url": "http://shop/p/1"}
    assert page.payload["context"]["ip"] == "127.0.0.1"  # not given: from the request

    screen = stored["screen"]
    assert (screen.name, screen.payload["category"]) == ("Cart", "App")
    assert screen.payload["properties"] == {"items": 2}

    group = stored["group"].payload
    assert (group["groupId"], group["traits"]) == ("company-9", {"name": "ACME"})
    assert stored["group"].name == "company-9"

    alias = stored["alias"].payload
    assert (alias["previousId"], alias["userId"]) == ("anon-9", "user-42")


def check_profile(live, tenant) -> None:
    live.drain()
    profile = profile_of(live.engine, tenant.id, "user_id", "user-42")
    assert profile is not None
    assert profile.email == "ivan.petrov@example.com"  # normalised from the identify traits
    assert profile.traits["name"] == "Иван Петров"
    assert profile.traits["plan"] == "gold"
    assert profile.orders_count == 1
    assert Decimal(profile.revenue) == Decimal("59.90")
    # track named anon-7 beside user-42; alias folded the earlier anonymous visitor in.
    for anonymous in ("anon-7", "anon-9"):
        assert profile_of(live.engine, tenant.id, "anonymous_id", anonymous).id == profile.id
    assert profile_of(live.engine, tenant.id, "email", "ivan.petrov@example.com").id == profile.id


@pytest.mark.parametrize(
    ("sync_mode", "gzip"),
    [(True, False), (True, True), (False, False), (False, True)],
    ids=["sync", "sync-gzip", "queued", "queued-gzip"],
)
def test_segment_analytics_python(live, tenant, sync_mode, gzip):
    from segment.analytics import Client

    errors: list[Any] = []
    client = Client(
        tenant.write_key,
        host=live.url,
        sync_mode=sync_mode,
        gzip=gzip,
        max_retries=1,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )
    try:
        sent = drive(client)  # in sync mode a failed post raises here
    finally:
        if not sync_mode:  # queued: wait until the consumer thread has posted everything
            client.flush()
            client.shutdown()

    assert errors == []
    check_stored(live, tenant, sent, traits_in_context=False)
    check_profile(live, tenant)


@pytest.mark.parametrize(("sync_mode", "gzip"), [(True, True), (False, True), (False, False)])
def test_rudder_sdk_python(live, tenant, sync_mode, gzip):
    from rudderstack.analytics import Client

    errors: list[Any] = []
    client = Client(
        tenant.write_key,
        host=live.url,  # the module-level API calls this dataPlaneUrl
        sync_mode=sync_mode,
        gzip=gzip,
        max_retries=1,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )
    try:
        sent = drive(client)
    finally:
        if not sync_mode:  # queued: wait until the consumer thread has posted everything
            client.flush()
            client.shutdown()

    assert errors == []
    check_stored(live, tenant, sent, traits_in_context=True)
    rows = by_message_id(live.engine, tenant.id)
    for msg in sent.values():
        payload = rows[msg["messageId"]].payload
        assert payload["channel"] == "server"
        assert payload["integrations"] == {"All": True}
    check_profile(live, tenant)


def test_rudder_module_level_api_with_data_plane_url(live, tenant):
    """The documented way: set rudder_analytics.write_key and dataPlaneUrl, then call."""
    import rudderstack.analytics as rudder_analytics

    errors: list[Any] = []
    saved = (rudder_analytics.write_key, rudder_analytics.dataPlaneUrl, rudder_analytics.on_error)
    rudder_analytics.write_key = tenant.write_key
    rudder_analytics.dataPlaneUrl = live.url
    rudder_analytics.on_error = lambda error, batch: errors.append(error)
    rudder_analytics.default_client = None
    try:
        rudder_analytics.identify("module-user", {"email": "m@example.com"}, timestamp=TS)
        rudder_analytics.track("module-user", "Signed Up", {"plan": "pro"}, timestamp=TS)
        rudder_analytics.flush()
    finally:
        rudder_analytics.shutdown()
        rudder_analytics.default_client = None
        (rudder_analytics.write_key, rudder_analytics.dataPlaneUrl, rudder_analytics.on_error) = (
            saved
        )

    assert errors == []
    rows = by_message_id(live.engine, tenant.id).values()
    assert sorted((row.type, row.name) for row in rows) == [
        ("identify", None),
        ("track", "Signed Up"),
    ]
    live.drain()
    assert profile_of(live.engine, tenant.id, "user_id", "module-user").email == "m@example.com"
