"""A 200 means stored: a real `otklik serve` killed with SIGKILL mid-stream loses nothing it
acknowledged, stores no batch by halves, and SDK-style retries afterwards add no duplicates."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from otklik.models import Event
from otklik.models.event import PENDING, PROCESSED
from tests.conftest import free_port
from tests.ingest.support import basic, wait_for

OTKLIK = str(Path(sys.executable).with_name("otklik"))
BATCHES = 200
PER_BATCH = 50
KILL_AFTER = BATCHES // 2  # acknowledged batches before the SIGKILL
CLIENTS = 4


def _env(db_url: str, tmp: Path, spool: str) -> dict[str, str]:
    return {
        **os.environ,
        "OTKLIK_DATABASE_URL": db_url,
        "OTKLIK_SQLITE_SYNCHRONOUS": "FULL",
        "OTKLIK_QUEUE_PATH": str(tmp / "queue.db"),
        "OTKLIK_INGEST_SPOOL": spool,
        "OTKLIK_INGEST_SPOOL_DIR": str(tmp / "spool"),
    }


def _create_workspace(env: dict[str, str], tmp: Path) -> tuple[str, str]:
    """`otklik workspace create` prints the id and the keys once; read them off its output."""
    out = subprocess.run(
        [OTKLIK, "workspace", "create", f"durable-{os.getpid()}-{time.monotonic_ns()}"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    workspace_id = re.search(r"workspace \S+ ([0-9a-f-]{36})", out)
    write_key = re.search(r"write key\s+\(SDKs\):\s+(\S+)", out)
    assert workspace_id and write_key, out
    return workspace_id.group(1), write_key.group(1)


@contextmanager
def otklik_serve(
    env: dict[str, str], tmp: Path, log_name: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    log = (tmp / log_name).open("wb")
    proc = subprocess.Popen(
        [OTKLIK, "serve", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"otklik serve exited: {(tmp / log_name).read_text()}")
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _batch(n: int) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"durable-user-{(n * PER_BATCH + i) % 97}",
            "event": "Product Viewed",
            "messageId": f"b{n:03d}-e{i:02d}",
            "timestamp": "2026-03-01T10:00:00Z",
            "properties": {"sku": f"sku-{i}", "price": 99.9, "title": "Чайник электрический"},
        }
        for i in range(PER_BATCH)
    ]


def _stored_counts(engine: Engine, workspace_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Event.message_id, func.count())
            .where(Event.workspace_id == uuid.UUID(workspace_id), Event.type != "system")
            .group_by(Event.message_id)
        ).all()
    return {message_id: count for message_id, count in rows}


def _statuses(engine: Engine, workspace_id: str) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Event.status, func.count())
            .where(Event.workspace_id == uuid.UUID(workspace_id), Event.type != "system")
            .group_by(Event.status)
        ).all()
    return {status: count for status, count in rows}


@pytest.mark.slow
# Without the journal each 200 waits for the event table; with it, for the ingest journal,
# which the restarted process moves into the table before it serves.
@pytest.mark.parametrize("spool", ["false", "true"])
def test_acknowledged_events_survive_kill_9_and_retries_store_them_once(
    db_url: str, engine: Engine, tmp_path: Path, spool: str
) -> None:
    env = _env(db_url, tmp_path, spool)
    workspace_id, write_key = _create_workspace(env, tmp_path)
    headers = basic(write_key)
    acked: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    with otklik_serve(env, tmp_path, "serve-1.log") as (proc, url):
        todo = iter(range(BATCHES))

        def client() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not killed.is_set():
                    with lock:
                        n = next(todo, None)
                    if n is None:
                        return
                    try:
                        r = http.post("/v1/batch", json={"batch": _batch(n)}, headers=headers)
                    except httpx.HTTPError:
                        continue  # the server died under this request: not acknowledged
                    if r.status_code != 200:
                        continue
                    with lock:
                        acked.add(n)
                        if len(acked) >= KILL_AFTER and not killed.is_set():
                            proc.kill()  # SIGKILL right after a 200, others still in flight
                            killed.set()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert killed.is_set(), "the server was never killed"
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

    assert len(acked) >= KILL_AFTER
    # Restart on the same store: everything acknowledged is there, exactly once.
    with otklik_serve(env, tmp_path, "serve-2.log") as (_proc, url):
        counts = _stored_counts(engine, workspace_id)
        assert set(counts.values()) <= {1}
        for n in sorted(acked):
            ids = {item["messageId"] for item in _batch(n)}
            missing = ids - counts.keys()
            assert not missing, f"acknowledged batch {n} lost {len(missing)} events"
        # No batch is stored by halves: each is one transaction.
        for n in range(BATCHES):
            have = sum(1 for item in _batch(n) if item["messageId"] in counts)
            assert have in (0, PER_BATCH), f"batch {n} stored {have} of {PER_BATCH} events"

        # The SDKs retry everything they are unsure of; retries must add nothing twice.
        with httpx.Client(base_url=url, timeout=30) as http:

            def resend(n: int) -> int:
                return http.post(
                    "/v1/batch", json={"batch": _batch(n)}, headers=headers
                ).status_code

            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                assert set(pool.map(resend, range(BATCHES))) == {200}

        # A journalled 200 reaches the table a moment later.
        counts = wait_for(
            lambda: (
                (c := _stored_counts(engine, workspace_id)) and len(c) == BATCHES * PER_BATCH and c
            ),
            timeout=30,
        )
        assert set(counts.values()) == {1}

        # The embedded resolver works the whole log off, including what was pending at the kill.
        wait_for(lambda: _statuses(engine, workspace_id).get(PENDING, 0) == 0, timeout=60)
        assert _statuses(engine, workspace_id) == {PROCESSED: BATCHES * PER_BATCH}
