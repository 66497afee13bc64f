"""Reading the events not yet resolved uses the small pending index, never the whole log.

The count runs at start-up and, while the backlog is over its limit, every second; the
earliest pending event of a workspace is looked up on every merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from otklik.config import Settings
from otklik.ingest.repository import count_pending
from otklik.kit.time import utc_now
from otklik.models import Event
from otklik.offline.service import event_rows, store
from otklik.profiles.repository import min_pending_seq
from otklik.worker.resolver_loop import ResolverLoop
from tests.conftest import make_tenant
from tests.support.statements import sent_on


def tracks(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"{prefix}-{i}"}
        for i in range(count)
    ]


def test_the_count_and_the_earliest_are_of_pending_events_only(
    engine: Engine, settings: Settings
) -> None:
    ResolverLoop(engine, settings).drain()
    first, second = make_tenant(engine), make_tenant(engine)
    store(engine, event_rows(first.id, tracks("a", 2), utc_now()))
    store(engine, event_rows(second.id, tracks("b", 3), utc_now()))
    with engine.connect() as conn:
        seqs = conn.execute(
            select(Event.seq).where(Event.workspace_id == second.id).order_by(Event.seq)
        ).scalars()
        earliest_of_second = next(iter(seqs))
        assert count_pending(conn) == 5
        assert min_pending_seq(conn, second.id) == earliest_of_second

    ResolverLoop(engine, settings).drain()

    with engine.connect() as conn:
        assert count_pending(conn) == 0
        assert min_pending_seq(conn, second.id) is None


def generic_plan(engine: Engine, backend: str, query: Callable[[Connection], Any]) -> str:
    """The plan of the statement `query` sends, as a plan for any parameter values.

    That is the plan PostgreSQL keeps for a statement prepared once and run many times.
    """
    with engine.connect() as conn, sent_on(conn) as statements:
        query(conn)
    [(sql, params)] = [(s, p) for s, p in statements if "pending" not in s and "event" in s]
    with engine.connect() as conn:
        if backend == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            return " ".join(str(row[-1]) for row in rows)
        names = re.findall(r"%\((\w+)\)s", sql)
        for number, name in enumerate(names, 1):
            sql = sql.replace(f"%({name})s", f"${number}", 1)
        values = ", ".join(f"'{params[name]}'" for name in names)
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql("PREPARE planned AS " + sql)
        explain = "EXPLAIN EXECUTE planned" + (f"({values})" if values else "")
        plan = " ".join(row[0] for row in conn.exec_driver_sql(explain))
        conn.exec_driver_sql("DEALLOCATE planned")
        return plan


@pytest.mark.parametrize(
    "query",
    [count_pending, lambda conn: min_pending_seq(conn, make_tenant(conn.engine).id)],
    ids=["count", "earliest of a workspace"],
)
def test_any_plan_reads_the_pending_index(
    engine: Engine, backend: str, query: Callable[[Connection], Any]
) -> None:
    plan = generic_plan(engine, backend, query)

    assert "ix_event_pending" in plan, plan
