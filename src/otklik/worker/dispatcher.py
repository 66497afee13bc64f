"""Hands due messages to the queue and takes back the ones a dead worker left in flight.

Messages are rows with a `due_at` (first try, retry, end of quiet hours, next free slot under
a frequency cap). New messages are put on the queue right after their transaction commits;
this loop covers everything else: deferred and retried messages when they fall due, and
messages whose task was lost with a crashed process or a flushed queue. Claims happen in
short transactions (SKIP LOCKED on PostgreSQL), so any number of dispatchers may run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from otklik.delivery import repository as repo
from otklik.kit.db import read_tx, write_tx
from otklik.kit.time import utc_now

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        enqueue: Callable[[Sequence[uuid.UUID]], Any],
        *,
        lease: timedelta,
        batch: int = 100,
        interval: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        also: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        # Other short periodic work of the same process (applying pushed receipts).
        self.also = also
        self.enqueue = enqueue
        self.lease = lease
        self.batch = batch
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="otklik-dispatcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick()
            except Exception:  # keep dispatching; the next tick retries what failed
                log.exception("dispatcher tick failed")
                busy = False
            if not busy:
                self._wake.wait(self.interval)
                self._wake.clear()

    def tick(self) -> bool:
        """One round; True when it found a full batch (there may be more right away)."""
        if self.also is not None:
            self.also()
        now = self.clock()
        # Look before taking the write lock: an idle install should not write every second.
        with read_tx(self.engine) as conn:
            if not repo.anything_due(conn, now, now - self.lease):
                return False
        with write_tx(self.engine) as conn:
            lost = repo.expired_leases(conn, now, self.batch * 10)
            repo.requeue_interrupted(conn, lost, now)
        if lost:
            log.warning("taking back %d messages left in flight by a stopped worker", len(lost))
        limit = self.batch * 10
        with write_tx(self.engine) as conn:
            rows = repo.dispatchable(conn, now, now - self.lease, limit)
        groups: dict[tuple[Any, Any], list[uuid.UUID]] = {}
        for row in rows:
            groups.setdefault((row.workspace_id, row.channel_config_id), []).append(row.id)
        for ids in groups.values():
            for start in range(0, len(ids), self.batch):
                self.enqueue(ids[start : start + self.batch])
        return len(rows) >= limit
