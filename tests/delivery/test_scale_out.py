"""Scale-out mode: the API queues on Redis, separate `otklik worker` processes send.

A worker killed with SIGKILL in the middle of a batch loses nothing: its claimed messages
come back when their lease ends and another worker sends them. A message may reach the
provider twice only if it was in flight at the kill; it then carries the same
Idempotency-Key, and the attempt shows as "interrupted".
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from otklik.config import Settings
from otklik.models import DeliveryAttempt, Message
from tests.conftest import LiveServer, Tenant, make_tenant, serve
from tests.delivery.support import DAYTIME, api, ok, template
from tests.support.fake_webhook_receiver import FakeWebhookReceiver
from tests.support.redis import redis_server

pytestmark = pytest.mark.slow
SECRET = "s" * 32
COUNT = 60


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: Any) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def api_only(settings: Settings, engine: Engine, redis_url: str) -> Iterator[LiveServer]:
    """The API process: resolves events, queues messages on Redis, sends nothing itself."""
    mine = settings.model_copy(
        update={"queue_backend": "redis", "redis_url": redis_url, "embedded_delivery": False}
    )
    with serve(mine, engine) as server:
        yield server


def start_worker(settings: Settings, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OTKLIK_DATABASE_URL": settings.database_url,
        "OTKLIK_QUEUE_BACKEND": "redis",
        "OTKLIK_REDIS_URL": redis_url,
        "OTKLIK_DELIVERY_LEASE_SECONDS": "3",
        "OTKLIK_DELIVERY_BATCH": "20",
        "OTKLIK_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "otklik.cli.main", "worker", "--no-resolve"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def states(engine: Engine, tenant: Tenant) -> collections.Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Message.state, func.count())
            .where(Message.workspace_id == tenant.id)
            .group_by(Message.state)
        )
        return collections.Counter({state: n for state, n in rows})


def test_a_worker_killed_mid_send_loses_and_duplicates_nothing(
    api_only: LiveServer, engine: Engine, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    tenant = make_tenant(engine)
    with (
        httpx.Client(base_url=api_only.url, timeout=30) as http,
        FakeWebhookReceiver(SECRET) as hook,
    ):
        ok(api(http, tenant, "PUT", "/delivery-settings", json=DAYTIME))
        ok(
            api(
                http,
                tenant,
                "POST",
                "/channels",
                json={
                    "kind": "webhook",
                    "provider": "http",
                    "name": "hook",
                    # Slow enough that the kill lands in the middle of the run.
                    "config": {"url": hook.url, "secret": SECRET, "rate_per_second": 20},
                },
            ),
            201,
        )
        key = template(
            http,
            tenant,
            channel="webhook",
            purpose="transactional",
            content={"text": "n={{ data.n }}"},
        )
        ids = []
        for n in range(COUNT):
            r = api(
                http,
                tenant,
                "POST",
                "/messages",
                json={
                    "template": key,
                    "to": {},
                    "address": hook.url,
                    "data": {"n": n},
                    "idempotency_key": f"k{n}",
                },
            )
            ids.append(ok(r, 202)["id"])

        first = start_worker(settings, redis_url, tmp_path / "worker1.log")
        deadline = time.monotonic() + 60
        while len(hook.calls) < 15:
            assert first.poll() is None, (tmp_path / "worker1.log").read_text()
            assert time.monotonic() < deadline, "the first worker sent nothing"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = len(hook.calls)
        assert at_kill < COUNT, "the kill came too late to test anything"

        second = start_worker(settings, redis_url, tmp_path / "worker2.log")
        try:
            deadline = time.monotonic() + 90
            while states(engine, tenant)["sent"] < COUNT:
                assert second.poll() is None, (tmp_path / "worker2.log").read_text()
                assert time.monotonic() < deadline, (
                    states(engine, tenant),
                    (tmp_path / "worker2.log").read_text(),
                )
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)

    assert sum(states(engine, tenant).values()) == COUNT  # one row per intent, no more
    seen = collections.Counter(c.headers["idempotency-key"] for c in hook.calls if c.verified)
    assert set(seen) == set(ids)  # nothing lost
    with engine.connect() as conn:
        interrupted = conn.execute(
            select(func.count())
            .select_from(DeliveryAttempt)
            .join(Message, Message.id == DeliveryAttempt.message_id)
            .where(Message.workspace_id == tenant.id, DeliveryAttempt.outcome == "interrupted")
        ).scalar_one()
    repeats = sum(n - 1 for n in seen.values())
    # Only a message in flight at the kill may arrive twice, and its attempt says so.
    assert repeats <= interrupted
