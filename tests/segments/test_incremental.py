"""Segments stay current as events arrive, as time passes and as people merge; every entry
and exit is kept in the history and told to the profile's timeline."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from otklik.segments import repository as repo
from otklik.segments.evaluate import matching
from otklik.segments.loading import compile_row
from tests.conftest import LiveServer, Tenant
from tests.profiles.support import merge, pid_of, send, timeline
from tests.segments.support import create, event, identify, member_ids, post, segment, settle

VIEWED_TWICE = {
    "kind": "event",
    "name": "Product Viewed",
    "within_days": 30,
    "op": "gte",
    "value": 2,
}


def names_on(http: httpx.Client, tenant: Tenant, profile_id: str) -> list[str]:
    return [e.get("name") for e in timeline(http, tenant, profile_id)]


def test_entries_and_exits_follow_events_and_reach_the_timeline(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, identify("p1", 1, city="Omsk"), event("p1", "Product Viewed", 1))
    settle(live)
    seg = create(
        http,
        tenant,
        {
            "kind": "all",
            "rules": [
                VIEWED_TWICE,
                {"kind": "trait", "field": "city", "op": "eq", "value": "Omsk"},
            ],
        },
        live,
    )
    p1 = pid_of(http, tenant, "user_id", "p1")
    assert member_ids(http, tenant, seg["id"]) == set()
    send(http, tenant, event("p1", "Product Viewed", 0))
    settle(live)
    assert member_ids(http, tenant, seg["id"]) == {p1}
    assert segment(http, tenant, seg["id"])["members_count"] == 1
    send(http, tenant, identify("p1", 0, city="Tver"))
    settle(live)
    assert member_ids(http, tenant, seg["id"]) == set()
    assert segment(http, tenant, seg["id"])["members_count"] == 0
    history = http.get(f"/api/v1/segments/{seg['id']}/history", headers=tenant.bearer).json()
    assert [(h["profile_id"], h["exited_at"] is not None) for h in history] == [(p1, True)]
    names = names_on(http, tenant, p1)
    assert names.index("segment.exited") < names.index("segment.entered")  # newest first
    stays = http.get(f"/api/v1/profiles/{p1}/segments", headers=tenant.bearer).json()
    assert stays[0]["segment_name"] == seg["name"]


def test_a_counted_event_ageing_out_is_noticed_at_its_due_time(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    # The older view turns 30 days old three seconds from now: no one rescans, a due time fires.
    send(
        http,
        tenant,
        {**event("p2", "Product Viewed"), "timestamp": _ago_seconds(30 * 86400 - 3)},
        event("p2", "Product Viewed", 1),
    )
    settle(live)
    seg = create(http, tenant, VIEWED_TWICE, live)
    p2 = pid_of(http, tenant, "user_id", "p2")
    assert member_ids(http, tenant, seg["id"]) == {p2}
    assert scheduled(live, seg["id"]) == [p2]
    assert until(live, lambda: not member_ids(http, tenant, seg["id"]))


def test_an_at_most_condition_admits_the_person_whose_extra_event_ages_out(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    # Three views, the oldest 30 days old in three seconds: "at most 2" holds from then on.
    # The build schedules people over the limit (not its members) for that moment.
    send(
        http,
        tenant,
        {**event("p9", "Product Viewed"), "timestamp": _ago_seconds(30 * 86400 - 3)},
        event("p9", "Product Viewed", 1),
        event("p9", "Product Viewed", 2),
        event("p10", "Product Viewed", 1),
    )
    settle(live)
    seg = create(http, tenant, {**VIEWED_TWICE, "op": "lte", "value": 2}, live)
    p9, p10 = pid_of(http, tenant, "user_id", "p9"), pid_of(http, tenant, "user_id", "p10")
    members = member_ids(http, tenant, seg["id"])
    assert p10 in members and p9 not in members
    assert scheduled(live, seg["id"]) == [p9]
    assert until(live, lambda: p9 in member_ids(http, tenant, seg["id"]))


def scheduled(live: LiveServer, segment_id: str) -> list[str]:
    """The profiles with a due time in the segment."""
    with live.engine.connect() as conn:
        due = repo.take_due(conn, datetime(2100, 1, 1, tzinfo=UTC), 1000)
    return sorted(str(r.profile_id) for r in due if r.segment_id == uuid.UUID(segment_id))


def until(live: LiveServer, done: Callable[[], bool], seconds: float = 20) -> bool:
    """Let the segment loop run its due times until `done` (a due time is seconds away)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.5)
        live.app.state.segments.drain()
    return done()


def _ago_seconds(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds, UTC).isoformat().replace("+00:00", "Z")


def test_a_segment_of_segments_moves_in_the_same_pass(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, identify("p3", 0, city="Perm"))
    settle(live)
    # Nobody viewed anything yet: the event name is allowed ahead of its first arrival.
    viewers = create(http, tenant, {**VIEWED_TWICE, "allow_unknown": True}, live)
    from_perm = create(
        http,
        tenant,
        {
            "kind": "all",
            "rules": [
                {"kind": "segment", "segment_id": viewers["id"]},
                {"kind": "trait", "field": "city", "op": "eq", "value": "Perm"},
            ],
        },
        live,
    )
    send(http, tenant, event("p3", "Product Viewed", 0), event("p3", "Product Viewed", 0))
    live.drain()
    live.app.state.segments.run_once()  # one pass, not until quiet
    p3 = pid_of(http, tenant, "user_id", "p3")
    assert member_ids(http, tenant, viewers["id"]) == {p3}
    assert member_ids(http, tenant, from_perm["id"]) == {p3}


def test_a_merged_profile_leaves_and_its_winner_is_judged_with_both_histories(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, event("m1", "Product Viewed", 2), event("m2", "Product Viewed", 1))
    settle(live)
    seg = create(http, tenant, VIEWED_TWICE, live)
    static = post(
        http, tenant, "/segments", {"name": f"list-{uuid.uuid4().hex[:6]}", "kind": "static"}
    ).json()
    m1, m2 = pid_of(http, tenant, "user_id", "m1"), pid_of(http, tenant, "user_id", "m2")
    r = post(http, tenant, f"/segments/{static['id']}/members", {"profile_ids": [m2]})
    assert r.json() == {"changed": 1, "not_found": []}
    assert member_ids(http, tenant, seg["id"]) == set()
    assert merge(http, tenant, m1, m2).status_code == 201
    settle(live)
    assert member_ids(http, tenant, seg["id"]) == {m1}  # one view each, two together
    assert member_ids(http, tenant, static["id"]) == {m1}  # the listed person moved along


def test_editing_rules_keeps_old_members_until_rebuilt_then_tells_the_difference(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, identify("e1", 0, city="Ufa", age=20), identify("e2", 0, city="Ufa", age=40))
    settle(live)
    seg = create(http, tenant, {"kind": "trait", "field": "age", "op": "lt", "value": 30}, live)
    e1, e2 = pid_of(http, tenant, "user_id", "e1"), pid_of(http, tenant, "user_id", "e2")
    assert names_on(http, tenant, e1).count("segment.entered") == 0  # first build is quiet
    live.app.state.segments.stop()  # hold the loop, to look between edit and rebuild
    try:
        r = http.patch(
            f"/api/v1/segments/{seg['id']}",
            json={"rules": {"kind": "trait", "field": "age", "op": "gte", "value": 30}},
            headers=tenant.bearer,
        )
        assert r.status_code == 200 and r.json()["state"] == "stale", r.text
        assert r.json()["version"] == seg["version"] + 1
        assert member_ids(http, tenant, seg["id"]) == {e1}
        live.app.state.segments.drain()
    finally:
        live.app.state.segments.start()
    after = segment(http, tenant, seg["id"])
    assert after["state"] == "ready" and after["build_ms"] is not None
    assert member_ids(http, tenant, seg["id"]) == {e2}
    assert "segment.entered" in names_on(http, tenant, e2)
    assert "segment.exited" in names_on(http, tenant, e1)


def test_static_lists_and_snapshots(http: httpx.Client, tenant: Tenant, live: LiveServer) -> None:
    send(
        http,
        tenant,
        identify("s1", 0, email="s1@example.com"),
        identify("s2", 0, phone="+79120000077"),
    )
    settle(live)
    s1, s2 = pid_of(http, tenant, "user_id", "s1"), pid_of(http, tenant, "user_id", "s2")
    static = post(
        http, tenant, "/segments", {"name": f"vip-{uuid.uuid4().hex[:6]}", "kind": "static"}
    ).json()
    r = post(
        http,
        tenant,
        f"/segments/{static['id']}/members",
        {"emails": ["S1@Example.com", "nobody@example.com"], "phones": ["8 (912) 000-00-77"]},
    )
    body = r.json()
    assert body["changed"] == 2
    assert body["not_found"] == [
        {"type": "email", "value": "nobody@example.com", "reason": "no such customer"}
    ]
    assert member_ids(http, tenant, static["id"]) == {s1, s2}
    snap = post(
        http, tenant, f"/segments/{static['id']}/snapshot", {"name": f"snap-{uuid.uuid4().hex[:6]}"}
    )
    assert snap.status_code == 201 and snap.json()["members_count"] == 2
    r = post(http, tenant, f"/segments/{static['id']}/members/remove", {"profile_ids": [s1]})
    assert r.json()["changed"] == 1
    assert member_ids(http, tenant, static["id"]) == {s2}
    assert member_ids(http, tenant, snap.json()["id"]) == {s1, s2}
    r = http.patch(
        f"/api/v1/segments/{static['id']}", json={"rules": VIEWED_TWICE}, headers=tenant.bearer
    )
    assert r.status_code == 422 and r.json()["code"] == "not_dynamic"


def random_rules(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.4:
        kind = rng.choice(["all", "any", "not"])
        if kind == "not":
            return {"kind": "not", "rule": random_rules(rng, depth + 1)}
        return {
            "kind": kind,
            "rules": [random_rules(rng, depth + 1) for _ in range(rng.randint(1, 3))],
        }
    return rng.choice(
        [
            {
                "kind": "trait",
                "field": "tier",
                "op": rng.choice(["eq", "ne"]),
                "value": rng.choice(["a", "b"]),
            },
            {
                "kind": "trait",
                "field": "score",
                "op": rng.choice(["gt", "lte"]),
                "value": rng.randint(0, 10),
            },
            {
                "kind": "event",
                "name": "Seen",
                "within_days": rng.choice([1, 5, 30]),
                "op": rng.choice(["gte", "lte", "eq"]),
                "value": rng.randint(0, 3),
            },
            {
                "kind": "event",
                "name": "Paid",
                "measure": "sum",
                "property": "amount",
                "op": rng.choice(["gte", "lt"]),
                "value": rng.choice([0, 50, 200]),
            },
            {"kind": "attribute", "field": "orders_count", "op": "gte", "value": 1},
        ]
    )


def test_full_build_and_one_by_one_evaluation_agree_on_random_rules(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    rng = random.Random(20261123)
    batch: list[dict[str, Any]] = []
    for n in range(30):
        user = f"r{n}"
        traits: dict[str, Any] = {"tier": rng.choice(["a", "b", "c"])}
        if rng.random() < 0.8:
            traits["score"] = rng.randint(0, 10)
        batch.append(identify(user, 40, **traits))
        batch += [event(user, "Seen", rng.uniform(0, 35)) for _ in range(rng.randint(0, 4))]
        batch += [
            event(user, "Paid", rng.uniform(0, 60), amount=rng.choice([10, 60, 150]))
            for _ in range(rng.randint(0, 2))
        ]
    send(http, tenant, *batch)
    settle(live)
    ids = [uuid.UUID(pid_of(http, tenant, "user_id", f"r{n}")) for n in range(30)]
    for _ in range(12):
        seg = create(http, tenant, random_rules(rng), live)
        built = member_ids(http, tenant, seg["id"])
        with live.engine.connect() as conn:
            compiled = compile_row(repo.segment(conn, tenant.id, uuid.UUID(seg["id"])))
            base = live.app.state.segments.base(conn, tenant.id, datetime.now(UTC))
            alone = {str(p) for pid in ids for p in matching(conn, compiled, base, [pid])}
        assert alone == built, seg["rules"]


def test_a_follow_up_counts_only_from_the_same_person(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(
        http,
        tenant,
        event("q1", "Product Added", 3),
        event("q2", "Order Completed", 2.95, order_id="q2-1", total=10),  # someone else buys
        event("q2", "Product Added", 2),
        event("q2", "Order Completed", 1.9, order_id="q2-2", total=10),  # q2 bought theirs
        event("q3", "Product Added", 0.5),  # too recent to judge: the day is not over
    )
    settle(live)
    rules = {
        "kind": "sequence",
        "first": {"name": "Product Added"},
        "then_not": {"name": "Order Completed"},
        "within_hours": 24,
        "in_last_days": 7,
    }
    seg = create(http, tenant, rules, live)
    assert member_ids(http, tenant, seg["id"]) == {pid_of(http, tenant, "user_id", "q1")}


def test_profiles_changed_together_keep_the_segments_their_change_does_not_touch(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, identify("t1", 1, city="Omsk"), identify("t2", 1, city="Tula"))
    settle(live)
    in_omsk = create(
        http, tenant, {"kind": "trait", "field": "city", "op": "eq", "value": "Omsk"}, live
    )
    browsers = create(http, tenant, {**VIEWED_TWICE, "allow_unknown": True}, live)
    t1, t2 = pid_of(http, tenant, "user_id", "t1"), pid_of(http, tenant, "user_id", "t2")
    # One batch: t2 moves to Omsk (its city segment is asked about), t1 only browses.
    send(
        http,
        tenant,
        identify("t2", 0, city="Omsk"),
        event("t1", "Product Viewed", 0),
        event("t1", "Product Viewed", 0),
    )
    live.drain()
    live.app.state.segments.run_once()
    assert member_ids(http, tenant, in_omsk["id"]) == {t1, t2}
    assert member_ids(http, tenant, browsers["id"]) == {t1}


def test_the_current_segments_of_a_customer_are_not_crowded_out_by_past_stays(
    http: httpx.Client, tenant: Tenant, live: LiveServer
) -> None:
    send(http, tenant, identify("c7", 0, city="Irkutsk", tier="gold"))
    settle(live)
    city = create(
        http, tenant, {"kind": "trait", "field": "city", "op": "eq", "value": "Irkutsk"}, live
    )
    gold = create(
        http, tenant, {"kind": "trait", "field": "tier", "op": "eq", "value": "gold"}, live
    )
    for tier in ("silver", "gold", "silver", "gold", "silver"):  # newer stays, all ended
        send(http, tenant, identify("c7", 0, tier=tier))
        settle(live)
    c7 = pid_of(http, tenant, "user_id", "c7")
    path = f"/api/v1/profiles/{c7}/segments"
    now = http.get(path, params={"current": "true", "limit": 1}, headers=tenant.bearer).json()
    assert [s["segment_id"] for s in now] == [city["id"]]
    every = http.get(path, params={"limit": 100}, headers=tenant.bearer).json()
    assert sorted(s["segment_id"] == gold["id"] for s in every) == [False, True, True, True]
