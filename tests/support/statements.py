"""Recording the SQL one connection sends, for specs that check query plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event


@contextmanager
def sent_on(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    """Yield a list that fills with (sql, params) for each statement `conn` executes.

    Only `conn`'s own: a module's live server runs background loops on the same engine,
    and an engine-wide listener would record their statements too.
    """
    statements: list[tuple[str, Any]] = []

    def remember(on: Connection, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if on is conn:
            statements.append((sql, params))

    event.listen(conn.engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(conn.engine, "before_cursor_execute", remember)
