"""What every benchmark shares: JSON-line output, a server subprocess, a throwaway store."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> None:
    line = {"bench": bench, "metric": metric, "value": round(value, 3), "unit": unit}
    line.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in extra.items()})
    print(json.dumps(line, ensure_ascii=False), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# README, "Two modes": a larger buffer cache than the 128 MB default, and fewer checkpoints
# (each is followed by full-page images of every page touched again, and their write burst
# shares the disk with the ingest journal's fsync).
PG_TUNING = {
    "shared_buffers": "'1GB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "wal_compression": "'lz4'",
}


@contextlib.contextmanager
def store(backend: str) -> Iterator[str]:
    """A fresh, empty database URL for one run, on a quiet disk; removed afterwards."""
    # The kernel writes dirty pages back up to 30 s after they were written: without this,
    # the previous run's data (or its removed files) would be flushed during this run's
    # measurement and queue ahead of its fsyncs.
    os.sync()
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="otklik-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.pg import start_postgres

    base = Path(tempfile.mkdtemp(prefix="otklik-bench-pg-"))
    # A server as an operator would run it (fsync and full-page writes on), not the tests',
    # with the settings the README recommends for an ingest-heavy store.
    server = start_postgres(base, durable=True, config=PG_TUNING)
    try:
        yield str(server.create_database("bench"))
    finally:
        server.stop()


@contextlib.contextmanager
def server(
    db_url: str,
    *,
    env: dict[str, str] | None = None,
    app: str | None = None,
    split: bool = False,
    api_processes: int = 1,
) -> Iterator[str]:
    """A real server process on a loopback port.

    `otklik serve` (embedded: resolver in-process), or with `split` the scale-out pair
    `otklik api` + `otklik worker`, or another ASGI `app` (for baselines).
    """
    port = free_port()
    full_env = {**os.environ, "OTKLIK_DATABASE_URL": db_url, **(env or {})}
    otklik = [sys.executable, "-m", "otklik.cli.main"]
    if app is not None:
        cmds = [
            [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]
        ]
    elif split:
        api = [*otklik, "api", "--port", str(port), "--processes", str(api_processes)]
        cmds = [api, [*otklik, "worker"]]
    else:
        cmds = [[*otklik, "serve", "--port", str(port)]]
    procs = [
        subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd in cmds
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + ("/health" if app is None else "/"), procs[0])
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited: {err[-2000:]}")
        try:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=2)
            conn.request("GET", parts.path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer")


def new_slug() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
