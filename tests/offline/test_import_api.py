"""`POST /api/v1/imports/{customers|orders}`: offline files become profiles and orders.

A valid customer row is an `identify` (userId = external_id, the other columns traits), an
order (all its line-item rows) an "Order Completed" `track`. messageIds derive from the row's
content, so the same file imported twice stores nothing new, a changed row is a new fact that
updates the profile, and a re-imported order with a new total corrects revenue without
counting the order twice. Bad rows are reported with their row number, a stable code and the
field; one bad row rejects its whole order. Problems with the file as a whole are a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from otklik.config import Settings
from tests.conftest import LiveServer, Tenant, make_tenant, serve
from tests.offline.support import (
    CUSTOMER_HEADER,
    ORDER_HEADER,
    counts,
    csv_file,
    error_of,
    event_count,
    imported,
    rejections,
    upload,
)
from tests.profiles.support import get, lookup

# Messy but valid contacts (upper-case emails with spaces around, phones written the Russian
# way) beside one bad row of each kind.
CUSTOMERS = [
    ("c-1", " IVAN.Petrov@Mail.RU ", "8 (912) 345-67-01", "Иван", "1990-04-12", "Москва"),
    ("c-2", "", "+7 912 345 67 02", "Мария", "1985-12-31", "Казань"),
    ("c-3", "ivan@", "", "Пётр", "", "Тверь"),  # invalid email
    ("c-4", "olga@shop.ru", "12", "Ольга", "", "Тула"),  # invalid phone
    ("c-5", "", "89123456705", "Анна", "31.02.1990", "Омск"),  # impossible birthday
    ("", "orphan@shop.ru", "", "Некто", "", ""),  # no external_id
    ("c-7", "Olga.K@Shop.ru", "", "Ольга", "", "Пермь"),
]
CUSTOMER_ERRORS = [
    (3, "invalid_email", "email"),
    (4, "invalid_phone", "phone"),
    (5, "invalid_date", "birthday"),
    (6, "missing_external_id", "external_id"),
]

# Line items, several per order; orders o-4..o-7 each have one kind of bad row.
ORDERS = [
    ("o-1", "c-1", "2026-03-01 10:00:00", "1500.00", "RUB", "SKU-A", "Чай", "2", "500.00"),
    ("o-1", "c-1", "2026-03-01 10:00:00", "1500.00", "RUB", "SKU-B", "Кружка", "1", "500.00"),
    ("o-2", "c-1", "2026-03-05T12:30:00+03:00", "700", "RUB", "SKU-C", "Мёд", "1", "700"),
    ("o-3", "c-2", "2026-03-02", "", "RUB", "SKU-A", "Чай", "3", "500"),  # total from lines
    ("o-4", "c-2", "2026-03-03", "-10.00", "RUB", "SKU-A", "Чай", "1", "10"),  # negative total
    ("o-4", "c-2", "2026-03-03", "-10.00", "RUB", "SKU-B", "Кружка", "1", "0"),
    ("o-5", "c-2", "2026-03-04", "990", "RUB", "SKU-A", "Чай", "1", "490"),
    ("o-5", "c-2", "31.02.2026", "990", "RUB", "SKU-B", "Кружка", "1", "500"),  # bad date
    ("o-6", "c-7", "2026-03-06", "300", "RUB", "SKU-A", "Чай", "1", "150"),
    ("o-6", "", "2026-03-06", "300", "RUB", "SKU-B", "Кружка", "1", "150"),  # no customer
    ("o-7", "c-7", "2026-03-07", "100", "RUB", "SKU-A", "Чай", "1", "100"),
    ("o-7", "c-7", "2026-03-07", "200", "RUB", "SKU-B", "Кружка", "1", "100"),  # 2 totals
]
ORDER_ERRORS = [
    (5, "invalid_amount", "total"),
    (6, "invalid_amount", "total"),
    (7, "order_rejected", None),
    (8, "invalid_date", "placed_at"),
    (9, "order_rejected", None),
    (10, "missing_customer", "customer_external_id"),
    (11, "order_rejected", None),
    (12, "inconsistent_order", "total"),
]


def customers_csv(rows: Sequence[Sequence[str]] = CUSTOMERS) -> bytes:
    return csv_file(CUSTOMER_HEADER, rows)


def orders_csv(rows: Sequence[Sequence[str]] = ORDERS) -> bytes:
    return csv_file(ORDER_HEADER, rows)


def profile(http: httpx.Client, tenant: Tenant, user_id: str) -> dict[str, Any]:
    found = lookup(http, tenant, "user_id", user_id)
    assert found is not None, user_id
    return found


def orders_of(http: httpx.Client, tenant: Tenant, user_id: str) -> dict[str, dict[str, Any]]:
    page = get(http, tenant, f"/profiles/{profile(http, tenant, user_id)['id']}/orders")
    return {order["external_id"]: order for order in page["items"]}


def money(aggregates: dict[str, Any]) -> tuple[int, Decimal]:
    return aggregates["orders_count"], Decimal(aggregates["revenue"])


# -- customers ------------------------------------------------------------------------------


def test_valid_customers_become_profiles_and_bad_rows_are_listed(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    report = imported(http, tenant, "customers", customers_csv())

    assert counts(report) == (7, 3, 3, 0, 4)
    assert rejections(report) == CUSTOMER_ERRORS
    assert all(e["message"] for e in report["rejected"])
    live.drain()

    ivan = profile(http, tenant, "c-1")
    assert (ivan["email"], ivan["phone"]) == ("ivan.petrov@mail.ru", "+79123456701")
    assert ivan["traits"]["firstName"] == "Иван"
    assert ivan["traits"]["birthday"] == "1990-04-12"
    assert ivan["traits"]["city"] == "Москва"
    assert {(i["type"], i["value"]) for i in ivan["identities"]} >= {
        ("user_id", "c-1"),
        ("email", "ivan.petrov@mail.ru"),
        ("phone", "+79123456701"),
    }
    maria = profile(http, tenant, "c-2")
    assert (maria["email"], maria["phone"]) == (None, "+79123456702")
    assert "email" not in maria["traits"]  # an empty cell is no trait
    assert profile(http, tenant, "c-7")["email"] == "olga.k@shop.ru"
    # Rejected rows left no trace: no profile by their id or their contacts.
    for kind, value in [
        ("user_id", "c-3"),
        ("user_id", "c-4"),
        ("user_id", "c-5"),
        ("email", "orphan@shop.ru"),
        ("email", "olga@shop.ru"),
        ("phone", "89123456705"),
    ]:
        assert lookup(http, tenant, kind, value) is None, (kind, value)


def test_reimporting_the_same_customers_stores_nothing(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    imported(http, tenant, "customers", customers_csv())
    live.drain()
    before = event_count(live.engine, tenant.id)

    report = imported(http, tenant, "customers", customers_csv())

    assert counts(report) == (7, 3, 0, 3, 4)
    assert rejections(report) == CUSTOMER_ERRORS
    live.drain()
    assert event_count(live.engine, tenant.id) == before
    assert profile(http, tenant, "c-1")["aggregates"]["events_count"] == 1


def test_a_changed_customer_row_is_stored_and_updates_the_profile(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    imported(http, tenant, "customers", customers_csv())
    live.drain()
    before = event_count(live.engine, tenant.id)
    moved = [
        ("c-2", "", "+7 912 345 67 02", "Мария", "1985-12-31", "Самара") if row[0] == "c-2" else row
        for row in CUSTOMERS
    ]

    report = imported(http, tenant, "customers", customers_csv(moved))

    assert counts(report) == (7, 3, 1, 2, 4)
    live.drain()
    assert event_count(live.engine, tenant.id) == before + 1
    maria = profile(http, tenant, "c-2")
    assert maria["traits"]["city"] == "Самара"
    assert maria["phone"] == "+79123456702"


def test_semicolon_csv_with_a_bom_and_shouting_headers_is_read(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """What Excel saves in a Russian locale: `;`-separated, a UTF-8 BOM, headers as typed."""
    body = "\ufeff" + "External_ID; Email ;Phone;City\nk-1;K1@Shop.RU;8-912-345-67-11;Сочи\n"

    report = imported(http, tenant, "customers", body.encode())

    assert counts(report) == (1, 1, 1, 0, 0)
    live.drain()
    person = profile(http, tenant, "k-1")
    assert (person["email"], person["phone"]) == ("k1@shop.ru", "+79123456711")
    assert person["traits"]["city"] == "Сочи"


# -- orders ---------------------------------------------------------------------------------


def test_line_items_are_grouped_into_orders_and_bad_orders_rejected_whole(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    imported(http, tenant, "customers", customers_csv())

    report = imported(http, tenant, "orders", orders_csv())

    assert counts(report) == (12, 3, 3, 0, 8)
    assert rejections(report) == ORDER_ERRORS
    live.drain()

    assert money(profile(http, tenant, "c-1")["aggregates"]) == (2, Decimal("2200.00"))
    assert money(profile(http, tenant, "c-2")["aggregates"]) == (1, Decimal("1500.00"))
    assert money(profile(http, tenant, "c-7")["aggregates"]) == (0, Decimal("0"))
    first = orders_of(http, tenant, "c-1")["o-1"]
    assert Decimal(first["total"]) == Decimal("1500.00")
    assert first["currency"] == "RUB"
    assert first["placed_at"].startswith("2026-03-01T10:00:00")
    assert sorted((i["sku"], i["quantity"], Decimal(i["price"])) for i in first["items"]) == [
        ("SKU-A", 2, Decimal("500.00")),
        ("SKU-B", 1, Decimal("500.00")),
    ]
    assert orders_of(http, tenant, "c-1")["o-2"]["placed_at"].startswith("2026-03-05T09:30:00")
    assert set(orders_of(http, tenant, "c-2")) == {"o-3"}  # o-4 and o-5 were rejected


def test_reimporting_the_same_orders_stores_nothing_and_counts_nothing_twice(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    imported(http, tenant, "orders", orders_csv())
    live.drain()
    before = event_count(live.engine, tenant.id)

    report = imported(http, tenant, "orders", orders_csv())

    assert counts(report) == (12, 3, 0, 3, 8)
    assert rejections(report) == ORDER_ERRORS
    live.drain()
    assert event_count(live.engine, tenant.id) == before
    assert money(profile(http, tenant, "c-1")["aggregates"]) == (2, Decimal("2200.00"))


def test_an_order_reimported_with_a_new_total_corrects_revenue(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    imported(http, tenant, "orders", orders_csv())
    live.drain()
    corrected = [(*row[:3], "900", *row[4:8], "900") if row[0] == "o-2" else row for row in ORDERS]

    report = imported(http, tenant, "orders", orders_csv(corrected))

    assert counts(report) == (12, 3, 1, 2, 8)
    live.drain()
    assert money(profile(http, tenant, "c-1")["aggregates"]) == (2, Decimal("2400.00"))
    assert Decimal(orders_of(http, tenant, "c-1")["o-2"]["total"]) == Decimal("900.00")


def test_an_order_for_an_unknown_customer_makes_the_profile(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    body = orders_csv([("w-1", "walk-in-9", "2026-04-01", "250", "", "SKU-A", "", "", "250")])

    report = imported(http, tenant, "orders", body)

    assert counts(report) == (1, 1, 1, 0, 0)
    live.drain()
    guest = profile(http, tenant, "walk-in-9")
    assert money(guest["aggregates"]) == (1, Decimal("250.00"))
    order = orders_of(http, tenant, "walk-in-9")["w-1"]
    assert order["currency"] == "RUB"  # the workspace's currency when the cell is empty
    assert [(i["sku"], i["quantity"]) for i in order["items"]] == [("SKU-A", 1)]


def test_rows_of_one_order_must_agree_on_date_and_currency(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    body = orders_csv(
        [
            ("d-1", "c-1", "2026-03-01 10:00", "200", "RUB", "SKU-A", "", "1", "100"),
            ("d-1", "c-1", "2026-03-02 10:00", "200", "RUB", "SKU-B", "", "1", "100"),
            ("m-1", "c-1", "2026-03-01", "200", "RUB", "SKU-A", "", "1", "100"),
            ("m-1", "c-1", "2026-03-01", "200", "usd", "SKU-B", "", "1", "100"),
            # The same moment written two ways, and the currency left out on one line: agree.
            ("s-1", "c-1", "2026-03-01", "200", "", "SKU-A", "", "1", "100"),
            ("s-1", "c-1", "2026-03-01 00:00:00", "200", "rub", "SKU-B", "", "1", "100"),
        ]
    )

    report = imported(http, tenant, "orders", body)

    assert counts(report) == (6, 1, 1, 0, 4)
    assert rejections(report) == [
        (1, "order_rejected", None),
        (2, "inconsistent_order", "placed_at"),
        (3, "order_rejected", None),
        (4, "inconsistent_order", "currency"),
    ]


def test_a_total_stated_on_a_later_line_is_the_orders_total(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """A total counts whichever line states it; only lines stating different totals clash."""
    body = orders_csv(
        [
            ("t-1", "c-1", "2026-03-01", "", "RUB", "SKU-A", "", "1", "100"),
            ("t-1", "c-1", "2026-03-01", "150", "RUB", "SKU-B", "", "1", "100"),  # a discount
        ]
    )

    assert counts(imported(http, tenant, "orders", body)) == (2, 1, 1, 0, 0)
    live.drain()
    assert money(profile(http, tenant, "c-1")["aggregates"]) == (1, Decimal("150.00"))


def test_customer_rows_the_store_cannot_hold_are_rejected_alone(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """No single row can fail a whole import (a 500) or a later step (the resolver)."""
    rows = [
        ("x" * 257, "", "", "Длинный", "", ""),
        ("nul-1", "", "", "Нуль", "", "a\x00b"),  # PostgreSQL can store no NUL: U+FFFD
        ("ok-1", "", "", "Норма", "", ""),
    ]
    report = imported(http, tenant, "customers", customers_csv(rows))

    assert counts(report) == (3, 2, 2, 0, 1)
    assert rejections(report) == [(1, "too_long", "external_id")]

    nested = b"[" * 300 + b"1" + b"]" * 300
    body = b'[{"external_id": "deep", "tags": ' + nested + b'}, {"external_id": "nul-2",'
    body += b' "city": "a\\u0000b", "note": "\\\\u0000 is how JSON writes NUL"}]'
    report = imported(http, tenant, "customers", body, fmt="json")

    assert counts(report) == (2, 1, 1, 0, 1)
    assert rejections(report) == [(1, "too_deep", None)]
    live.drain()
    assert profile(http, tenant, "nul-1")["traits"]["city"] == "a\ufffdb"
    assert profile(http, tenant, "nul-2")["traits"]["city"] == "a\ufffdb"
    assert profile(http, tenant, "nul-2")["traits"]["note"] == "\\u0000 is how JSON writes NUL"
    assert profile(http, tenant, "ok-1")["traits"]["firstName"] == "Норма"


def test_order_rows_the_store_cannot_hold_are_rejected_alone(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    day = "2026-03-01"
    body = orders_csv(
        [
            ("o" * 129, "c-1", day, "1", "RUB", "A", "", "1", "1"),
            ("long-customer", "c" * 257, day, "1", "RUB", "A", "", "1", "1"),
            ("too-early", "c-1", "0001-01-01T00:00:00+03:00", "1", "RUB", "A", "", "1", "1"),
            ("many", "c-1", day, "", "RUB", "A", "", "99999999999999999999", "1"),
            ("rich", "c-1", day, "", "RUB", "A", "", "2", "900000000000000"),
            ("rich", "c-1", day, "", "RUB", "B", "", "1", "1"),
            ("rubles", "c-1", day, "1", "РУБ", "A", "", "1", "1"),
            ("fine", "c-1", day, "", "RUB", "A", "", "1000000", "0.01"),
        ]
    )

    report = imported(http, tenant, "orders", body)

    assert counts(report) == (8, 1, 1, 0, 7)
    assert rejections(report) == [
        (1, "too_long", "order_id"),
        (2, "too_long", "customer_external_id"),
        (3, "invalid_date", "placed_at"),
        (4, "invalid_quantity", "quantity"),
        (5, "invalid_amount", "price"),
        (6, "order_rejected", None),
        (7, "invalid_currency", "currency"),
    ]
    live.drain()  # would time out if the resolver choked on a stored order
    assert money(profile(http, tenant, "c-1")["aggregates"]) == (1, Decimal("10000.00"))


def test_a_csv_field_over_the_csv_modules_limit_is_422_invalid_csv(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    body = customers_csv([("c-1", "", "", "x" * 200_000, "", "")])

    error_of(upload(http, tenant, "customers", body), 422, "invalid_csv")
    assert event_count(live.engine, tenant.id) == 0


# -- JSON and JSON Lines --------------------------------------------------------------------


def test_customers_as_a_json_array_with_the_format_from_content_type(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    body = orjson.dumps(
        [
            {"external_id": "j-1", "email": "J1@Shop.RU", "phone": 89123456721, "vip": True},
            {"external_id": 17, "first_name": "Число"},
            {"external_id": "j-3", "email": "not-an-email"},
            "not an object",
        ]
    )

    report = imported(http, tenant, "customers", body, fmt=None, content_type="application/json")

    assert counts(report) == (4, 2, 2, 0, 2)
    assert rejections(report) == [(3, "invalid_email", "email"), (4, "invalid_row", None)]
    live.drain()
    person = profile(http, tenant, "j-1")
    assert (person["email"], person["phone"]) == ("j1@shop.ru", "+79123456721")
    assert person["traits"]["vip"] is True
    assert profile(http, tenant, "17")["traits"]["firstName"] == "Число"
    again = imported(http, tenant, "customers", body, fmt="json")
    assert counts(again) == (4, 2, 0, 2, 2)


def test_orders_as_json_lines(live: LiveServer, http: httpx.Client, tenant: Tenant) -> None:
    lines = [
        {"order_id": "L-1", "customer_external_id": "jl-1", "placed_at": "2026-02-01",
         "total": 300, "sku": "A", "quantity": 1, "price": 100},
        {"order_id": "L-1", "customer_external_id": "jl-1", "placed_at": "2026-02-01",
         "total": 300, "sku": "B", "quantity": 2, "price": 100},
        {"order_id": "L-2", "customer_external_id": "jl-1", "placed_at": "2026-02-02",
         "total": -1, "sku": "A", "quantity": 1, "price": 1},
    ]  # fmt: skip
    body = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"

    report = imported(http, tenant, "orders", body, fmt=None, content_type="application/x-ndjson")

    assert counts(report) == (3, 1, 1, 0, 1)
    assert rejections(report) == [(3, "invalid_amount", "total")]
    live.drain()
    assert money(profile(http, tenant, "jl-1")["aggregates"]) == (1, Decimal("300.00"))
    items = orders_of(http, tenant, "jl-1")["L-1"]["items"]
    assert sorted((i["sku"], i["quantity"]) for i in items) == [("A", 1), ("B", 2)]


def test_json_lines_break_only_at_newlines(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """U+2028 and U+0085 are valid inside a JSON string; they end no JSON Lines record."""
    body = '{"external_id": "nl-1", "city": "Ростов\u2028на\u0085Дону"}\r\n\n'.encode()

    report = imported(http, tenant, "customers", body, fmt="jsonl")

    assert counts(report) == (1, 1, 1, 0, 0)
    live.drain()
    assert profile(http, tenant, "nl-1")["traits"]["city"] == "Ростов\u2028на\u0085Дону"


# -- the file as a whole --------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_422_invalid_encoding(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    body = "external_id,city\nc-1,Москва\n".encode("cp1251")

    error_of(upload(http, tenant, "customers", body), 422, "invalid_encoding")
    assert event_count(live.engine, tenant.id) == 0


@pytest.mark.parametrize(
    "body",
    [b'{"external_id": "c-1"}', b"42", b"[{", b""],
    ids=["object", "number", "broken", "empty"],
)
def test_json_that_is_not_an_array_is_422_invalid_json(
    live: LiveServer, http: httpx.Client, tenant: Tenant, body: bytes
) -> None:
    error_of(upload(http, tenant, "customers", body, fmt="json"), 422, "invalid_json")
    assert event_count(live.engine, tenant.id) == 0


def test_unknown_kinds_and_formats_are_422(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    error_of(upload(http, tenant, "products", customers_csv()), 422, "unknown_import")
    r = upload(http, tenant, "customers", customers_csv(), fmt="xml")
    error_of(r, 422, "unsupported_format")
    error_of(upload(http, tenant, "customers", b"", fmt="csv"), 422, "missing_header")
    assert event_count(live.engine, tenant.id) == 0


def test_a_secret_key_is_required(live: LiveServer, http: httpx.Client, tenant: Tenant) -> None:
    as_sdk = {"Authorization": f"Bearer {tenant.write_key}"}
    error_of(
        upload(http, tenant, "customers", customers_csv(), headers=as_sdk),
        403,
        "secret_key_required",
    )
    r = http.post("/api/v1/imports/customers", content=customers_csv())
    error_of(r, 401, "missing_api_key")
    wrong = {"Authorization": "Bearer sk_not-a-key"}
    error_of(
        upload(http, tenant, "customers", customers_csv(), headers=wrong), 401, "invalid_api_key"
    )
    assert event_count(live.engine, tenant.id) == 0


def test_each_key_imports_into_its_own_workspace_only(
    live: LiveServer, http: httpx.Client, tenant: Tenant, engine: Engine
) -> None:
    other = make_tenant(engine)
    imported(http, tenant, "customers", customers_csv())
    imported(http, tenant, "orders", orders_csv())
    live.drain()
    mine = event_count(live.engine, tenant.id)
    changed = [(*row[:5], "Владивосток") if row[0] == "c-1" else row for row in CUSTOMERS]

    # Idempotency is per workspace: the same file is all new to the other one.
    assert counts(imported(http, other, "customers", customers_csv(changed))) == (7, 3, 3, 0, 4)
    assert counts(imported(http, other, "orders", orders_csv()))[2] == 3
    live.drain()

    assert event_count(live.engine, tenant.id) == mine
    assert profile(http, tenant, "c-1")["traits"]["city"] == "Москва"
    assert profile(http, other, "c-1")["traits"]["city"] == "Владивосток"
    assert profile(http, tenant, "c-1")["id"] != profile(http, other, "c-1")["id"]
    assert money(profile(http, tenant, "c-1")["aggregates"]) == (2, Decimal("2200.00"))
    assert money(profile(http, other, "c-1")["aggregates"]) == (2, Decimal("2200.00"))


# -- size limit -----------------------------------------------------------------------------

SMALL_LIMIT = 2000


@pytest.fixture(scope="module")
def small(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    custom = settings.model_copy(update={"import_max_bytes": SMALL_LIMIT})
    with serve(custom, engine) as server:
        yield server


def test_a_file_over_the_limit_is_400_and_stores_nothing(small: LiveServer, tenant: Tenant) -> None:
    rows = [(f"big-{i}", f"big{i}@shop.ru", "", "Имя", "", "Город") for i in range(100)]
    body = customers_csv(rows)
    assert len(body) > SMALL_LIMIT
    fits = customers_csv(rows[:5])
    assert len(fits) < SMALL_LIMIT

    with httpx.Client(base_url=small.url, timeout=30) as client:
        error_of(upload(client, tenant, "customers", body), 400, "payload_too_large")
        assert event_count(small.engine, tenant.id) == 0
        assert counts(imported(client, tenant, "customers", fits)) == (5, 5, 5, 0, 0)


def test_day_first_dates_from_russian_exports_are_read(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    customers = csv_file(
        CUSTOMER_HEADER,
        [
            ("d-1", "", "", "Пётр", "15.03.1990", "Казань"),
            ("d-2", "", "", "Анна", "31.02.1990", "Казань"),
        ],
    )
    orders = csv_file(
        ORDER_HEADER, [("d-o1", "d-1", "01.03.2026 10:30", "150", "RUB", "A", "", "1", "150")]
    )

    assert rejections(imported(http, tenant, "customers", customers)) == [
        (2, "invalid_date", "birthday")
    ]
    assert rejections(imported(http, tenant, "orders", orders)) == []
    live.drain()
    petr = profile(http, tenant, "d-1")
    assert petr["traits"]["birthday"] == "1990-03-15"
    assert petr["aggregates"]["last_order_at"] == "2026-03-01T10:30:00Z"
