"""Reading an order out of a Segment e-commerce "Order Completed" event."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from otklik.profiles.state import CENT

ORDER_EVENTS = frozenset({"Order Completed", "order_completed"})


@dataclass
class OrderLine:
    sku: str
    name: str | None
    quantity: int
    price: Decimal


@dataclass
class OrderFacts:
    external_id: str
    total: Decimal
    currency: str
    status: str = "completed"
    lines: list[OrderLine] = field(default_factory=list)


MAX_AMOUNT = Decimal("1e13")
MAX_QUANTITY = 1_000_000


def money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    # Far above any real order, far below what Numeric(18, 2) totals can hold.
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        return None
    return amount.quantize(CENT)


def order_from_properties(props: dict[str, Any], default_currency: str) -> OrderFacts | None:
    """The order an event describes, or None when it names no order id or no usable amount."""
    raw_id = props.get("order_id", props.get("orderId"))
    if raw_id is None or isinstance(raw_id, bool | dict | list) or not str(raw_id).strip():
        return None
    lines = _lines(props.get("products"))
    total = None
    for key in ("total", "revenue", "value"):
        total = money(props.get(key))
        if total is not None:
            break
    if total is None:
        if not lines:
            return None
        total = sum((line.price * line.quantity for line in lines), Decimal("0")).quantize(CENT)
    if total < 0 or total >= MAX_AMOUNT:
        return None
    currency = props.get("currency")
    if not isinstance(currency, str) or len(currency.strip()) != 3:
        currency = default_currency
    return OrderFacts(str(raw_id).strip()[:128], total, currency.strip().upper(), lines=lines)


def _lines(products: Any) -> list[OrderLine]:
    if not isinstance(products, list):
        return []
    lines = []
    for product in products[:500]:
        if not isinstance(product, dict):
            continue
        sku = product.get("sku") or product.get("product_id") or product.get("id")
        if sku is None or isinstance(sku, dict | list):
            continue
        try:
            quantity = int(product.get("quantity", 1))
        except (TypeError, ValueError, OverflowError):
            quantity = 1
        if not 0 <= quantity <= MAX_QUANTITY:
            continue  # not a real line item; the order's stated total still counts
        name = product.get("name")
        lines.append(
            OrderLine(
                sku=str(sku)[:128],
                name=str(name)[:300] if name is not None else None,
                quantity=max(quantity, 0),
                price=money(product.get("price")) or Decimal("0"),
            )
        )
    return lines
