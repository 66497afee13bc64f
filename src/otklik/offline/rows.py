"""Reading import files and turning each valid row into the tracking call it stands for.

A customer row becomes an `identify`, an order (all its line-item rows) an "Order Completed"
`track`, with a messageId derived from the row's content: importing the same file twice
stores nothing new, and a changed row is a new fact that updates the profile. Everything then
flows through the same log and resolver as live events.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from otklik.kit.time import iso
from otklik.profiles.identity import normalise_email, normalise_phone
from otklik.profiles.orders import money

CUSTOMERS = "customers"
ORDERS = "orders"
KINDS = (CUSTOMERS, ORDERS)
FORMATS = ("csv", "json", "jsonl")
LIBRARY = {"name": "otklik-import", "version": "1"}
CUSTOMER_TRAITS = {
    "email": "email",
    "phone": "phone",
    "first_name": "firstName",
    "last_name": "lastName",
    "name": "name",
    "birthday": "birthday",
    "gender": "gender",
    "city": "city",
    "loyalty_card": "loyalty_card",
    "created_at": "createdAt",
}
# ISO first; then day-first dates as Russian 1C and POS exports write them (31.12.2026).
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)


def parse_day(value: str) -> date | None:
    """A calendar date, ISO `YYYY-MM-DD` or day-first `DD.MM.YYYY`."""
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


# What the event log and order tables can hold: longer ids are rejected, never truncated (two
# long order ids cut to one prefix would become one order).
MAX_USER_ID = 256  # a userId, as on the live ingest path
MAX_ORDER_ID = 128  # order.external_id
MAX_QUANTITY = 1_000_000
MAX_TOTAL = Decimal("1e15")  # as `money` caps one amount; order tables hold 18 digits
# PostgreSQL stores NUL in neither text nor JSON: it becomes U+FFFD, as on the live ingest path.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class FileError(Exception):
    """The file as a whole cannot be read (not CSV/JSON, no header, wrong shape)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (the CSV header is not counted)
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "message": self.message, "field": self.field}


@dataclass
class Converted:
    messages: list[dict[str, Any]]
    errors: list[RowError]
    rows: int


def read_rows(data: bytes, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt not in FORMATS:
        raise FileError("unsupported_format", f"format must be one of {', '.join(FORMATS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError("invalid_encoding", "The file must be UTF-8") from exc
    text = text.replace("\x00", "\ufffd")
    if fmt != "csv" and "\\u0000" in text:
        text = _NUL_ESCAPE.sub("\\1\\\\ufffd", text)
    if fmt == "csv":
        yield from _csv_rows(text)
        return
    if fmt == "jsonl":
        # Only "\n" ends a line: str.splitlines() would also split inside a JSON string that
        # holds U+2028, U+0085 or another character it counts as a line break.
        for number, line in enumerate(text.split("\n"), 1):
            if line.strip():
                yield _json_object(line, number)
        return
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FileError("invalid_json", f"The file is not valid JSON: {exc}") from exc
    if not isinstance(parsed, list):
        raise FileError("invalid_json", "A JSON import is an array of objects")
    for item in parsed:
        yield item if isinstance(item, dict) else {"__invalid__": item}


def _csv_rows(text: str) -> Iterator[dict[str, Any]]:
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise FileError("missing_header", "The CSV file has no header row")
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    try:
        for row in reader:
            yield {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
        raise FileError("invalid_csv", f"CSV line {reader.line_num}: {exc}") from exc


def _json_object(line: str, number: int) -> dict[str, Any]:
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {"__invalid__": f"line {number} is not JSON"}
    return item if isinstance(item, dict) else {"__invalid__": item}


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    return str(value).strip()


def parse_when(value: str) -> datetime | None:
    """ISO-8601 or `YYYY-MM-DD[ HH:MM[:SS]]` (taken as UTC)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+03:00 is before the first representable moment
        return None


def _message_id(kind: str, key: str, content: Any) -> str:
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str))
    return f"import:{kind}:{key[:60]}:{digest.hexdigest()[:24]}"


def customer_messages(rows: Iterable[dict[str, Any]], region: str, now: datetime) -> Converted:
    out = Converted([], [], 0)
    for number, row in enumerate(rows, 1):
        out.rows = number
        if "__invalid__" in row:
            out.errors.append(RowError(number, "invalid_row", "The row is not an object"))
            continue
        error = _customer_error(number, row, region)
        if error is not None:
            out.errors.append(error)
            continue
        external_id = _text(row, "external_id")
        traits: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("external_id", "__invalid__") or value in (None, ""):
                continue
            traits[CUSTOMER_TRAITS.get(key, key)] = value
        if "birthday" in traits:  # stored as ISO whichever way the file wrote it
            traits["birthday"] = parse_day(_text(row, "birthday")).isoformat()  # type: ignore[union-attr]
        message = {
            "type": "identify",
            "userId": external_id,
            "traits": traits,
            "timestamp": iso(now),
            "context": {"library": LIBRARY},
        }
        try:
            message["messageId"] = _message_id("customer", external_id, [external_id, traits])
        except orjson.JSONEncodeError:  # a JSON value nested deeper than can be stored
            out.errors.append(RowError(number, "too_deep", "A value is nested too deeply"))
            continue
        out.messages.append(message)
    return out


def _customer_error(number: int, row: dict[str, Any], region: str) -> RowError | None:
    if not _text(row, "external_id"):
        return RowError(number, "missing_external_id", "external_id is required", "external_id")
    if len(_text(row, "external_id")) > MAX_USER_ID:
        return _too_long(number, "external_id", MAX_USER_ID)
    email = _text(row, "email")
    if email and normalise_email(email) is None:
        return RowError(number, "invalid_email", f"{email!r} is not an email address", "email")
    phone = _text(row, "phone")
    if phone and normalise_phone(phone, region) is None:
        return RowError(number, "invalid_phone", f"{phone!r} is not a phone number", "phone")
    birthday = _text(row, "birthday")
    if birthday and parse_day(birthday) is None:
        return RowError(number, "invalid_date", f"birthday {birthday!r} is not a date", "birthday")
    return None


@dataclass
class _OrderDraft:
    first_row: int
    order_id: str
    customer: str
    placed_at: datetime
    total: Decimal | None
    currency: str
    lines: list[dict[str, Any]]
    rows: list[int]


def order_messages(rows: Iterable[dict[str, Any]], currency: str) -> Converted:
    """Line-item rows grouped into orders; one bad row rejects its whole order."""
    out = Converted([], [], 0)
    drafts: dict[str, _OrderDraft] = {}
    bad_orders: set[str] = set()
    for number, row in enumerate(rows, 1):
        out.rows = number
        if "__invalid__" in row:
            out.errors.append(RowError(number, "invalid_row", "The row is not an object"))
            continue
        order_id = _text(row, "order_id")
        if not order_id:
            out.errors.append(
                RowError(number, "missing_order_id", "order_id is required", "order_id")
            )
            continue
        if len(order_id) > MAX_ORDER_ID:
            out.errors.append(_too_long(number, "order_id", MAX_ORDER_ID))
            continue
        error, line = _order_line(number, row)
        draft = drafts.get(order_id)
        if error is None and draft is not None:
            error = _consistency_error(number, row, draft)
        if error is not None:
            out.errors.append(error)
            bad_orders.add(order_id)
            continue
        if draft is None:
            drafts[order_id] = _OrderDraft(
                number,
                order_id,
                _text(row, "customer_external_id"),
                parse_when(_text(row, "placed_at")),  # type: ignore[arg-type]
                money(_text(row, "total")) if _text(row, "total") else None,
                (_text(row, "currency") or currency).upper(),
                [],
                [],
            )
            draft = drafts[order_id]
        draft.rows.append(number)
        if draft.total is None and _text(row, "total"):
            draft.total = money(_text(row, "total"))  # the first row that states it
        if line is not None:
            draft.lines.append(line)
    for order_id, draft in drafts.items():
        if order_id not in bad_orders and _order_total(draft) >= MAX_TOTAL:
            out.errors.append(
                RowError(
                    draft.first_row,
                    "invalid_amount",
                    f"order {order_id} totals {MAX_TOTAL:,.0f} or more",
                    "total",
                )
            )
            bad_orders.add(order_id)
            draft.rows.remove(draft.first_row)
        if order_id in bad_orders:
            for number in draft.rows:
                out.errors.append(
                    RowError(number, "order_rejected", f"order {order_id} has an invalid row")
                )
            continue
        out.messages.append(_order_message(draft))
    return out


def _too_long(number: int, field: str, limit: int) -> RowError:
    return RowError(number, "too_long", f"{field} is longer than {limit} characters", field)


def _order_line(number: int, row: dict[str, Any]) -> tuple[RowError | None, dict[str, Any] | None]:
    if not _text(row, "customer_external_id"):
        return RowError(
            number, "missing_customer", "customer_external_id is required", "customer_external_id"
        ), None
    if len(_text(row, "customer_external_id")) > MAX_USER_ID:
        return _too_long(number, "customer_external_id", MAX_USER_ID), None
    if parse_when(_text(row, "placed_at")) is None:
        return RowError(
            number,
            "invalid_date",
            f"placed_at {_text(row, 'placed_at')!r} is not a date",
            "placed_at",
        ), None
    total = _text(row, "total")
    if total and (money(total) is None or money(total) < 0):  # type: ignore[operator]
        return RowError(
            number, "invalid_amount", f"total {total!r} is not an amount >= 0", "total"
        ), None
    currency = _text(row, "currency")
    if currency and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        return RowError(
            number, "invalid_currency", f"currency {currency!r} is not a 3-letter code", "currency"
        ), None
    sku = _text(row, "sku")
    if not sku:
        return None, None  # an order row without line items
    try:
        quantity = int(_text(row, "quantity") or "1")
    except ValueError:
        quantity = -1
    if not 0 < quantity <= MAX_QUANTITY:
        return RowError(
            number,
            "invalid_quantity",
            f"quantity must be a whole number from 1 to {MAX_QUANTITY}",
            "quantity",
        ), None
    price = money(_text(row, "price") or "0")
    if price is None or price < 0:
        return RowError(number, "invalid_amount", "price must be an amount >= 0", "price"), None
    return None, {
        "sku": sku,
        "name": _text(row, "name") or None,
        "quantity": quantity,
        "price": float(price),
    }


def _consistency_error(number: int, row: dict[str, Any], draft: _OrderDraft) -> RowError | None:
    if _text(row, "customer_external_id") != draft.customer:
        return RowError(
            number,
            "inconsistent_order",
            f"order {draft.order_id} names two customers",
            "customer_external_id",
        )
    total = _text(row, "total")
    if total and draft.total is not None and money(total) != draft.total:
        return RowError(
            number, "inconsistent_order", f"order {draft.order_id} has two totals", "total"
        )
    if parse_when(_text(row, "placed_at")) != draft.placed_at:
        return RowError(
            number,
            "inconsistent_order",
            f"order {draft.order_id} has two dates",
            "placed_at",
        )
    currency = _text(row, "currency").upper()
    if currency and currency != draft.currency:
        return RowError(
            number,
            "inconsistent_order",
            f"order {draft.order_id} has two currencies",
            "currency",
        )
    return None


def _order_total(draft: _OrderDraft) -> Decimal:
    if draft.total is not None:
        return draft.total
    return sum((Decimal(str(li["price"])) * li["quantity"] for li in draft.lines), Decimal(0))


def _order_message(draft: _OrderDraft) -> dict[str, Any]:
    total = _order_total(draft)
    properties = {
        "order_id": draft.order_id,
        "total": float(total),
        "currency": draft.currency,
        "products": draft.lines,
    }
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": draft.customer,
        "timestamp": iso(draft.placed_at),
        "properties": properties,
        "context": {"library": LIBRARY},
    }
    message["messageId"] = _message_id(
        "order", draft.order_id, [draft.customer, properties, message["timestamp"]]
    )
    return message
