"""bench/ingest: events/s accepted over real HTTP, ack latency, resolution rate, exactly-once.

    python bench/ingest.py [--customers 1500] [--backend sqlite|postgres|both] [--threads 16]

Drives /v1/batch of real server processes with a realistic shop stream from the demo
generator (page views, product views, carts, orders, identifies that merge anonymous
profiles), in two deployments per store:
  embedded  `otklik serve`: one process, the resolver a thread beside ingest;
  split     `otklik api` + `otklik worker`: ingest and resolution in separate processes.
For each it reports
  1. peak: accepted events/s with N concurrent clients, p50/p99 acknowledgement latency;
  2. resolution: events/s turned into profiles, counted until nothing is pending;
  3. half load: paced at half the peak for `--paced-seconds` (5), p50/p99 acknowledgement
     latency; then the same at half the issue's target (`--target`, 20,000 events/s), a
     load that does not grow with our own peak;
  4. exactly-once: every accepted messageId stored once (re-sends included), none pending.
Then the resolver alone draining a stored backlog (its catch-up rate). Last, the baseline:
a bare FastAPI app that only parses and batch-inserts into SQLite, under
the same load generator, and our peak's ratio to it.
"""

from __future__ import annotations

import argparse
import http.client
import math
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, new_slug, percentile, server, store

BENCH = "ingest"


def make_bodies(customers: int, seed: int, batch: int, write_key: str) -> tuple[list[bytes], int]:
    from otklik.demo.generator import DemoConfig, generate_events

    events = list(generate_events(DemoConfig(customers=customers, seed=seed)))
    bodies = [
        orjson.dumps({"batch": events[i : i + batch], "writeKey": write_key})
        for i in range(0, len(events), batch)
    ]
    return bodies, len(events)


def post_all(
    url: str, bodies: list[bytes], threads: int, rate: float | None = None
) -> dict[str, Any]:
    """Send every body from `threads` clients; retry on 429 like an SDK."""
    parts = urlsplit(url)
    work: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
    for item in enumerate(bodies):
        work.put(item)
    for _ in range(threads):
        work.put(None)
    latencies: list[float] = []
    errors: list[str] = []
    retries = [0]
    lock = threading.Lock()
    start = time.perf_counter()
    interval = (1.0 / rate) if rate else 0.0

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        while (item := work.get()) is not None:
            index, body = item
            if interval:
                delay = start + index * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            while True:
                t0 = time.perf_counter()
                conn.request("POST", "/v1/batch", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                took = time.perf_counter() - t0
                if resp.status == 429:
                    with lock:
                        retries[0] += 1
                    time.sleep(float(resp.getheader("Retry-After", "1")) / 10)
                    continue
                with lock:
                    if resp.status == 200:
                        latencies.append(took)
                    else:
                        errors.append(f"{resp.status} {payload[:200]!r}")
                break
        conn.close()

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {
        "elapsed": time.perf_counter() - start,
        "latencies": latencies,
        "errors": errors,
        "retries": retries[0],
        "started": start,
    }


def wait_resolved(engine: Any, journal: Path | None, timeout: float = 900) -> float:
    """Seconds (perf_counter) at which nothing was journalled or pending any more."""
    from otklik.ingest.mover import progress_reader
    from otklik.ingest.repository import count_pending
    from otklik.ingest.spool import unmoved_bytes

    progress = progress_reader(engine)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal is None or unmoved_bytes(journal, progress) == 0:
            with engine.connect() as conn:
                if count_pending(conn) == 0:
                    return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError("events were not resolved in time")


def run(backend: str, mode: str, args: argparse.Namespace) -> float:
    from sqlalchemy import func, select

    from otklik.kit.db import make_engine, session_scope
    from otklik.kit.migrate import upgrade
    from otklik.models import Event, Profile
    from otklik.workspaces.service import create_workspace

    with store(backend) as url:
        engine = make_engine(url)
        upgrade(engine)
        with session_scope(engine) as session:
            ws, write, _ = create_workspace(session, name="bench", slug=new_slug())
        peak_bodies, peak_events = make_bodies(args.customers, 1, args.batch, write.token)
        per_customer = peak_events / args.customers

        def paced_bodies(rate: float, seed: int) -> tuple[list[bytes], int]:
            """A stream that lasts `--paced-seconds` at `rate`, so its p99 has samples."""
            customers = max(math.ceil(rate * args.paced_seconds / per_customer), 10)
            return make_bodies(customers, seed, args.batch, write.token)

        target_bodies, target_events = paced_bodies(args.target / 2, 3)
        tag = {
            "backend": backend,
            "mode": mode,
            "events": peak_events,
            "batch": args.batch,
            "clients": args.threads,
        }
        env = {
            "OTKLIK_SQLITE_SYNCHRONOUS": args.synchronous,
            "OTKLIK_INGEST_SPOOL": str(args.spool == "on").lower(),
        }
        journal = None
        if args.spool != "off":
            journal = Path(tempfile.mkdtemp(prefix="otklik-spool-"))
            env["OTKLIK_INGEST_SPOOL_DIR"] = str(journal)
        split = mode == "split"
        processes = args.api_processes if split else 1
        tag["api_processes"] = processes
        tag["spool"] = args.spool
        with server(url, env=env, split=split, api_processes=processes) as base:
            peak = post_all(base, peak_bodies, args.threads)
            resolved_in = wait_resolved(engine, journal) - peak["started"]
            rate = peak_events / peak["elapsed"]
            emit(BENCH, "accepted_events_per_s", rate, "events/s", **tag)
            emit(
                BENCH, "ack_latency_p50_peak", percentile(peak["latencies"], 50) * 1000, "ms", **tag
            )
            emit(
                BENCH, "ack_latency_p99_peak", percentile(peak["latencies"], 99) * 1000, "ms", **tag
            )
            emit(BENCH, "resolved_events_per_s", peak_events / resolved_in, "events/s", **tag)
            with engine.connect() as conn:
                profiles = conn.execute(
                    select(func.count()).select_from(Profile).where(Profile.workspace_id == ws.id)
                ).scalar_one()
            emit(
                BENCH,
                "profiles_resolved_per_s",
                profiles / resolved_in,
                "profiles/s",
                profiles=profiles,
                **tag,
            )
            if peak["errors"] or peak["retries"]:
                emit(
                    BENCH,
                    "errors",
                    len(peak["errors"]),
                    "requests",
                    retries_429=peak["retries"],
                    sample=peak["errors"][:3],
                    **tag,
                )
            half_bodies, half_events = paced_bodies(rate / 2, 2)
            half = post_all(base, half_bodies, args.threads, rate=rate / 2 / args.batch)
            half_tag = {
                **tag,
                "target_events_per_s": round(rate / 2),
                "requests": len(half["latencies"]),
            }
            emit(
                BENCH,
                "ack_latency_p50_half_load",
                percentile(half["latencies"], 50) * 1000,
                "ms",
                **half_tag,
            )
            emit(
                BENCH,
                "ack_latency_p99_half_load",
                percentile(half["latencies"], 99) * 1000,
                "ms",
                **half_tag,
            )
            # The same at half the 20k events/s target: a load that does not grow with
            # our own peak.
            wait_resolved(engine, journal)
            paced = post_all(base, target_bodies, args.threads, rate=args.target / 2 / args.batch)
            target_tag = {
                **tag,
                "target_events_per_s": round(args.target / 2),
                "requests": len(paced["latencies"]),
            }
            for q in (50, 99):
                emit(
                    BENCH,
                    f"ack_latency_p{q}_half_target",
                    percentile(paced["latencies"], q) * 1000,
                    "ms",
                    **target_tag,
                )
            # Re-send a fifth of the stream, as SDK retries would: nothing may be stored twice.
            post_all(base, peak_bodies[: max(1, len(peak_bodies) // 5)], args.threads)
            wait_resolved(engine, journal)
        with engine.connect() as conn:
            stored, distinct, pending = conn.execute(
                select(
                    func.count(),
                    func.count(func.distinct(Event.message_id)),
                    func.count().filter(Event.status == 0),
                ).where(Event.workspace_id == ws.id, Event.type != "system")
            ).one()
        expected = peak_events + half_events + target_events
        emit(
            BENCH,
            "exactly_once",
            float(stored == distinct == expected and pending == 0),
            "bool",
            stored=stored,
            distinct=distinct,
            expected=expected,
            pending=pending,
            **tag,
        )
        engine.dispose()
        return rate


def run_catch_up(backend: str, args: argparse.Namespace) -> None:
    """The resolver alone on a stored backlog: how fast it catches up after an outage."""
    from otklik.config import Settings
    from otklik.demo.generator import DemoConfig, generate_events
    from otklik.kit.db import make_engine, session_scope
    from otklik.kit.migrate import upgrade
    from otklik.kit.runtime import tune_gc
    from otklik.kit.time import utc_now
    from otklik.offline.service import event_rows
    from otklik.offline.service import store as append
    from otklik.worker.resolver_loop import ResolverLoop
    from otklik.workspaces.service import create_workspace

    tune_gc()
    with store(backend) as url:
        engine = make_engine(url)
        upgrade(engine)
        with session_scope(engine) as session:
            ws, _, _ = create_workspace(session, name="bench", slug=new_slug())
        messages = list(generate_events(DemoConfig(customers=args.customers, seed=1)))
        append(engine, event_rows(ws.id, messages, utc_now()))
        loop = ResolverLoop(engine, Settings(database_url=url))
        started = time.perf_counter()
        done = loop.drain(timeout=900)
        took = time.perf_counter() - started
        emit(
            BENCH,
            "resolver_catch_up_events_per_s",
            done / took,
            "events/s",
            backend=backend,
            events=done,
            profiles=loop.totals.profiles_created,
            merges=loop.totals.merges,
        )
        engine.dispose()


def run_baseline(args: argparse.Namespace) -> float:
    """A bare FastAPI + SQLite batch insert: the ceiling for this machine and load generator."""
    with store("sqlite") as url:
        path = url.removeprefix("sqlite:///")
        bodies, events = make_bodies(args.customers, 1, args.batch, "bare")
        with server(url, env={"BARE_DB": path}, app="bench.bare_app:app") as base:
            result = post_all(base, bodies, args.threads)
    rate = events / result["elapsed"]
    emit(
        BENCH,
        "baseline_bare_fastapi_sqlite_events_per_s",
        rate,
        "events/s",
        events=events,
        clients=args.threads,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=1500, help="demo shop size (~50 events each)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--mode", choices=["embedded", "split", "both"], default="both")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--threads", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--target", type=float, default=20_000, help="events/s the issue asks for; paced at half"
    )
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=5.0,
        help="how long each paced (half-load) phase sends; sets how many samples its p99 has",
    )
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument(
        "--spool",
        choices=["on", "off"],
        default="on",
        help="ingest journal (OTKLIK_INGEST_SPOOL); off: every 200 waits for the store",
    )
    parser.add_argument("--api-processes", type=int, default=1, help="split mode: API processes")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    modes = ["embedded", "split"] if args.mode == "both" else [args.mode]
    ours = {(b, m): run(b, m, args) for b in backends for m in modes}
    for backend in backends:
        run_catch_up(backend, args)
    if not args.no_baseline:
        base = run_baseline(args)
        for (backend, mode), rate in ours.items():
            emit(
                BENCH,
                "accepted_vs_bare_baseline",
                rate,
                "events/s",
                baseline=round(base),
                ratio=round(rate / base, 3),
                backend=backend,
                mode=mode,
            )


if __name__ == "__main__":
    main()
