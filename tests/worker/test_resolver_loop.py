"""The resolver loop keeps going when one event cannot be resolved."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.models import Event, Profile, RejectedEvent
from otklik.models.event import FAILED, PROCESSED
from otklik.worker import resolver_loop
from tests.conftest import LiveServer, Tenant


def test_an_event_that_cannot_be_resolved_is_set_aside_and_the_rest_resolve(
    live: LiveServer, http: httpx.Client, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = resolver_loop.prepare_batch

    def poisoned(conn: Any, workspace_id: Any, events: Any, *args: Any) -> Any:
        if any((e.payload or {}).get("messageId") == "poison" for e in events):
            raise ValueError("this event breaks the resolver")
        return real(conn, workspace_id, events, *args)

    monkeypatch.setattr(resolver_loop, "prepare_batch", poisoned)
    batch = [
        {"type": "identify", "userId": f"u{i}", "traits": {"n": i}, "messageId": f"ok-{i}"}
        for i in range(5)
    ]
    batch.insert(2, {"type": "identify", "userId": "bad", "messageId": "poison"})
    response = http.post("/v1/batch", json={"batch": batch, "writeKey": tenant.write_key})
    assert response.status_code == 200
    live.drain()

    with live.engine.connect() as conn:
        status = dict(
            conn.execute(
                select(Event.message_id, Event.status).where(Event.workspace_id == tenant.id)
            ).all()
        )
        profiles = conn.execute(select(Profile.id).where(Profile.workspace_id == tenant.id)).all()
        rejected = conn.execute(
            select(RejectedEvent.code, RejectedEvent.message).where(
                RejectedEvent.workspace_id == tenant.id
            )
        ).all()
    assert status["poison"] == FAILED
    assert all(status[f"ok-{i}"] == PROCESSED for i in range(5))
    assert len(profiles) == 5
    assert [code for code, _ in rejected] == ["resolve_failed"]
    assert "this event breaks the resolver" in rejected[0][1]


def test_absurd_order_quantities_do_not_break_resolution(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    order = {
        "type": "track",
        "userId": "buyer",
        "event": "Order Completed",
        "properties": {
            "order_id": "o-big",
            "products": [
                {"sku": "a", "price": 10, "quantity": 3_000_000_000},
                {"sku": "b", "price": 5},
            ],
        },
    }
    response = http.post("/v1/batch", json={"batch": [order], "writeKey": tenant.write_key})
    assert response.status_code == 200
    live.drain()
    with live.engine.connect() as conn:
        row = conn.execute(
            select(Profile.orders_count, Profile.revenue).where(Profile.workspace_id == tenant.id)
        ).one()
    assert row.orders_count == 1
    assert float(row.revenue) == 5.0
