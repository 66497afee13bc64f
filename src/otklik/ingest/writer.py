"""Group commit for accepted events: many requests share one transaction and one fsync.

Each request hands its rows to one writer thread and awaits the commit, so a 200 is only
ever sent for rows that are durably stored, while the store sees a few large transactions
instead of thousands of tiny ones. A full queue is reported to the caller (who answers 429)
rather than letting memory grow without bound.

With the ingest journal on (ingest/spool.py) requests do not wait for the store at all:
a group is appended to the journal and fsynced, and the mover stores it soon after, so an
acknowledged event is in the table a few milliseconds later rather than at once. Imports
and debugger records still go straight to the store.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from otklik.ingest import repository
from otklik.ingest.spool import Spool
from otklik.ingest.wire import Accepted
from otklik.kit.db import write_tx
from otklik.kit.rawsql import Dialect

log = logging.getLogger(__name__)


class Overloaded(Exception):
    pass


@dataclass
class _Job:
    events: list[tuple[Any, ...]]  # driver values, see repository.event_params
    rejected: list[dict[str, Any]]
    done: Callable[[int | BaseException], None]
    # Requests may be journalled; imports, debugger records and requests carrying rejected
    # items (their rejected_event rows go in the same transaction) go straight to the store.
    spoolable: bool = False
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.events) + len(self.rejected)


class EventWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        max_queued: int,
        max_batch: int,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._spool: Spool | None = None
        self._dialect = Dialect(engine)
        self._max_queued = max_queued
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queued = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def journalled(self) -> int:
        """Acknowledged rows still in the journal, not yet in the event table."""
        return self._spool.backlog if self._spool is not None else 0

    def use_spool(self, spool: Spool) -> None:
        self._spool = spool

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="otklik-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    async def write_accepted(
        self,
        workspace_id: uuid.UUID,
        received_at: datetime,
        accepted: list[Accepted],
        rejected: list[dict[str, Any]],
    ) -> int:
        """Store one request's parsed events durably; returns how many there were.

        The rows are those `Accepted.row` would give, and may go to the journal.
        """
        params = repository.accepted_params(self._dialect, workspace_id, received_at, accepted)
        return await self._write(params, rejected)

    async def _write(self, params: list[tuple[Any, ...]], rejected: list[dict[str, Any]]) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def done(result: int | BaseException) -> None:
            loop.call_soon_threadsafe(_resolve, future, result)

        self._submit(_Job(params, rejected, done, spoolable=True))
        return await future

    def write_sync(self, events: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
        """The same for callers outside the event loop (imports, the demo loader)."""
        box: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
        self._submit(_Job(self._params(events), rejected, box.put), block=True)
        result = box.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def count_pending(self) -> int:
        """Stored events not yet resolved into profiles (read from the store)."""
        with self._engine.connect() as conn:
            return repository.count_pending(conn)

    def enqueue_nowait(self, events: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
        """Store without waiting for the commit (for best-effort records such as rejections)."""
        self._submit(_Job(self._params(events), rejected, _ignore))

    def _params(self, events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        # Worked out by the caller, not the writer thread: the writer holds the store's write
        # lock (which the resolver needs too) while it inserts, so it does nothing else then.
        return repository.event_params(self._dialect, events) if events else []

    def _submit(self, job: _Job, *, block: bool = False) -> None:
        if self._thread is None:
            raise RuntimeError("the event writer is not running")
        with self._lock:
            if not block and self._queued + job.size > self._max_queued:
                raise Overloaded()
            self._queued += job.size
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            rows = first.size
            stop = False
            while rows < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                rows += nxt.size
            self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        if self._spool is not None:
            journal = [job for job in jobs if job.spoolable and not job.rejected]
            if journal:
                self._journal(journal)
                jobs = [job for job in jobs if not (job.spoolable and not job.rejected)]
        if jobs:
            self._store(jobs)

    def _journal(self, jobs: list[_Job]) -> None:
        assert self._spool is not None
        rows = [row for job in jobs for row in job.events]
        try:
            self._spool.append(rows)
        except Exception as exc:
            log.exception("journalling %d events failed", len(rows))
            self._finish(jobs, exc)
            return
        self._finish(jobs, None)

    def _store(self, jobs: list[_Job]) -> None:
        """Insert the jobs' rows in one transaction."""
        try:
            with write_tx(self._engine) as conn:
                added = self._insert(conn, jobs)
        except Exception as exc:
            self._failed(jobs, exc)
            return
        self._finish(jobs, None)
        if self._on_commit is not None and added:
            self._on_commit(added)

    @staticmethod
    def _insert(conn: Any, jobs: list[_Job]) -> int:
        events = [row for job in jobs for row in job.events]
        rejected = [row for job in jobs for row in job.rejected]
        added = repository.insert_event_params(conn, events)
        repository.append_rejected(conn, rejected)
        return added

    def _failed(self, jobs: list[_Job], exc: Exception) -> None:
        # Every waiting request must hear about the failure.
        if len(jobs) > 1:
            # One request's bad rows must not fail the others that shared its transaction.
            for job in jobs:
                self._store([job])
            return
        log.exception("event write failed for %d jobs", len(jobs), exc_info=exc)
        self._finish(jobs, exc)

    def _finish(self, jobs: list[_Job], error: BaseException | None) -> None:
        with self._lock:
            self._queued -= sum(job.size for job in jobs)
        for job in jobs:
            # Per-job duplicate counts are not known from a shared executemany; report sizes.
            job.done(error if error is not None else len(job.events))


def _ignore(_result: int | BaseException) -> None:
    return None


def _resolve(future: asyncio.Future[int], result: int | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
