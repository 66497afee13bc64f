"""A resolver beside the API takes small batches while tracking calls come in, full ones after.

Preparing a batch is Python work in the same interpreter as the request path; small batches
keep acknowledgements quick under load, large ones catch up faster when the API is quiet.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from otklik.config import Settings
from otklik.ingest import service
from otklik.kit.time import utc_now
from otklik.offline.service import event_rows, store
from otklik.worker.resolver_loop import ResolverLoop
from tests.conftest import LiveServer, Tenant, make_tenant


def identifies(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"type": "identify", "userId": f"{prefix}-{i}", "messageId": f"{prefix}-m{i}"}
        for i in range(count)
    ]


def test_while_ingest_is_active_a_batch_is_the_smaller_size_and_full_size_after(
    engine: Engine, settings: Settings
) -> None:
    tenant = make_tenant(engine)
    small = settings.model_copy(update={"resolver_batch": 20, "resolver_batch_under_ingest": 5})
    loop = ResolverLoop(engine, small)
    store(engine, event_rows(tenant.id, identifies(30, "busy"), utc_now()))
    busy = [True]
    loop.ingest_active = lambda: busy[0]

    assert loop.run_once() == 5
    busy[0] = False
    assert loop.run_once() == 20
    assert loop.run_once() == 5  # what was left
    assert loop.run_once() == 0


def test_a_resolver_with_no_api_beside_it_always_takes_full_batches(
    engine: Engine, settings: Settings
) -> None:
    loop = ResolverLoop(engine, settings)

    assert loop.ingest_active is None
    assert loop.batch_size() == settings.resolver_batch


def test_the_smaller_size_never_exceeds_the_full_one(engine: Engine, settings: Settings) -> None:
    loop = ResolverLoop(
        engine,
        settings.model_copy(update={"resolver_batch": 3, "resolver_batch_under_ingest": 2000}),
    )
    loop.ingest_active = lambda: True

    assert loop.batch_size() == 3


def test_the_served_app_tells_its_resolver_when_tracking_calls_arrive(
    live: LiveServer,
    http: httpx.Client,
    tenant: Tenant,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = live.app.state.resolver
    monkeypatch.setattr(service, "ACTIVE_SECONDS", 0.2)
    time.sleep(0.25)  # whatever earlier specs sent is now past
    assert resolver.batch_size() == settings.resolver_batch

    response = http.post(
        "/v1/track",
        json={"userId": "u-1", "event": "Viewed", "writeKey": tenant.write_key},
    )

    assert response.status_code == 200
    # A generous window for this one reading, so a slow machine between the response and
    # the check cannot make it look past.
    monkeypatch.setattr(service, "ACTIVE_SECONDS", 30.0)
    assert resolver.batch_size() == settings.resolver_batch_under_ingest
    monkeypatch.setattr(service, "ACTIVE_SECONDS", 0.2)
    time.sleep(0.25)
    assert resolver.batch_size() == settings.resolver_batch
