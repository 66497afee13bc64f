"""An import that dies midway keeps what it committed, and running it again finishes the job.

Rows are stored in chunks, each its own transaction. messageIds derive from row content, so
re-running the whole file after a crash stores only the rows the crash lost: every row ends up
stored exactly once, and the report says the rows of the committed chunks were unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from otklik.kit.time import utc_now
from otklik.offline import service
from tests.conftest import LiveServer, Tenant
from tests.offline.support import (
    CUSTOMER_HEADER,
    ORDER_HEADER,
    counts,
    csv_file,
    event_count,
    imported,
)
from tests.profiles.support import lookup

CHUNK = 2

CUSTOMERS = csv_file(
    CUSTOMER_HEADER,
    [(f"r-{i}", f"r{i}@shop.ru", "", f"Имя {i}", "", "Москва") for i in range(1, 6)],
)
# Five orders: two for r-1, one each for r-2..r-4.
ORDERS = csv_file(
    ORDER_HEADER,
    [
        ("ro-1", "r-1", "2026-03-01", "100", "RUB", "A", "", "1", "100"),
        ("ro-2", "r-2", "2026-03-02", "200", "RUB", "A", "", "2", "100"),
        ("ro-3", "r-1", "2026-03-03", "300", "RUB", "A", "", "3", "100"),
        ("ro-4", "r-3", "2026-03-04", "400", "RUB", "A", "", "4", "100"),
        ("ro-5", "r-4", "2026-03-05", "500", "RUB", "A", "", "5", "100"),
    ],
)


@pytest.fixture
def crash_on_second_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of two; the second chunk's transaction dies before it commits."""
    real = service.log.append_events
    calls = 0

    def append_events(conn: Any, rows: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed mid-import")
        return real(conn, rows)

    monkeypatch.setattr(service, "CHUNK", CHUNK)
    monkeypatch.setattr(service, "log", SimpleNamespace(append_events=append_events))


def crashed_import(live: LiveServer, tenant: Tenant, kind: str, data: bytes) -> None:
    with pytest.raises(RuntimeError, match="killed mid-import"):
        service.run_import(
            live.engine,
            tenant.id,
            kind,
            data,
            "csv",
            region="RU",
            currency="RUB",
            now=utc_now(),
        )


def test_customers_import_rerun_after_a_crash_stores_every_row_once(
    live: LiveServer, http: httpx.Client, tenant: Tenant, crash_on_second_chunk: None
) -> None:
    crashed_import(live, tenant, "customers", CUSTOMERS)
    assert event_count(live.engine, tenant.id) == CHUNK  # the first chunk was committed

    report = imported(http, tenant, "customers", CUSTOMERS)

    assert counts(report) == (5, 5, 5 - CHUNK, CHUNK, 0)
    live.drain()
    assert event_count(live.engine, tenant.id) == 5
    for i in range(1, 6):
        person = lookup(http, tenant, "email", f"r{i}@shop.ru")
        assert person is not None
        assert person["traits"]["firstName"] == f"Имя {i}"
        assert person["aggregates"]["events_count"] == 1
    assert counts(imported(http, tenant, "customers", CUSTOMERS)) == (5, 5, 0, 5, 0)


def test_orders_import_rerun_after_a_crash_counts_every_order_once(
    live: LiveServer, http: httpx.Client, tenant: Tenant, crash_on_second_chunk: None
) -> None:
    crashed_import(live, tenant, "orders", ORDERS)
    live.drain()  # the committed orders are already on profiles when the rerun comes

    report = imported(http, tenant, "orders", ORDERS)

    assert counts(report) == (5, 5, 5 - CHUNK, CHUNK, 0)
    live.drain()
    assert event_count(live.engine, tenant.id) == 5
    expected = {"r-1": (2, "400.00"), "r-2": (1, "200.00"), "r-3": (1, "400.00")}
    expected["r-4"] = (1, "500.00")
    for user_id, (orders, revenue) in expected.items():
        person = lookup(http, tenant, "user_id", user_id)
        assert person is not None
        aggregates = person["aggregates"]
        assert (aggregates["orders_count"], Decimal(aggregates["revenue"])) == (
            orders,
            Decimal(revenue),
        ), user_id
