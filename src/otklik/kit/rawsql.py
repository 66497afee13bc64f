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
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


class Dialect:
    def __init__(self, conn: Connection | Engine) -> None:
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

    def read_uuid(self) -> Callable[[Any], UUID | None]:
        if self.postgres:
            return lambda v: v
        # Workspace ids repeat on every row of a batch.
        return memo(lambda v: None if v is None else UUID(hex=v))

    def read_time(self) -> Callable[[Any], datetime]:
        if self.postgres:
            return lambda v: v
        return read_sqlite_time

    def read_json(self) -> Callable[[Any], Any]:
        if self.postgres:
            return lambda v: v  # psycopg already decoded jsonb
        return lambda v: None if v is None else orjson.loads(v)


def read_sqlite_time(value: str) -> datetime:
    """A datetime as SQLite holds it (naive UTC text), read back aware."""
    try:
        # Parsing the offset is several times cheaper than datetime.replace(tzinfo=...).
        return _fromisoformat(value + "+00:00")
    except ValueError:  # not the shape this module writes
        return _fromisoformat(value).replace(tzinfo=UTC)


_fromisoformat = datetime.fromisoformat


def sqlite_time_from_iso(text: str | None) -> str | None:
    """`Dialect.time` on SQLite for a UTC time already formatted by kit.time.iso.

    "2026-05-01T05:58:57.321000Z" -> "2026-05-01 05:58:57.321000" by slicing, which is several
    times cheaper than formatting the datetime again; None for any other shape.
    """
    if not text or text[-1] != "Z" or text[10:11] != "T":
        return None
    if len(text) == 27 and text[19] == ".":
        return text[:10] + " " + text[11:26]
    if len(text) == 20:  # isoformat leaves out a zero microsecond; the store never does
        return text[:10] + " " + text[11:19] + ".000000"
    return None


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


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT that skips rows whose unique key is taken (ON CONFLICT DO NOTHING) on both stores."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
