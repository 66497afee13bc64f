"""sent_on: what one connection sent, and nothing another sent meanwhile."""

from __future__ import annotations

from sqlalchemy import Engine, text

from tests.support.statements import sent_on


def test_it_records_its_own_connections_statements_only(engine: Engine) -> None:
    with engine.connect() as mine, engine.connect() as other, sent_on(mine) as sent:
        other.execute(text("SELECT 2"))
        mine.execute(text("SELECT 1"))
        other.execute(text("SELECT 3"))

    assert [sql for sql, _ in sent] == ["SELECT 1"]


def test_it_stops_recording_when_the_block_ends(engine: Engine) -> None:
    with engine.connect() as conn:
        with sent_on(conn) as sent:
            conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT 2"))

    assert [sql for sql, _ in sent] == ["SELECT 1"]
