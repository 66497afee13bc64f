"""The task queue: huey on a SQLite file (embedded) or on Redis (scale-out).

The same tasks run either way. Embedded, `otklik serve` runs a consumer's worker threads
inside the web process; scaled out, `otklik worker` processes on any number of machines
consume from Redis. Tasks are registered on the instance by `delivery.tasks.register`, with
explicit names, so every process agrees on them whatever imports it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from otklik.config import Settings

log = logging.getLogger(__name__)


def make_huey(settings: Settings) -> Huey:
    if settings.queue_backend == "redis":
        return RedisHuey("otklik", url=settings.redis_url, utc=True)
    if settings.queue_backend == "memory":
        return MemoryHuey("otklik", utc=True)
    path = Path(settings.queue_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # huey's SQLite storage opens a connection per thread and uses WAL; no extra setup.
    return SqliteHuey("otklik", filename=str(path), utc=True)


class ThreadConsumer(Consumer):
    """A consumer that runs inside another program: no signal handlers (only the main thread
    may install them, and the host process owns its signals)."""

    def _set_signal_handlers(self) -> None:
        return None


def start_consumer(huey: Huey, workers: int, *, in_thread: bool) -> Consumer:
    """Start consuming; `in_thread` for the embedded mode, else the caller runs `.run()`."""
    cls = ThreadConsumer if in_thread else Consumer
    consumer = cls(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=False,
        # Workers poll the store when idle; a short ceiling keeps a new task's wait low.
        initial_delay=0.05,
        backoff=1.5,
        max_delay=0.5,
        check_worker_health=True,
    )
    if in_thread:
        consumer.start()
    return consumer
