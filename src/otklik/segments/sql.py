"""The few expressions SQLite and PostgreSQL spell differently: JSON values, dates, intervals.

Values read from JSON are typed defensively: a trait that is a number in one profile and a
word in another must not fail the whole query (PostgreSQL would, on a bad cast), so every
read checks the JSON type first and yields NULL when it does not fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, INTERVAL
from sqlalchemy.types import Text

# Julian day number of the Unix epoch: SQLite's julianday() counts days from 4714 BC.
UNIX_EPOCH_JD = 2440587.5
ISO_DATE_RE = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
NUMERIC_TEXT_RE = r"^-?\d+(\.\d+)?$"


class Json:
    """Typed reads of one key path inside a JSON column, for one dialect."""

    def __init__(self, dialect: str, column: Any, path: list[str]) -> None:
        self.dialect = dialect
        self.column = column
        self.path = path

    @property
    def _sqlite_path(self) -> str:
        return "$" + "".join(f'."{step}"' for step in self.path)

    def json_type(self) -> ColumnElement[Any]:
        """SQLite: text, integer, real, true, false, null, object, array; PG: jsonb_typeof."""
        if self.dialect == "sqlite":
            return func.json_type(self.column, self._sqlite_path)
        return func.jsonb_typeof(self.column.op("#>")(literal(self.path, _text_array())))

    def raw_text(self) -> ColumnElement[Any]:
        if self.dialect == "sqlite":
            return func.json_extract(self.column, self._sqlite_path)
        return self.column.op("#>>")(literal(self.path, _text_array()))

    def text(self) -> ColumnElement[Any]:
        kind = "text" if self.dialect == "sqlite" else "string"
        return case((self.json_type() == kind, self.raw_text()), else_=None)

    def number(self) -> ColumnElement[Any]:
        """Numbers, and strings that spell one ("199.90" from a shop plugin)."""
        raw = self.raw_text()
        kind = self.json_type()
        if self.dialect == "sqlite":
            return case(
                (kind.in_(["integer", "real"]), raw),
                (kind == "text", case((_sqlite_numeric(raw), cast(raw, Float)), else_=None)),
                else_=None,
            )
        return case(
            (kind == "number", cast(raw, Float)),
            (
                kind == "string",
                case((raw.op("~", is_comparison=True)(NUMERIC_TEXT_RE), cast(raw, Float))),
            ),
            else_=None,
        )

    def boolean_is(self, value: bool) -> ColumnElement[bool]:
        if self.dialect == "sqlite":
            return self.json_type() == ("true" if value else "false")
        return (self.json_type() == "boolean") & (self.raw_text() == ("true" if value else "false"))

    def exists(self) -> ColumnElement[bool]:
        kind = self.json_type()
        return kind.is_not(None) & (kind != "null")

    def list_contains(self, value: Any) -> ColumnElement[bool]:
        if self.dialect == "sqlite":
            each = func.json_each(self.column, self._sqlite_path).table_valued("value")
            return (self.json_type() == "array") & exists(
                select(literal(1)).select_from(each).where(each.c.value == value)
            )
        node = self.column.op("#>")(literal(self.path, _text_array()))
        return (self.json_type() == "array") & node.op("@>")(func.jsonb_build_array(literal(value)))

    def epoch(self) -> ColumnElement[Any]:
        """An ISO-8601 date or timestamp as Unix seconds (naive values taken as UTC)."""
        return iso_text_epoch(self.dialect, self.text())


def _text_array() -> Any:
    return ARRAY(Text)


def _sqlite_numeric(raw: ColumnElement[Any]) -> ColumnElement[bool]:
    # GLOB has no optional groups: "a digit somewhere and nothing but digits, '.', '-'".
    return raw.op("GLOB", is_comparison=True)("*[0-9]*") & ~raw.op("GLOB", is_comparison=True)(
        "*[^0-9.-]*"
    )


def iso_text_epoch(dialect: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(value) - UNIX_EPOCH_JD) * 86400.0
    good = value.op("~", is_comparison=True)(ISO_DATE_RE)
    with_zone = value.op("~", is_comparison=True)(r"(Z|z|[+-]\d\d(:?\d\d)?)$")
    zoned = func.extract("epoch", cast(value, DateTime(timezone=True)))
    naive = func.extract("epoch", func.timezone("UTC", cast(value, DateTime(timezone=False))))
    return case((good & with_zone, zoned), (good, naive), else_=None)


def column_epoch(dialect: str, column: Any) -> ColumnElement[Any]:
    """A UTCDateTime column as Unix seconds (SQLite stores it as naive UTC text)."""
    if dialect == "sqlite":
        return (func.julianday(column) - UNIX_EPOCH_JD) * 86400.0
    return func.extract("epoch", column)


def epoch_to_time(dialect: str, epoch: Any) -> ColumnElement[Any]:
    """Unix seconds as a value for a UTCDateTime column, computed in the database."""
    if dialect == "sqlite":
        # Whole seconds (no microsecond format here); the second added to each due covers it.
        return func.strftime("%Y-%m-%d %H:%M:%S", epoch, "unixepoch")
    return func.to_timestamp(epoch)


def plus_seconds(dialect: str, column: Any, seconds: int) -> ColumnElement[Any]:
    """A UTCDateTime column moved by a fixed number of seconds, comparable with the column."""
    if dialect == "sqlite":
        # Same text shape as stored values ("YYYY-MM-DD HH:MM:SS.ffffff" sorts with it).
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{int(seconds):+d} seconds")
    return column + cast(literal(f"{int(seconds)} seconds"), INTERVAL)


def any_of(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else literal(False)
