"""Keyset pagination cursors: opaque to clients, stable under concurrent inserts."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from otklik.kit.errors import BadRequest


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise BadRequest("The cursor is not one this API issued", code="invalid_cursor") from exc
    if not isinstance(values, list) or len(values) != size:
        raise BadRequest("The cursor is not one this API issued", code="invalid_cursor")
    return values
