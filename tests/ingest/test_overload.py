"""Back-pressure: when the server cannot take more it answers 429 with Retry-After, and a
request it refuses leaves nothing behind (the SDK will send it again)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from otklik.config import Settings
from tests.conftest import LiveServer, serve
from tests.ingest.support import basic, by_message_id, events, nothing_stored

MAX_QUEUED = 10


@pytest.fixture(scope="module")
def small_queue(settings: Settings, engine) -> Iterator[LiveServer]:
    custom = settings.model_copy(update={"ingest_max_queued_events": MAX_QUEUED})
    with serve(custom, engine) as server:
        yield server


@pytest.fixture(scope="module")
def no_backlog(settings: Settings, engine) -> Iterator[LiveServer]:
    """Any unresolved event is too many; no resolver thread, so the backlog stays put."""
    custom = settings.model_copy(update={"ingest_max_backlog": 0, "embedded_worker": False})
    with serve(custom, engine) as server:
        yield server


def items(n: int, prefix: str = "m", **extra) -> list[dict]:
    return [
        {"type": "track", "userId": "u", "event": "e", "messageId": f"{prefix}-{i}", **extra}
        for i in range(n)
    ]


def assert_rate_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited"
    assert r.json()["message"]
    assert int(r.headers["Retry-After"]) >= 1
    assert int(r.headers["X-RateLimit-Reset"]) >= 1


def test_more_events_than_the_write_queue_holds_is_429(small_queue, tenant):
    with httpx.Client(base_url=small_queue.url) as client:
        r = client.post(
            "/v1/batch", json={"batch": items(MAX_QUEUED + 1)}, headers=basic(tenant.write_key)
        )

    assert_rate_limited(r)
    assert nothing_stored(small_queue.engine, tenant.id)


def test_a_refused_batch_records_none_of_its_rejected_items_either(small_queue, tenant):
    batch = items(MAX_QUEUED - 2) + [{"type": "track"}] * 3  # 8 valid + 3 invalid

    with httpx.Client(base_url=small_queue.url) as client:
        r = client.post("/v1/batch", json={"batch": batch}, headers=basic(tenant.write_key))

    assert_rate_limited(r)
    assert nothing_stored(small_queue.engine, tenant.id)


def test_a_batch_that_fits_the_queue_is_accepted(small_queue, tenant):
    with httpx.Client(base_url=small_queue.url) as client:
        r = client.post(
            "/v1/batch", json={"batch": items(MAX_QUEUED)}, headers=basic(tenant.write_key)
        )

    assert r.status_code == 200, r.text
    assert len(events(small_queue.engine, tenant.id)) == MAX_QUEUED


def test_under_concurrent_load_each_batch_is_stored_whole_or_not_at_all(small_queue, tenant):
    """Many clients at once: each gets 200 (all stored) or 429 (none stored), never half."""

    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=small_queue.url, timeout=30, limits=limits) as client:

        def post(n: int) -> tuple[int, int]:
            batch = items(4, prefix=f"b{n}")
            r = client.post("/v1/batch", json={"batch": batch}, headers=basic(tenant.write_key))
            return n, r.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = dict(pool.map(post, range(64)))

    assert set(results.values()) <= {200, 429}
    stored = by_message_id(small_queue.engine, tenant.id)
    for n, status in results.items():
        mine = {f"b{n}-{i}" for i in range(4)}
        if status == 200:
            assert mine <= stored.keys()
        else:
            assert not mine & stored.keys()


def test_a_full_resolver_backlog_is_429_until_it_is_worked_off(no_backlog, tenant):
    headers = basic(tenant.write_key)
    with httpx.Client(base_url=no_backlog.url) as client:
        first = client.post("/v1/batch", json={"batch": items(2, "first")}, headers=headers)
        assert first.status_code == 200, first.text

        refused = client.post("/v1/batch", json={"batch": items(2, "second")}, headers=headers)
        assert_rate_limited(refused)
        assert sorted(by_message_id(no_backlog.engine, tenant.id)) == ["first-0", "first-1"]

        no_backlog.drain()
        time.sleep(1.1)  # the server re-reads the backlog from the store at most once a second
        resumed = client.post("/v1/batch", json={"batch": items(2, "third")}, headers=headers)

    assert resumed.status_code == 200, resumed.text
    assert len(events(no_backlog.engine, tenant.id)) == 4
