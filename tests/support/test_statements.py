"""sent_on: what one connection sent, and nothing another sent meanwhile."""

from __future__ import annotations

from sqlalchemy import Engine, text

from tests.support.statements import sent_on


def selects(sent: list[tuple[str, object]]) -> list[str]:
    # The store's own statements (SQLite's BEGIN) go through the same connection.
    return [sql for sql, _ in sent if sql.startswith("SELECT")]


def test_it_records_its_own_connections_statements_only(engine: Engine) -> None:
    with engine.connect() as mine, engine.connect() as other, sent_on(mine) as sent:
        other.execute(text("SELECT 2"))
        mine.execute(text("SELECT 1"))
        other.execute(text("SELECT 3"))

    assert selects(sent) == ["SELECT 1"]


def test_it_stops_recording_when_the_block_ends(engine: Engine) -> None:
    with engine.connect() as conn:
        with sent_on(conn) as sent:
            conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT 2"))

    assert selects(sent) == ["SELECT 1"]
