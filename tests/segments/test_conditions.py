"""What each kind of condition matches, on a small shop whose answers are known by hand.

Every check saves a segment (the full, set-based build) and then asks for each customer
alone (the scoped, incremental path): both must give exactly the expected people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send
from tests.segments.support import create, event, identify, member_ids, settle

PEOPLE = ("ann", "bob", "cid", "dan", "eve")


def birthday_in(days: int) -> str:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return f"1990-{day:%m-%d}"


@pytest.fixture(scope="module")
def shop(live: LiveServer) -> Tenant:
    from tests.conftest import make_tenant

    tenant = make_tenant(live.engine)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        send(
            http,
            tenant,
            identify(
                "ann",
                100,
                email="Ann@Example.com",
                city="Moscow",
                age=34,
                vip=True,
                birthday=birthday_in(3),
                signup="2024-01-10",
                tags=["sale", "shoes"],
            ),
            identify(
                "bob",
                90,
                email="bob@example.com",
                city="Kazan",
                age=19,
                vip=False,
                birthday=birthday_in(20),
                signup=_days_ago(10),
            ),
            identify("cid", 80, city="moscow", age="41", birthday=birthday_in(0)),
            identify("dan", 70, phone="+79120000001"),
            identify("eve", 60, email="eve@example.com", age=27.5, tags=["new"]),
            event("ann", "Product Viewed", 5, sku="A1", price=100),
            event("ann", "Product Viewed", 4, sku="A2", price=200),
            event("ann", "Product Viewed", 40, sku="A3", price=300),
            event("bob", "Product Viewed", 1, sku="A1", price=100),
            event("bob", "Order Completed", 0.5, order_id="b-1", total=150, currency="RUB"),
            event("cid", "Product Viewed", 3, sku="B1", price=50),
            event("cid", "Order Completed", 10, order_id="c-1", total=1000, currency="RUB"),
            event("cid", "Order Completed", 20, order_id="c-2", total="2500.50", currency="RUB"),
            event("dan", "Order Completed", 200, order_id="d-1", total=99, currency="RUB"),
        )
        settle(live)
    return tenant


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


@pytest.fixture(scope="module")
def names(live: LiveServer, shop: Tenant) -> dict[str, str]:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return {pid_of(http, shop, "user_id", user): user for user in PEOPLE}


def matches(
    http: httpx.Client, shop: Tenant, live: LiveServer, names: dict[str, str], rules: dict[str, Any]
) -> set[str]:
    seg = create(http, shop, rules, live)
    assert seg["state"] == "ready", seg
    built = {names[pid] for pid in member_ids(http, shop, seg["id"])}
    assert seg["members_count"] == len(built)
    # The same rules through the incremental path, one profile at a time.
    from otklik.segments import repository as repo
    from otklik.segments.evaluate import matching
    from otklik.segments.loading import compile_row

    loop = live.app.state.segments
    with live.engine.connect() as conn:
        row = repo.segment(conn, shop.id, __import__("uuid").UUID(seg["id"]))
        compiled = compile_row(row)
        base = loop.base(conn, shop.id, datetime.now(UTC))
        one_by_one = {
            names[str(pid)]
            for pid_text in names
            for pid in matching(conn, compiled, base, [__import__("uuid").UUID(pid_text)])
        }
    assert one_by_one == built, (one_by_one, built)
    return built


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "trait equals ignores case",
        {"kind": "trait", "field": "city", "op": "eq", "value": "MOSCOW"},
        {"ann", "cid"},
    ),
    (
        "not equal includes the unknown",
        {"kind": "trait", "field": "city", "op": "ne", "value": "Moscow"},
        {"bob", "dan", "eve"},
    ),
    (
        "in a list",
        {"kind": "trait", "field": "city", "op": "in", "value": ["Kazan", "Omsk"]},
        {"bob"},
    ),
    (
        "contains",
        {"kind": "trait", "field": "email", "op": "contains", "value": "example"},
        {"ann", "bob", "eve"},
    ),
    (
        "starts with",
        {"kind": "trait", "field": "city", "op": "starts_with", "value": "mo"},
        {"ann", "cid"},
    ),
    (
        "number range (numeric text counts)",
        {"kind": "trait", "field": "age", "op": "between", "value": [25, 41]},
        {"ann", "cid", "eve"},
    ),
    ("greater than", {"kind": "trait", "field": "age", "op": "gt", "value": 30}, {"ann", "cid"}),
    ("boolean", {"kind": "trait", "field": "vip", "op": "is_false"}, {"bob"}),
    ("exists", {"kind": "trait", "field": "tags", "op": "exists"}, {"ann", "eve"}),
    (
        "list contains",
        {"kind": "trait", "field": "tags", "op": "contains", "value": "shoes"},
        {"ann"},
    ),
    (
        "signed up more than 30 days ago",
        {"kind": "trait", "field": "signup", "op": "days_ago_more_than", "value": 30},
        {"ann"},
    ),
    (
        "signed up in the last 30 days",
        {"kind": "trait", "field": "signup", "op": "days_ago_within", "value": 30},
        {"bob"},
    ),
    (
        "birthday within 7 days",
        {"kind": "trait", "field": "birthday", "op": "anniversary_within", "value": 7},
        {"ann", "cid"},
    ),
    (
        "orders count",
        {"kind": "attribute", "field": "orders_count", "op": "gte", "value": 1},
        {"bob", "cid", "dan"},
    ),
    ("has a phone", {"kind": "attribute", "field": "phone", "op": "exists"}, {"dan"}),
    (
        "viewed twice in 30 days",
        {"kind": "event", "name": "Product Viewed", "within_days": 30, "op": "gte", "value": 2},
        {"ann"},
    ),
    (
        "viewed ever, 3 times",
        {"kind": "event", "name": "Product Viewed", "op": "eq", "value": 3},
        {"ann"},
    ),
    (
        "viewed at most once (none counts)",
        {"kind": "event", "name": "Product Viewed", "op": "lte", "value": 1},
        {"bob", "cid", "dan", "eve"},
    ),
    (
        "with a property filter",
        {
            "kind": "event",
            "name": "Product Viewed",
            "where": [{"property": "price", "op": "gte", "value": 150}],
        },
        {"ann"},
    ),
    (
        "revenue in 90 days",
        {
            "kind": "event",
            "name": "Order Completed",
            "within_days": 90,
            "measure": "sum",
            "property": "total",
            "op": "gte",
            "value": 1000,
        },
        {"cid"},
    ),
    (
        "average order value",
        {
            "kind": "event",
            "name": "Order Completed",
            "measure": "avg",
            "property": "total",
            "op": "lt",
            "value": 200,
        },
        {"bob", "dan"},
    ),
    (
        "no order in 60 days but ordered before",
        {
            "kind": "all",
            "rules": [
                {
                    "kind": "event",
                    "name": "Order Completed",
                    "within_days": 60,
                    "op": "eq",
                    "value": 0,
                },
                {"kind": "attribute", "field": "orders_count", "op": "gte", "value": 1},
            ],
        },
        {"dan"},
    ),
    (
        "viewed but did not buy within a day",
        {
            "kind": "sequence",
            "first": {"name": "Product Viewed"},
            "then_not": {"name": "Order Completed"},
            "within_hours": 24,
            "in_last_days": 30,
        },
        {"ann", "cid"},
    ),
    (
        "any and not",
        {
            "kind": "any",
            "rules": [
                {"kind": "trait", "field": "vip", "op": "is_true"},
                {"kind": "not", "rule": {"kind": "trait", "field": "email", "op": "exists"}},
            ],
        },
        {"ann", "cid", "dan"},
    ),
    ("has an email identifier", {"kind": "identifier", "type": "email"}, {"ann", "bob", "eve"}),
    (
        "no consent answer yet",
        {"kind": "consent", "channel": "email", "status": "none"},
        set(PEOPLE),
    ),
]


@pytest.mark.parametrize(("title", "rules", "expected"), CASES, ids=[c[0] for c in CASES])
def test_condition(
    http: httpx.Client,
    shop: Tenant,
    live: LiveServer,
    names: dict[str, str],
    title: str,
    rules: dict[str, Any],
    expected: set[str],
) -> None:
    assert matches(http, shop, live, names, rules) == expected


def test_reachable_follows_consent_and_suppression(
    http: httpx.Client, shop: Tenant, live: LiveServer, names: dict[str, str]
) -> None:
    by_user = {user: pid for pid, user in names.items()}
    seg = create(http, shop, {"kind": "reachable", "channel": "email"}, live)
    assert member_ids(http, shop, seg["id"]) == set()  # opt-in: nobody agreed yet
    for user in ("ann", "bob", "cid"):  # cid has no email: consent alone is not enough
        r = http.put(
            f"/api/v1/profiles/{by_user[user]}/consents",
            json={"channel": "email", "status": "granted"},
            headers=shop.bearer,
        )
        assert r.status_code == 200, r.text
    live.app.state.segments.drain()
    assert {names[p] for p in member_ids(http, shop, seg["id"])} == {"ann", "bob"}
    r = http.post(
        "/api/v1/suppressions",
        json={"channel": "email", "address": "bob@example.com", "reason": "manual"},
        headers=shop.bearer,
    )
    assert r.status_code in (200, 201), r.text
    live.app.state.segments.drain()
    assert {names[p] for p in member_ids(http, shop, seg["id"])} == {"ann"}
