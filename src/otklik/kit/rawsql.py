"""Driver-level statements for the few hot paths (event appends, resolver reads and marks).

SQLAlchemy's per-row type processing costs more than the insert itself at tens of thousands
of rows a second, so these paths hand the driver ready values. The values must match what
the SQLAlchemy column types store: on SQLite a UUID is 32 hex chars and a datetime is naive
UTC text "YYYY-MM-DD HH:MM:SS.ffffff"; PostgreSQL takes native uuid and timestamptz.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Connection


class Dialect:
    def __init__(self, conn: Connection) -> None:
        self.postgres = conn.dialect.name == "postgresql"
        self.mark = "%s" if self.postgres else "?"

    def sql(self, text: str) -> str:
        """Write statements with `?` placeholders; this swaps them for the driver's style."""
        return text.replace("?", self.mark) if self.postgres else text

    def uuid(self, value: UUID | None) -> Any:
        if value is None:
            return None
        return value if self.postgres else value.hex

    def time(self, value: datetime) -> Any:
        if self.postgres:
            return value
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def json(self, value: Any) -> str:
        return orjson.dumps(value, default=str).decode()

    @property
    def json_cast(self) -> str:
        return "CAST(? AS jsonb)".replace("?", self.mark) if self.postgres else "?"

    def read_uuid(self) -> Callable[[Any], UUID | None]:
        if self.postgres:
            return lambda v: v
        # Workspace ids repeat on every row of a batch.
        return memo(lambda v: None if v is None else UUID(hex=v))

    def read_time(self) -> Callable[[Any], datetime]:
        if self.postgres:
            return lambda v: v
        return lambda v: datetime.fromisoformat(v).replace(tzinfo=UTC)

    def read_json(self) -> Callable[[Any], Any]:
        if self.postgres:
            return lambda v: v  # psycopg already decoded jsonb
        return lambda v: None if v is None else orjson.loads(v)


def memo(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert` remembered per value: for values that repeat on every row of a batch."""
    cache: dict[Any, Any] = {}

    def get(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            out = cache[value] = convert(value)
            return out

    return get


def executemany(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    result = conn.exec_driver_sql(statement, rows)
    return max(int(result.rowcount or 0), 0)
