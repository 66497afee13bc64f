"""Counting the events not yet resolved reads the small pending index, never the whole log.

The count runs at start-up and, while the backlog is over its limit, every second.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from otklik.config import Settings
from otklik.ingest.repository import count_pending
from otklik.kit.time import utc_now
from otklik.offline.service import event_rows, store
from otklik.worker.resolver_loop import ResolverLoop
from tests.conftest import make_tenant


def test_the_count_is_of_pending_events_only(engine: Engine, settings: Settings) -> None:
    ResolverLoop(engine, settings).drain()
    tenant = make_tenant(engine)
    messages = [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"c-{i}"} for i in range(3)
    ]
    store(engine, event_rows(tenant.id, messages, utc_now()))
    with engine.connect() as conn:
        assert count_pending(conn) == 3
    ResolverLoop(engine, settings).drain()
    with engine.connect() as conn:
        assert count_pending(conn) == 0


def test_any_plan_of_the_count_can_use_the_pending_index(engine: Engine, backend: str) -> None:
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with engine.connect() as conn:
            count_pending(conn)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    [(sql, params)] = [(sql, params) for sql, params in statements if "count(" in sql]

    with engine.connect() as conn:
        if backend == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in rows)
        else:
            # The plan PostgreSQL keeps for a statement prepared once and run many times.
            assert not params
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql("PREPARE pending_count AS " + sql)
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN EXECUTE pending_count"))
            conn.exec_driver_sql("DEALLOCATE pending_count")
    assert "ix_event_pending" in plan, plan
