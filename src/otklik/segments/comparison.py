"""A rule's operator as SQL, and the same test in Python (is zero events "at most 2"?)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, false, func, not_


def two_valued(expr: ColumnElement[Any]) -> ColumnElement[bool]:
    # A missing trait makes SQL's answer NULL; NOT NULL is NULL too, so "not city = Moscow"
    # would drop everyone without a city. Collapse NULL to false at every leaf.
    return func.coalesce(expr, false(), type_=Boolean)


def compare(expr: ColumnElement[Any], op: str, value: Any, *, text: bool = False) -> Any:
    if op == "eq":
        return func.lower(expr) == str(value).lower() if text else expr == value
    if op == "ne":
        return not_(two_valued(compare(expr, "eq", value, text=text)))
    if op in ("in", "not_in"):
        values = [str(v).lower() for v in value] if text else list(value)
        found = (func.lower(expr) if text else expr).in_(values)
        return not_(two_valued(found)) if op == "not_in" else found
    if op == "contains":
        return func.lower(expr).contains(str(value).lower(), autoescape=True)
    if op == "not_contains":
        return not_(two_valued(compare(expr, "contains", value)))
    if op == "starts_with":
        return func.lower(expr).startswith(str(value).lower(), autoescape=True)
    if op == "between":
        low, high = value
        return and_(expr >= low, expr <= high)
    return {
        "gt": expr > value,
        "gte": expr >= value,
        "lt": expr < value,
        "lte": expr <= value,
    }[op]


def holds(op: str, actual: float, value: Any) -> bool:
    """The same comparison in Python (is zero events "at most 2"?)."""
    if op == "between":
        return bool(value[0] <= actual <= value[1])
    return {
        "eq": actual == value,
        "ne": actual != value,
        "gt": actual > value,
        "gte": actual >= value,
        "lt": actual < value,
        "lte": actual <= value,
    }[op]
