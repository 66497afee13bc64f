"""The columns of an import file: the fields each kind knows, the header spellings that name
them, the console's column mapping, and a first look at a file (its columns, rows and count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from otklik.offline.rows import CUSTOMER_TRAITS, CUSTOMERS, ORDERS, read_rows

# The columns each kind understands (any other customer column is kept as a trait under its own
# name; other order columns are ignored), and the header spellings the console offers to map
# onto them when it first shows a file. Keys are normalised as `normalise_header` does.
FIELDS: dict[str, tuple[str, ...]] = {
    CUSTOMERS: ("external_id", *CUSTOMER_TRAITS),
    ORDERS: (
        "order_id",
        "customer_external_id",
        "placed_at",
        "total",
        "currency",
        "sku",
        "name",
        "quantity",
        "price",
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    CUSTOMERS: ("external_id",),
    ORDERS: ("order_id", "customer_external_id", "placed_at"),
}
SYNONYMS: dict[str, dict[str, str]] = {
    CUSTOMERS: {
        "id": "external_id",
        "customer_id": "external_id",
        "client_id": "external_id",
        "user_id": "external_id",
        "userid": "external_id",
        "customer_external_id": "external_id",
        "код_клиента": "external_id",
        "id_клиента": "external_id",
        "e_mail": "email",
        "mail": "email",
        "email_address": "email",
        "почта": "email",
        "эл_почта": "email",
        "электронная_почта": "email",
        "phone_number": "phone",
        "mobile": "phone",
        "tel": "phone",
        "telephone": "phone",
        "телефон": "phone",
        "мобильный": "phone",
        "firstname": "first_name",
        "given_name": "first_name",
        "имя": "first_name",
        "lastname": "last_name",
        "surname": "last_name",
        "family_name": "last_name",
        "фамилия": "last_name",
        "full_name": "name",
        "fullname": "name",
        "фио": "name",
        "birth_date": "birthday",
        "birthdate": "birthday",
        "date_of_birth": "birthday",
        "dob": "birthday",
        "дата_рождения": "birthday",
        "день_рождения": "birthday",
        "sex": "gender",
        "пол": "gender",
        "town": "city",
        "город": "city",
        "card": "loyalty_card",
        "card_number": "loyalty_card",
        "карта": "loyalty_card",
        "номер_карты": "loyalty_card",
        "registered_at": "created_at",
        "signup_date": "created_at",
        "дата_регистрации": "created_at",
    },
    ORDERS: {
        "order": "order_id",
        "order_number": "order_id",
        "номер_заказа": "order_id",
        "заказ": "order_id",
        "customer_id": "customer_external_id",
        "customer": "customer_external_id",
        "client_id": "customer_external_id",
        "user_id": "customer_external_id",
        "external_id": "customer_external_id",
        "клиент": "customer_external_id",
        "код_клиента": "customer_external_id",
        "date": "placed_at",
        "order_date": "placed_at",
        "created_at": "placed_at",
        "дата": "placed_at",
        "дата_заказа": "placed_at",
        "amount": "total",
        "sum": "total",
        "order_total": "total",
        "сумма": "total",
        "валюта": "currency",
        "product_id": "sku",
        "item_id": "sku",
        "article": "sku",
        "артикул": "sku",
        "product_name": "name",
        "item_name": "name",
        "title": "name",
        "товар": "name",
        "наименование": "name",
        "qty": "quantity",
        "count": "quantity",
        "количество": "quantity",
        "кол_во": "quantity",
        "unit_price": "price",
        "цена": "price",
    },
}
# Column -> field it feeds, or None to drop the column; columns not named pass through as read.
Mapping = dict[str, str | None]
_HEADER_SEPARATORS = re.compile(r"[\s\-.]+")


def normalise_header(name: str) -> str:
    return _HEADER_SEPARATORS.sub("_", name.strip().lower()).strip("_")


def suggest_mapping(kind: str, columns: Iterable[str]) -> dict[str, str | None]:
    """The field each column most likely holds (None: no known field), each field used once.

    Exact names win over synonyms, so a file with both `id` and `external_id` maps the latter.
    """
    fields, synonyms = FIELDS[kind], SYNONYMS[kind]
    names = list(columns)
    out: dict[str, str | None] = dict.fromkeys(names)
    taken: set[str] = set()
    for name in names:
        key = normalise_header(name)
        if key in fields and key not in taken:
            out[name] = key
            taken.add(key)
    for name in names:
        target = synonyms.get(normalise_header(name))
        if out[name] is None and target is not None and target not in taken:
            out[name] = target
            taken.add(target)
    return out


def apply_mapping(rows: Iterable[dict[str, Any]], mapping: Mapping) -> Iterator[dict[str, Any]]:
    """Rows with their columns renamed to the fields they were mapped to, ignored ones dropped."""
    for row in rows:
        if "__invalid__" in row:
            yield row
            continue
        out = {key: value for key, value in row.items() if key not in mapping}
        for source, target in mapping.items():
            if target is not None and source in row:
                out[target] = row[source]
        yield out


@dataclass
class FileShape:
    columns: list[str]
    sample: list[dict[str, Any]]
    rows: int


def inspect_file(data: bytes, fmt: str, sample: int = 5, max_columns: int = 200) -> FileShape:
    """Reads the whole file once: its columns (in order of appearance), first rows and count."""
    shape = FileShape([], [], 0)
    seen: set[str] = set()
    for row in read_rows(data, fmt):
        shape.rows += 1
        if len(shape.sample) < sample:
            shape.sample.append(row)
        for key in row:
            if key not in seen and key != "__invalid__" and len(seen) < max_columns:
                seen.add(key)
                shape.columns.append(key)
    return shape
