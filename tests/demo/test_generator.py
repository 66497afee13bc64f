"""The demo shop generator: reproducible, Segment-valid, realistic and messy on purpose."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from otklik.demo.generator import (
    DemoConfig,
    Person,
    customers_csv_rows,
    generate_catalog,
    generate_events,
    generate_people,
    orders_csv_rows,
)
from otklik.demo.identities import JUNK_EMAILS, JUNK_PHONES
from otklik.demo.offline import CUSTOMER_COLUMNS, ORDER_COLUMNS

CFG = DemoConfig(customers=300)
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return generate_people(CFG)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate_events(CFG))


def parse_ts(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1] + "+00:00")


def norm_email(email: str) -> str:
    return email.strip().lower()


def norm_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return "7" + digits[1:] if len(digits) == 11 and digits[0] == "8" else digits


def dump(rows: Any) -> str:
    return json.dumps(list(rows), ensure_ascii=False, sort_keys=True, default=str)


# --- reproducibility -----------------------------------------------------------------------------


def test_the_same_config_gives_byte_identical_output(events: list[dict[str, Any]]) -> None:
    assert dump(generate_events(CFG)) == dump(events)
    assert generate_people(CFG) == generate_people(CFG)
    assert generate_catalog(CFG) == generate_catalog(CFG)
    assert dump(customers_csv_rows(CFG)) == dump(customers_csv_rows(CFG))
    assert dump(orders_csv_rows(CFG)) == dump(orders_csv_rows(CFG))


def test_another_seed_gives_another_shop(events: list[dict[str, Any]]) -> None:
    other = DemoConfig(customers=300, seed=7)
    assert dump(islice(generate_events(other), 100)) != dump(events[:100])
    assert generate_people(other) != generate_people(CFG)
    assert dump(orders_csv_rows(other)) != dump(orders_csv_rows(CFG))


def test_config_rejects_a_naive_start() -> None:
    with pytest.raises(ValueError):
        DemoConfig(start=datetime(2026, 5, 1))


# --- every message is what a Segment SDK would send ----------------------------------------------


def test_every_message_is_a_valid_segment_message(events: list[dict[str, Any]]) -> None:
    assert len(events) > 10 * CFG.customers
    for msg in events:
        assert msg["type"] in {"identify", "track", "page", "screen", "alias"}
        assert isinstance(msg["messageId"], str) and len(msg["messageId"]) < 100
        assert msg.get("userId") or msg.get("anonymousId")
        parse_ts(msg["timestamp"])
        ctx = msg["context"]
        assert ctx["library"]["name"] == "otklik-demo" and ctx["library"]["version"]
        assert ctx["locale"] in {"ru-RU", "en-US", "en-GB"}
        assert ctx["timezone"].startswith(("Europe/", "Asia/"))
        assert ctx["ip"].startswith(("203.0.113.", "198.51.100.", "192.0.2."))
        assert ctx["userAgent"]
        if msg["type"] == "track":
            assert isinstance(msg["event"], str) and msg["event"]
            assert isinstance(msg["properties"], dict)
        elif msg["type"] == "identify":
            assert msg["userId"] and msg["traits"]
        elif msg["type"] == "alias":
            assert msg["userId"] and msg["previousId"]
        else:
            assert msg["name"] and isinstance(msg["properties"], dict)
        if msg["type"] == "page":
            assert msg["properties"]["url"] == ctx["page"]["url"]
            assert msg["properties"]["path"] and msg["properties"]["title"]


def test_message_ids_are_unique(events: list[dict[str, Any]]) -> None:
    ids = [m["messageId"] for m in events]
    assert len(set(ids)) == len(ids)


def test_the_stream_is_in_time_order_within_the_window(events: list[dict[str, Any]]) -> None:
    moments = [parse_ts(m["timestamp"]) for m in events]
    assert moments == sorted(moments)
    assert moments[0] >= CFG.start
    assert moments[-1] < CFG.start + timedelta(days=CFG.days)


def test_all_kinds_of_calls_appear(events: list[dict[str, Any]]) -> None:
    kinds = Counter(m["type"] for m in events)
    assert set(kinds) == {"identify", "track", "page", "screen", "alias"}
    tracked = Counter(m["event"] for m in events if m["type"] == "track")
    for event in ("Product Viewed", "Product Added", "Checkout Started", "Order Completed"):
        assert tracked[event] > 0, event
    assert tracked["Signed Up"] > 0 and tracked["Signed In"] > 0


# --- orders follow the Segment e-commerce spec ---------------------------------------------------


def orders_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in events if m.get("event") == "Order Completed"]


def test_orders_have_unique_ids_and_totals_that_add_up(events: list[dict[str, Any]]) -> None:
    orders = orders_of(events)
    ids = [o["properties"]["order_id"] for o in orders]
    assert len(ids) == len(set(ids)) > 0
    for order in orders:
        props = order["properties"]
        assert re.fullmatch(r"o-\d{7}", props["order_id"])
        assert props["currency"] == "RUB"
        assert props["products"]
        for item in props["products"]:
            assert set(item) == {"product_id", "sku", "name", "price", "quantity", "category"}
            assert item["quantity"] >= 1 and item["price"] > 0
        expected = round(sum(i["price"] * i["quantity"] for i in props["products"]), 2)
        assert props["total"] == props["revenue"] == expected


def test_orders_spread_over_months_with_loyal_and_one_time_buyers(
    events: list[dict[str, Any]],
) -> None:
    orders = orders_of(events)
    months = {o["timestamp"][:7] for o in orders}
    assert len(months) >= 4
    per_buyer = Counter(o.get("userId") for o in orders if o.get("userId"))
    assert any(n == 1 for n in per_buyer.values())
    assert any(n >= 3 for n in per_buyer.values())


def test_some_carts_are_abandoned(events: list[dict[str, Any]]) -> None:
    carted: dict[str, set[str]] = defaultdict(set)
    bought: dict[str, set[str]] = defaultdict(set)
    for m in events:
        if m.get("event") == "Product Added":
            carted[m["anonymousId"]].add(m["properties"]["product_id"])
        elif m.get("event") == "Order Completed":
            ids = {p["product_id"] for p in m["properties"]["products"]}
            bought[m["anonymousId"]] |= ids
    assert any(carted[a] - bought[a] for a in carted)


# --- identity: anonymous first, then identify, more devices later --------------------------------


def test_identify_carries_user_id_anonymous_id_and_traits(
    events: list[dict[str, Any]], people: list[Person]
) -> None:
    by_user = {p.user_id: p for p in people}
    identifies = [m for m in events if m["type"] == "identify"]
    assert identifies
    signed_up: set[str] = set()
    for msg in identifies:
        person = by_user[msg["userId"]]
        if person.user_id not in signed_up:  # the first identify is the sign-up itself
            signed_up.add(person.user_id)
            assert msg["timestamp"] == msg["traits"]["createdAt"]
            assert msg["anonymousId"] == person.anonymous_ids[0]
        assert msg["anonymousId"] in person.anonymous_ids
        traits = msg["traits"]
        assert traits["firstName"] == person.first_name
        assert traits["name"] == f"{person.first_name} {person.last_name}"
        assert traits.get("email") == person.email and traits.get("phone") == person.phone
        assert person.signup_at is not None
        assert parse_ts(traits["createdAt"]) == person.signup_at
        if "birthday" in traits:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", traits["birthday"])


def test_anonymous_history_precedes_identify_for_some_people(
    events: list[dict[str, Any]], people: list[Person]
) -> None:
    first_identify: dict[str, int] = {}
    for n, m in enumerate(events):
        if m["type"] == "identify":
            first_identify.setdefault(m["anonymousId"], n)
    earlier_anonymous = {
        m["anonymousId"]
        for n, m in enumerate(events)
        if "userId" not in m and n < first_identify.get(m["anonymousId"], -1)
    }
    # Visits on an earlier day, not only the minutes right before signing up.
    multi_day = [
        p
        for p in people
        if p.signup_at
        and p.anonymous_ids[0] in earlier_anonymous
        and p.signup_at - p.first_seen_at > timedelta(hours=3)
    ]
    assert len(multi_day) >= 10


def test_later_visits_from_another_device_identify_again(events: list[dict[str, Any]]) -> None:
    devices: dict[str, set[str]] = defaultdict(set)
    for m in events:
        if m["type"] == "identify":
            devices[m["userId"]].add(m["anonymousId"])
    assert any(len(d) > 1 for d in devices.values())


def test_anonymous_only_visitors_never_identify(
    events: list[dict[str, Any]], people: list[Person]
) -> None:
    hidden = [p for p in people if p.anonymous_only]
    assert abs(len(hidden) - CFG.customers * CFG.anonymous_only_share) <= 1
    hidden_ids = {p.user_id for p in hidden}
    hidden_anon = {a for p in hidden for a in p.anonymous_ids}
    assert all(p.signup_at is None for p in hidden)
    seen = {m["anonymousId"] for m in events if m.get("anonymousId") in hidden_anon}
    assert seen
    for m in events:
        assert m.get("userId") not in hidden_ids
        if m.get("anonymousId") in hidden_anon:
            assert "userId" not in m and m["type"] != "identify"


def test_some_signups_send_an_alias(events: list[dict[str, Any]]) -> None:
    aliases = [m for m in events if m["type"] == "alias"]
    assert aliases
    assert all(m["previousId"] == m["anonymousId"] for m in aliases)


# --- people: realistic and messy on purpose ------------------------------------------------------


def test_people_are_mostly_russian_with_gender_consistent_surnames(people: list[Person]) -> None:
    assert len(people) == CFG.customers
    assert len({p.user_id for p in people}) == len(people)
    russian = [p for p in people if CYRILLIC.search(p.first_name)]
    assert 0.6 < len(russian) / len(people) < 0.8
    for p in russian:  # Иванов / Иванова, Высоцкий / Высоцкая
        if p.gender == "male":
            assert not p.last_name.endswith(("ова", "ева", "ёва", "ина", "ая")), p
        else:
            assert not p.last_name.endswith(("ов", "ев", "ёв", "ин", "ий", "ой")), p
    assert any(p.gender == "female" and p.last_name.endswith("ова") for p in russian)
    assert {p.gender for p in people} == {"male", "female"}
    assert all(1 <= len(p.anonymous_ids) <= 3 for p in people)
    assert all(len(p.devices) == len(p.anonymous_ids) for p in people)


def test_russian_emails_are_transliterated(people: list[Person]) -> None:
    for p in people:
        if p.email and p.email not in JUNK_EMAILS:
            assert not CYRILLIC.search(p.email)
            assert re.fullmatch(r"[\w.+-]+@[\w.-]+", p.email.strip()), p.email


def test_contacts_are_messy_on_purpose(people: list[Person]) -> None:
    emails = [p.email for p in people if p.email]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)
    phones = [p.phone for p in people if p.phone]
    assert any(ph.startswith("8 (") for ph in phones)
    for pattern in (r"\+7\d{10}", r"8 \(\d{3}\) \d{3}-\d{2}-\d{2}", r"\+7 \d{3} \d{3} \d{2} \d{2}"):
        assert any(re.fullmatch(pattern, ph) for ph in phones), pattern
    assert any(re.fullmatch(r"8\d{10}", ph) for ph in phones)
    assert any(re.fullmatch(r"7-\d{3}-\d{3}-\d{4}", ph) for ph in phones)
    assert any(p.email is None for p in people) and any(p.phone is None for p in people)
    assert all(p.email or p.phone for p in people)


def test_some_people_opened_a_second_account(people: list[Person]) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for p in people:
        if p.junk_contact:
            continue
        if p.email:
            owners["email:" + norm_email(p.email)].add(p.user_id)
        if p.phone:
            owners["phone:" + norm_phone(p.phone)].add(p.user_id)
    shared = [ids for ids in owners.values() if len(ids) > 1]
    dupes = [p for p in people if p.duplicate_of]
    assert shared and len(dupes) == round(CFG.customers * 0.02)
    by_user = {p.user_id: p for p in people}
    for dupe in dupes:
        original = by_user[dupe.duplicate_of or ""]
        assert any({dupe.user_id, original.user_id} <= ids for ids in shared)
        same_email = dupe.email is not None and dupe.email == original.email
        same_phone = dupe.phone is not None and dupe.phone == original.phone
        assert not same_email and not same_phone  # written differently, not copied
    # Without duplicates and junk, nobody shares a contact.
    assert all(ids & {d.user_id for d in dupes} for ids in shared)


def test_junk_contacts_are_present(people: list[Person]) -> None:
    junk = [p for p in people if p.junk_contact]
    assert junk
    for p in junk:
        assert p.email in JUNK_EMAILS or p.phone in JUNK_PHONES


# --- catalog -------------------------------------------------------------------------------------


def test_catalog_has_priced_products_in_russian_and_english() -> None:
    catalog = generate_catalog(CFG)
    assert len(catalog) == CFG.products
    assert len({p["product_id"] for p in catalog}) == len({p["sku"] for p in catalog}) == 200
    assert len({p["name"] for p in catalog}) == 200
    assert {p["category"] for p in catalog} >= {"electronics", "clothes", "home", "books"}
    assert any(CYRILLIC.search(p["name"]) for p in catalog)
    assert any(not CYRILLIC.search(p["name"]) for p in catalog)
    for p in catalog:
        assert isinstance(p["price"], float) and 100 < p["price"] < 200_000
        assert round(p["price"], 2) == p["price"]
        assert p["url"].startswith("https://") and p["product_id"] in p["url"]


# --- offline CSV export --------------------------------------------------------------------------


def test_customer_rows_include_the_documented_bad_rows() -> None:
    rows = list(customers_csv_rows(CFG))
    assert len(rows) == max(10, CFG.customers // 10)
    assert all(tuple(r) == CUSTOMER_COLUMNS for r in rows)
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert any(r["email"].endswith("@") for r in rows)
    assert any(r["phone"] == "12" for r in rows)
    assert any(r["birthday"].startswith("31.02.") for r in rows)
    assert any(r["external_id"] == "" for r in rows)
    good = [r for r in rows if r["external_id"]]
    assert all(re.fullmatch(r"2\d{12}", r["loyalty_card"]) for r in good)


def test_order_rows_are_line_items_with_the_documented_bad_rows() -> None:
    customers = {r["external_id"] for r in customers_csv_rows(CFG)}
    rows = list(orders_csv_rows(CFG))
    assert all(tuple(r) == ORDER_COLUMNS for r in rows)
    assert any(r["total"].startswith("-") for r in rows)
    assert any(r["placed_at"].startswith("31.02.") for r in rows)
    assert any(r["customer_external_id"] == "" for r in rows)
    by_order: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_order[r["order_id"]].append(r)
    good = 0
    for lines in by_order.values():
        assert len({line["total"] for line in lines}) == 1  # total repeats on every line
        first = lines[0]
        if first["total"].startswith("-") or not first["customer_external_id"]:
            continue
        if first["placed_at"].startswith("31.02."):
            continue
        good += 1
        assert first["customer_external_id"] in customers
        assert datetime.fromisoformat(first["placed_at"]).tzinfo is not None
        expected = sum(float(x["price"]) * int(x["quantity"]) for x in lines)
        assert first["total"] == f"{expected:.2f}"
    assert len(by_order) - good <= max(3, round(0.02 * len(by_order)))


def test_offline_customers_are_not_the_online_ones(people: list[Person]) -> None:
    online = {p.user_id for p in people}
    assert not online & {r["external_id"] for r in customers_csv_rows(CFG)}
