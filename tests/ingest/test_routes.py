"""Every Segment tracking route is served, stores the right type, and is reachable by browsers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.ingest.support import basic, events, nothing_stored

# One minimal valid message per type: identity plus what the type requires.
MINIMAL: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u-1", "traits": {"plan": "gold"}},
    "track": {"userId": "u-1", "event": "Product Viewed"},
    "page": {"anonymousId": "a-1", "name": "Home"},
    "screen": {"anonymousId": "a-1", "name": "Cart"},
    "group": {"userId": "u-1", "groupId": "g-1"},
    "alias": {"userId": "u-1", "previousId": "a-1"},
}
SINGLE_ROUTES = [
    ("identify", "identify"),
    ("track", "track"),
    ("page", "page"),
    ("screen", "screen"),
    ("group", "group"),
    ("alias", "alias"),
    ("i", "identify"),
    ("t", "track"),
    ("p", "page"),
    ("s", "screen"),
    ("g", "group"),
    ("a", "alias"),
]


@pytest.mark.parametrize(("route", "kind"), SINGLE_ROUTES)
def test_a_single_call_route_stores_one_event_of_its_type(live, http, tenant, route, kind):
    r = http.post(f"/v1/{route}", json=MINIMAL[kind], headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 1}
    [row] = events(live.engine, tenant.id)
    assert row.type == kind
    assert row.payload["type"] == kind


def test_the_route_decides_the_type_of_a_single_call(live, http, tenant):
    body = {**MINIMAL["track"], "type": "identify"}

    assert http.post("/v1/t", json=body, headers=basic(tenant.write_key)).status_code == 200

    [row] = events(live.engine, tenant.id)
    assert (row.type, row.name) == ("track", "Product Viewed")


@pytest.mark.parametrize("route", ["batch", "b", "import"])
def test_a_batch_route_stores_every_item_with_its_own_type(live, http, tenant, route):
    batch = [{"type": kind, **body} for kind, body in MINIMAL.items()]

    r = http.post(f"/v1/{route}", json={"batch": batch}, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 6}
    assert [row.type for row in events(live.engine, tenant.id)] == list(MINIMAL)


def test_an_unknown_tracking_route_is_404_unknown_endpoint(live, http, tenant):
    r = http.post("/v1/zzz", json=MINIMAL["track"], headers=basic(tenant.write_key))

    assert r.status_code == 404
    assert r.json()["code"] == "unknown_endpoint"
    assert nothing_stored(live.engine, tenant.id)


def test_cors_preflight_allows_a_browser_to_post(http):
    r = http.options(
        "/v1/t",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://shop.example")
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("route", ["t", "b"])
def test_a_text_plain_post_with_the_write_key_in_the_body_works(live, http, tenant, route):
    """What analytics.js sends: text/plain avoids the preflight; the key travels in the body."""
    message = {"type": "track", **MINIMAL["track"], "messageId": f"browser-{route}"}
    body = {"writeKey": tenant.write_key, **message}
    if route == "b":
        body = {"writeKey": tenant.write_key, "batch": [message], "sentAt": "2026-01-01T00:00:00Z"}

    r = http.post(
        f"/v1/{route}",
        content=orjson.dumps(body),
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
    )

    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] in ("*", "https://shop.example")
    [row] = events(live.engine, tenant.id)
    assert (row.message_id, row.type) == (f"browser-{route}", "track")
