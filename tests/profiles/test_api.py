"""The profiles REST API: lookup, read, list, timeline, orders, trait edits."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import at, get, idents, lookup, order, pid_of, send, timeline, track


def test_lookup_by_every_identifier_type_normalised_like_the_resolver(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "crm-42",
            "anonymousId": "cookie-42",
            "traits": {
                "email": "Maria@Shop.RU",
                "phone": "8 (912) 345-67-00",
                "telegram_chat_id": "100500",
                "loyalty_card": "LC-7",
            },
            "context": {
                "externalIds": [{"type": "POS", "id": "pos-9", "collection": "users"}],
                "device": {"token": "push-tok-1"},
            },
        },
    )
    live.drain()

    person = lookup(http, tenant, "user_id", "crm-42")
    assert person is not None
    for kind, value in [
        ("anonymous_id", "cookie-42"),
        ("email", " maria@shop.ru"),
        ("phone", "+7 912 345-67-00"),
        ("phone", "89123456700"),
        ("telegram", "100500"),
        ("push_token", "push-tok-1"),
        ("loyalty_card", "LC-7"),
        ("external:pos", "pos-9"),
        ("EXTERNAL:POS", "pos-9"),
    ]:
        found = lookup(http, tenant, kind, value)
        assert found is not None and found["id"] == person["id"], (kind, value)
    assert lookup(http, tenant, "email", "nobody@shop.ru") is None


def test_lookup_refuses_unknown_types_and_unusable_values(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    r = http.get(
        "/api/v1/profiles/lookup", params={"type": "passport", "value": "1"}, headers=tenant.bearer
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_identifier_type"
    assert "email" in r.json()["details"]["known"]
    r = http.get(
        "/api/v1/profiles/lookup", params={"type": "phone", "value": "12"}, headers=tenant.bearer
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_identifier")
    r = http.get("/api/v1/profiles/lookup", params={"type": "email"}, headers=tenant.bearer)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")


def test_search_and_filters_refuse_nul_characters_instead_of_failing(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    # PostgreSQL stores no NUL in text: a search for one must be a clear 422, not a 500.
    for path, params in (
        ("/api/v1/profiles", {"q": "a\x00b"}),
        ("/api/v1/profiles/lookup", {"type": "email", "value": "a\x00@b.c"}),
        ("/api/v1/profiles/lookup", {"type": "e\x00mail", "value": "a@b.c"}),
        (f"/api/v1/profiles/{uuid.uuid4()}/timeline", {"type": "Order\x00"}),
    ):
        r = http.get(path, params=params, headers=tenant.bearer)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (path, params)


def test_profile_shows_traits_identifiers_and_counters(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "page", "anonymousId": "a-p", "timestamp": at(0)},
        {"type": "identify", "anonymousId": "a-p", "userId": "u-p", "traits": {"name": "Pavel"}},
        order("P-1", 250, 30, userId="u-p"),
    )
    live.drain()
    found = lookup(http, tenant, "user_id", "u-p")
    assert found is not None

    profile = get(http, tenant, f"/profiles/{found['id']}")
    assert profile["id"] == profile["requested_id"] == found["id"]
    assert profile["merged_into"] is None and profile["merged_ids"] == []
    assert profile["erased"] is False and profile["erased_at"] is None
    assert profile["traits"] == {"name": "Pavel"}
    assert idents(profile) == {("anonymous_id", "a-p"), ("user_id", "u-p")}
    agg = profile["aggregates"]
    assert agg["events_count"] == 3 and agg["orders_count"] == 1
    assert agg["revenue"] == "250.00"
    assert agg["first_seen_at"] == at(0)
    assert agg["last_order_at"] == at(30)

    r = http.get("/api/v1/profiles/01890000-0000-7000-8000-000000000000", headers=tenant.bearer)
    assert (r.status_code, r.json()["code"]) == (404, "profile_not_found")
    r = http.get("/api/v1/profiles/not-a-uuid", headers=tenant.bearer)
    assert r.status_code == 422


def test_list_pages_root_profiles_newest_first_and_searches_contacts(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    for n in range(5):
        send(http, tenant, {"type": "identify", "userId": f"list-{n}"})
        live.drain()  # one at a time: creation order is the list order
    send(
        http,
        tenant,
        {"type": "identify", "userId": "list-0", "traits": {"email": "zero@list.ru"}},
        {"type": "identify", "userId": "list-3", "traits": {"phone": "+79123450003"}},
        # A visitor merged into list-4's profile is not a root any more and is not listed.
        {"type": "page", "anonymousId": "list-visitor"},
    )
    live.drain()
    send(http, tenant, {"type": "identify", "userId": "list-4", "anonymousId": "list-visitor"})
    live.drain()
    ids = {n: pid_of(http, tenant, "user_id", f"list-{n}") for n in range(5)}

    seen: list[str] = []
    cursor = None
    while True:
        page = get(http, tenant, "/profiles", limit=2, cursor=cursor)
        assert len(page["items"]) <= 2
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[n] for n in (4, 3, 2, 1, 0)]

    def search(q: str) -> list[str]:
        return [p["id"] for p in get(http, tenant, "/profiles", q=q)["items"]]

    assert search("ZERO@list.ru") == [ids[0]]
    assert search("8 912 345-00-03") == [ids[3]]
    assert search("list-2") == [ids[2]]
    assert search("nobody") == []
    r = http.get("/api/v1/profiles", params={"cursor": "garbage"}, headers=tenant.bearer)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


def test_timeline_pages_newest_first_filters_by_type_and_keeps_the_payload(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    events = [track(f"Step {n}", n, userId="u-tl", properties={"n": n}) for n in range(7)]
    # Two events in the same second: the store order (seq) breaks the tie.
    events.append(track("Same time A", 10, userId="u-tl"))
    events.append(track("Same time B", 10, userId="u-tl"))
    events.append({"type": "page", "userId": "u-tl", "name": "Home", "timestamp": at(11)})
    send(http, tenant, *events)
    live.drain()
    pid = pid_of(http, tenant, "user_id", "u-tl")

    pages = []
    cursor = None
    while True:
        page = get(http, tenant, f"/profiles/{pid}/timeline", limit=3, cursor=cursor)
        pages.append([e["name"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [
        ["Home", "Same time B", "Same time A"],
        ["Step 6", "Step 5", "Step 4"],
        ["Step 3", "Step 2", "Step 1"],
        ["Step 0"],
    ]
    tracks = timeline(http, tenant, pid, type="track")
    assert len(tracks) == 9
    step = next(e for e in tracks if e["name"] == "Step 3")
    assert step["type"] == "track"
    assert step["timestamp"] == at(3)
    assert step["received_at"] and step["message_id"].startswith("m-")
    assert step["payload"]["properties"] == {"n": 3}
    assert step["payload"]["userId"] == "u-tl"


def test_editing_traits_follows_identify_rules_and_shows_on_the_timeline(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "userId": "u-ed", "traits": {"name": "Lena", "tier": "silver"}},
    )
    live.drain()
    pid = pid_of(http, tenant, "user_id", "u-ed")

    r = http.patch(
        f"/api/v1/profiles/{pid}/traits",
        json={
            "set": {"tier": "gold", "email": "Lena@Mail.ru"},
            "set_once": {"tier": "bronze", "signup": "2026-01-01"},
            "unset": ["name"],
        },
        headers=tenant.bearer,
    )
    assert r.status_code == 200, r.text
    profile = r.json()
    assert profile["traits"] == {"tier": "gold", "email": "Lena@Mail.ru", "signup": "2026-01-01"}
    assert profile["email"] == "lena@mail.ru"
    # The new email is now an identifier of the profile, like one sent with identify.
    assert lookup(http, tenant, "email", "lena@mail.ru") == get(http, tenant, f"/profiles/{pid}")
    assert profile["aggregates"]["events_count"] == 1  # an edit is not customer activity

    edits = timeline(http, tenant, pid, type="system")
    assert [e["name"] for e in edits] == ["profile.traits_updated"]
    props = edits[0]["payload"]["properties"]
    assert props["source"] == "api"
    assert props["unset"] == ["name"]
    assert props["changed"] == ["email", "name", "signup", "tier"]

    bad_bodies: list[dict[str, Any]] = [{"set": {"$unset": 1}}, {"sett": {}}, {"unset": "name"}]
    for bad in bad_bodies:
        r = http.patch(f"/api/v1/profiles/{pid}/traits", json=bad, headers=tenant.bearer)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), bad


def test_orders_of_a_person_include_those_of_merged_profiles(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(http, tenant, order("G-1", 100, 0, anonymousId="guest-cart"))
    send(http, tenant, order("G-2", 200, 5, userId="u-buyer"))
    live.drain()
    send(http, tenant, {"type": "identify", "userId": "u-buyer", "anonymousId": "guest-cart"})
    live.drain()
    pid = pid_of(http, tenant, "user_id", "u-buyer")

    first = get(http, tenant, f"/profiles/{pid}/orders", limit=1)
    assert [o["external_id"] for o in first["items"]] == ["G-2"]
    second = get(http, tenant, f"/profiles/{pid}/orders", limit=1, cursor=first["next_cursor"])
    assert [o["external_id"] for o in second["items"]] == ["G-1"]
    assert second["next_cursor"] is None
    profile = get(http, tenant, f"/profiles/{pid}")
    assert (profile["aggregates"]["orders_count"], profile["aggregates"]["revenue"]) == (
        2,
        "300.00",
    )
