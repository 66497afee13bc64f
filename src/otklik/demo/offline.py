"""Offline demo data: a POS/ERP export of in-store customers and their receipts, as CSV rows.

The offline customers (`max(10, customers // 10)` of them) are generated apart from the online
people; as in a real shop a few may by chance share an email or phone with an online person.
Contacts are messy the same way as online (see `otklik.demo.people`).

About 2% of rows are deliberately bad, so import error reports have something to show; each
kind appears at least once whatever the size:

customers (`customers_csv_rows`)
    - invalid email: a local part and a bare `@`, like `ivan@`;
    - unparsable phone: `12`;
    - bad date: birthday `31.02.<year>`;
    - missing external_id: empty (this customer has no receipts in the orders export).
orders (`orders_csv_rows`, every line of the affected order)
    - negative total: like `-4990.00`;
    - bad date: placed_at `31.02.2026` (the year of the order);
    - missing customer: empty customer_external_id.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from otklik.demo.catalog import generate_catalog
from otklik.demo.identities import (
    format_phone,
    make_email,
    make_identity,
    mess_email,
    random_phone_style,
    translit,
)
from otklik.demo.people import DAY_MS, HOUR_MS, to_ms
from otklik.offline.columns import FIELDS
from otklik.offline.rows import ORDERS

if TYPE_CHECKING:
    from otklik.demo.generator import DemoConfig

CUSTOMER_COLUMNS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "city",
    "loyalty_card",
)
# The receipt lines carry exactly the order fields the importer knows.
ORDER_COLUMNS = FIELDS[ORDERS]


def _ean13(rng: random.Random) -> str:
    """An in-store (prefix 2) EAN-13 with a correct check digit, as printed on loyalty cards."""
    body = "2" + "".join(str(int(rng.random() * 10)) for _ in range(11))
    odd_even = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - odd_even % 10) % 10)


def _customers(cfg: DemoConfig) -> list[tuple[dict[str, str], int]]:
    """Customer rows as exported, with the UTC offset of each customer's store."""
    rng = random.Random(f"otklik-demo:{cfg.seed}:offline-customers")
    n = max(10, cfg.customers // 10)
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    out: list[tuple[dict[str, str], int]] = []
    for i in range(n):
        ident = make_identity(rng, cfg.start.date(), used_phones, abroad=False)  # local stores
        email = make_email(rng, ident, used_emails) if rng.random() < 0.6 else ""
        if email and rng.random() < 0.1:
            email = mess_email(rng, email)
        phone = format_phone(ident.phone_digits, random_phone_style(rng))
        if email and rng.random() < 0.1:  # cashiers ask for the phone first, rarely skip it
            phone = ""
        row = {
            "external_id": f"pos-{i + 1:06d}",
            "email": email,
            "phone": phone,
            "first_name": ident.first_name,
            "last_name": ident.last_name,
            "birthday": ident.birthday.isoformat() if ident.birthday else "",
            "city": ident.city,
            "loyalty_card": _ean13(rng),
        }
        out.append((row, ident.utc_offset))
    bad = rng.sample(range(n), max(4, round(n * 0.02)))
    for k, i in enumerate(bad):
        row = out[i][0]
        kind = k % 4
        if kind == 0:
            row["email"] = translit(row["first_name"]).replace(" ", "") + "@"
        elif kind == 1:
            row["phone"] = "12"
        elif kind == 2:
            row["birthday"] = f"31.02.{row['birthday'][:4] or '1990'}"
        else:
            row["external_id"] = ""
    return out


def customers_csv_rows(cfg: DemoConfig) -> Iterator[dict[str, str]]:
    """Rows of the offline customers export, columns `CUSTOMER_COLUMNS`, all values strings."""
    for row, _offset in _customers(cfg):
        yield dict(row)


def orders_csv_rows(cfg: DemoConfig) -> Iterator[dict[str, str]]:
    """One row per receipt line, columns `ORDER_COLUMNS`, receipts in time order.

    `total` repeats on every line of the receipt and equals sum(price × quantity) on good rows.
    """
    rng = random.Random(f"otklik-demo:{cfg.seed}:offline-orders")
    catalog = generate_catalog(cfg)
    customers = [(row["external_id"], off) for row, off in _customers(cfg) if row["external_id"]]
    start_ms = to_ms(cfg.start)
    receipts: list[tuple[int, int]] = []  # (moment, customer index): small, sorted once
    for c, (_id, offset) in enumerate(customers):
        if rng.random() < 0.25:
            continue  # got a card, never came back
        for _ in range(min(10, 1 + int(rng.expovariate(0.5)))):
            day = start_ms + int(rng.random() * cfg.days) * DAY_MS
            day -= day % DAY_MS
            local_hour = 10 + int(rng.random() * 11)  # the store is open 10:00–21:00
            moment = day + (local_hour - offset) * HOUR_MS + int(rng.random() * HOUR_MS)
            receipts.append((max(start_ms, moment), c))
    receipts.sort()
    n_bad = min(len(receipts), max(3, round(len(receipts) * 0.02)))
    bad_kinds = {r: k % 3 for k, r in enumerate(rng.sample(range(len(receipts)), n_bad))}
    for n, (moment, c) in enumerate(receipts):
        external_id, offset = customers[c]
        local = datetime.fromtimestamp(moment / 1000, UTC).astimezone(
            timezone(timedelta(hours=offset))
        )
        placed_at = local.isoformat(timespec="seconds")
        lines: dict[int, int] = {}
        for _ in range(1 + min(3, int(rng.expovariate(1.0)))):
            i = int(rng.random() * len(catalog))
            lines[i] = lines.get(i, 0) + (1 if rng.random() < 0.8 else 2)
        total = round(sum(catalog[i]["price"] * q for i, q in lines.items()), 2)
        total_text = f"{total:.2f}"
        kind = bad_kinds.get(n)
        if kind == 0:
            total_text = f"-{total:.2f}"
        elif kind == 1:
            placed_at = f"31.02.{local.year}"
        elif kind == 2:
            external_id = ""
        for i, qty in lines.items():
            product = catalog[i]
            yield {
                "order_id": f"r-{n + 1:07d}",
                "customer_external_id": external_id,
                "placed_at": placed_at,
                "total": total_text,
                "currency": "RUB",
                "sku": product["sku"],
                "name": product["name"],
                "quantity": str(qty),
                "price": f"{product['price']:.2f}",
            }
