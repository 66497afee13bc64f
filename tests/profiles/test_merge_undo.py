"""Explicit merges, and undoing any merge so both people come back exactly as they were."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import (
    at,
    get,
    idents,
    lookup,
    merge,
    order,
    send,
    timeline,
    undo,
)


def person(http: httpx.Client, tenant: Tenant, user_id: str) -> dict[str, Any]:
    found = lookup(http, tenant, "user_id", user_id)
    assert found is not None, user_id
    return found


def activity(http: httpx.Client, tenant: Tenant, pid: str) -> list[tuple[str, str | None, str]]:
    """What the customer did (system records aside), newest first."""
    return [
        (e["type"], e["name"], e["message_id"])
        for e in timeline(http, tenant, pid)
        if e["type"] != "system"
    ]


def test_explicit_merge_then_undo_restores_both_people_exactly(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "u-win",
            "anonymousId": "a-win",
            "traits": {"name": "Winner", "city": "Moscow", "email": "win@mail.ru"},
            "timestamp": at(0),
        },
        {"type": "page", "anonymousId": "a-win", "name": "Catalog", "timestamp": at(1)},
        order("W-1", 100, 2, userId="u-win"),
        # The loser has a history of its own: a visitor already merged into it.
        {"type": "page", "anonymousId": "a-kid", "name": "Toys", "timestamp": at(3)},
        {
            "type": "identify",
            "userId": "u-lose",
            "anonymousId": "a-lose",
            "traits": {"name": "Loser", "nickname": "lo", "email": "lose@mail.ru"},
            "timestamp": at(4),
        },
        order("L-1", 50, 5, userId="u-lose"),
    )
    live.drain()
    send(
        http,
        tenant,
        {"type": "identify", "userId": "u-lose", "anonymousId": "a-kid", "timestamp": at(6)},
    )
    live.drain()
    winner, loser = person(http, tenant, "u-win"), person(http, tenant, "u-lose")
    assert len(loser["merged_ids"]) == 1
    before_w_activity = activity(http, tenant, winner["id"])
    before_l_activity = activity(http, tenant, loser["id"])

    r = merge(http, tenant, winner["id"], loser["id"])
    assert r.status_code == 201, r.text
    merged = r.json()
    merge_id = merged["merge"]["id"]
    assert merged["merge"]["reason"] == "manual"
    one = merged["winner"]
    # Explicit, so allowed across two user ids; the winner's values win conflicts.
    assert {("user_id", "u-win"), ("user_id", "u-lose"), ("anonymous_id", "a-kid")} <= idents(one)
    assert one["traits"] == {
        "name": "Winner",
        "city": "Moscow",
        "email": "win@mail.ru",
        "nickname": "lo",
    }
    assert sorted(one["merged_ids"]) == sorted([loser["id"], *loser["merged_ids"]])
    assert one["aggregates"]["orders_count"] == 2
    assert merged["loser"]["id"] == winner["id"]  # the loser's id answers with the winner
    assert person(http, tenant, "u-lose")["id"] == winner["id"]

    # After the merge: the loser's device comes back, the winner updates their profile.
    send(
        http,
        tenant,
        {"type": "page", "anonymousId": "a-lose", "name": "Sale", "timestamp": at(20)},
        order("L-2", 70, 21, anonymousId="a-lose"),
        {"type": "identify", "userId": "u-win", "traits": {"vip": True}, "timestamp": at(22)},
    )
    live.drain()

    r = undo(http, tenant, merge_id)
    assert r.status_code == 200, r.text
    assert r.json()["merge"]["undone_at"] is not None
    w_after, l_after = person(http, tenant, "u-win"), person(http, tenant, "u-lose")
    assert w_after["id"] == winner["id"] and l_after["id"] == loser["id"]
    assert r.json()["winner"] == get(http, tenant, f"/profiles/{winner['id']}")
    assert r.json()["loser"] == get(http, tenant, f"/profiles/{loser['id']}")

    # The loser: its identities, traits and merged visitor back, plus what it did meanwhile.
    assert idents(l_after) == idents(loser)
    assert l_after["traits"] == loser["traits"]
    assert (l_after["email"], l_after["phone"]) == (loser["email"], loser["phone"])
    assert l_after["merged_ids"] == loser["merged_ids"]
    assert l_after["merged_into"] is None
    new_l = activity(http, tenant, loser["id"])
    assert [(t, n) for t, n, _ in new_l[:2]] == [("track", "Order Completed"), ("page", "Sale")]
    assert new_l[2:] == before_l_activity
    l_agg, l_was = l_after["aggregates"], loser["aggregates"]
    assert l_agg["events_count"] == l_was["events_count"] + 2
    assert l_agg["first_seen_at"] == l_was["first_seen_at"]
    assert l_agg["last_seen_at"] == at(21)
    assert l_agg["orders_count"] == 2
    assert Decimal(l_agg["revenue"]) == Decimal("120.00")
    assert l_agg["last_order_at"] == at(21)
    l_orders = get(http, tenant, f"/profiles/{loser['id']}/orders")["items"]
    assert [o["external_id"] for o in l_orders] == ["L-2", "L-1"]

    # The winner: as before, plus its own later identify.
    assert idents(w_after) == idents(winner)
    assert w_after["traits"] == {**winner["traits"], "vip": True}
    assert w_after["email"] == "win@mail.ru"
    assert w_after["merged_ids"] == []
    new_w = activity(http, tenant, winner["id"])
    assert [(t, n) for t, n, _ in new_w[:1]] == [("identify", None)]
    assert new_w[1:] == before_w_activity
    w_agg, w_was = w_after["aggregates"], winner["aggregates"]
    assert w_agg["events_count"] == w_was["events_count"] + 1
    assert (w_agg["first_seen_at"], w_agg["last_seen_at"]) == (w_was["first_seen_at"], at(22))
    assert (w_agg["orders_count"], w_agg["revenue"], w_agg["last_order_at"]) == (
        w_was["orders_count"],
        w_was["revenue"],
        w_was["last_order_at"],
    )
    # Both sides of the record show what happened.
    assert [e["name"] for e in timeline(http, tenant, winner["id"], type="system")] == [
        "profile.unmerged",
        "profile.merged",
    ]
    loser_records = timeline(http, tenant, loser["id"], type="system")
    assert [e["name"] for e in loser_records] == ["profile.unmerged", "profile.merged"]
    assert loser_records[1]["payload"]["properties"]["loser_id"] == loser["merged_ids"][0]
    logged = get(http, tenant, "/merges", profile_id=winner["id"])["items"]
    assert (logged[0]["id"], logged[0]["undone_at"] is not None) == (merge_id, True)


def test_undo_of_an_automatic_merge_separates_the_new_device_again(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(http, tenant, {"type": "identify", "userId": "u-auto", "anonymousId": "desk"})
    send(http, tenant, {"type": "page", "anonymousId": "mobile", "name": "Home"})
    live.drain()
    visitor = lookup(http, tenant, "anonymous_id", "mobile")
    send(http, tenant, {"type": "identify", "userId": "u-auto", "anonymousId": "mobile"})
    live.drain()
    user = person(http, tenant, "u-auto")
    (log,) = get(http, tenant, "/merges", profile_id=user["id"])["items"]

    assert undo(http, tenant, log["id"]).status_code == 200

    back = lookup(http, tenant, "anonymous_id", "mobile")
    assert visitor is not None and back is not None
    assert back["id"] == visitor["id"] and idents(back) == {("anonymous_id", "mobile")}
    assert back["aggregates"]["events_count"] == 1
    # The identify that caused the merge was the user's own event: it stays with the user.
    assert person(http, tenant, "u-auto")["aggregates"]["events_count"] == 2


def test_merges_are_undone_latest_first_and_only_once(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(http, tenant, *({"type": "identify", "userId": u} for u in ("u-a", "u-b", "u-c")))
    live.drain()
    a, b, c = (person(http, tenant, u)["id"] for u in ("u-a", "u-b", "u-c"))
    first = merge(http, tenant, a, b).json()["merge"]["id"]  # b into a
    second = merge(http, tenant, c, a).json()["merge"]["id"]  # then a (holding b) into c
    assert get(http, tenant, f"/profiles/{b}")["id"] == c

    r = undo(http, tenant, first)
    assert (r.status_code, r.json()["code"]) == (409, "undo_order")
    assert r.json()["details"]["undo_first"] == second

    assert undo(http, tenant, second).status_code == 200
    assert get(http, tenant, f"/profiles/{b}")["id"] == a  # b went back under a
    assert undo(http, tenant, first).status_code == 200
    for user_id, pid in (("u-a", a), ("u-b", b), ("u-c", c)):
        alone = person(http, tenant, user_id)
        assert alone["id"] == pid and alone["merged_ids"] == []
        assert idents(alone) == {("user_id", user_id)}

    r = undo(http, tenant, first)
    assert (r.status_code, r.json()["code"]) == (409, "already_undone")
    logged = get(http, tenant, "/merges")["items"]
    assert {m["id"] for m in logged} == {first, second}
    assert all(m["undone_at"] for m in logged)


def test_merge_refuses_nonsense(live: LiveServer, http: httpx.Client, tenant: Tenant) -> None:
    send(http, tenant, *({"type": "identify", "userId": u} for u in ("u-x", "u-y", "u-z")))
    live.drain()
    x, y, z = (person(http, tenant, u)["id"] for u in ("u-x", "u-y", "u-z"))

    r = merge(http, tenant, x, x)
    assert (r.status_code, r.json()["code"]) == (422, "same_profile")
    r = merge(http, tenant, x, "01890000-0000-7000-8000-000000000000")
    assert (r.status_code, r.json()["code"]) == (404, "profile_not_found")
    assert merge(http, tenant, x, y).status_code == 201
    for winner, loser in ((z, y), (y, z)):
        r = merge(http, tenant, winner, loser)
        assert (r.status_code, r.json()["code"]) == (409, "profile_already_merged")
        assert r.json()["details"] == {"profile_id": y, "merged_into": x}
    r = undo(http, tenant, "01890000-0000-7000-8000-000000000000")
    assert (r.status_code, r.json()["code"]) == (404, "merge_not_found")
    r = http.post("/api/v1/profiles/merge", json={"winner_id": x}, headers=tenant.bearer)
    assert r.status_code == 422
