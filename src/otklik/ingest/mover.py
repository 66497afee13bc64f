"""Moves journalled events (ingest/spool.py) into the event table, exactly once.

Each transaction inserts whole records and saves the slot's new position with them, so a
crash at any point resumes where the store says the last commit ended; the (workspace,
messageId) key would absorb a repeat anyway, but an exact position also means a person
erased meanwhile is never brought back by a replay. A segment file is deleted only after a
durable commit has moved past it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from otklik.config import Settings
from otklik.ingest import repository, spool
from otklik.ingest.spool import Position, Slot, Spool
from otklik.kit.db import read_tx, write_tx
from otklik.kit.runtime import background_io

log = logging.getLogger(__name__)

ORPHAN_SCAN_SECONDS = 10.0
RETRY_SECONDS = 1.0


def progress_reader(engine: Engine) -> Callable[[str], Position | None]:
    """How far the store says a slot's journal has been moved."""

    def progress(slot_id: str) -> Position | None:
        with read_tx(engine) as conn:
            return repository.spool_progress(conn, slot_id)

    return progress


class SpoolMover:
    def __init__(
        self,
        engine: Engine,
        journal: Spool,
        *,
        batch: int,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._spool = journal
        self._batch = batch
        self._on_commit = on_commit
        self._progress = progress_reader(engine)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.moved_events = 0

    def recover(self) -> int:
        """Move what earlier processes journalled (this slot and dead ones'); before serving."""
        own = self._spool
        moved = self._move(own.slot, own.moved, own.recovered_end)
        own.moved = own.recovered_end
        return moved + self._adopt_orphans()

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="otklik-spool", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after moving what is journalled (what is left waits for the next start)."""
        if self._thread is not None:
            self._stopping = True
            self._spool.wake()
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        background_io()
        own = self._spool
        position = own.moved
        next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
        while True:
            end = own.wait(position, timeout=1.0)
            if end > position:
                try:
                    position = self._move_step(own.slot, position, end)
                except spool.SpoolCorrupt:
                    log.exception("the ingest journal is damaged; set aside, moving on")
                    position = self._set_aside(own.slot, position, end)
                except Exception:
                    log.exception("moving journalled events failed; retrying")
                    time.sleep(RETRY_SECONDS)
                continue
            if self._stopping:
                return
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
                try:
                    self._adopt_orphans()
                except Exception:
                    log.exception("adopting another process's ingest journal failed")

    def _move_step(
        self, slot: Slot, position: Position, end: Position, *, durable: bool = False
    ) -> Position:
        rows, after = spool.read(slot.path, position, end, self._batch)
        # The journal keeps the rows until a durable commit has moved past their segment:
        # commits in between need no fsync of their own (a power cut rolls back the rows and
        # the position together, and they are moved again).
        durable = durable or after.segment > position.segment
        try:
            with write_tx(self._engine, durable=durable) as conn:
                added = repository.insert_event_params(conn, rows)
                repository.save_spool_progress(conn, slot.id, after)
        except OperationalError:
            raise  # the store is away: the rows wait in the journal
        except Exception:
            # The wire checks make this unreachable for valid requests; should one record
            # still be refused, it must not hold back every event behind it.
            rows, after = spool.read(slot.path, position, end, 1)
            added = self._store_or_set_aside(slot, rows, after)
        if after.segment > position.segment:
            spool.drop_before(slot.path, after.segment)
        if slot is self._spool.slot:
            self._spool.moved_rows(len(rows))
        self.moved_events += added
        if self._on_commit is not None and added:
            self._on_commit(added)
        return after

    def _store_or_set_aside(self, slot: Slot, rows: list[spool.Row], after: Position) -> int:
        try:
            with write_tx(self._engine) as conn:
                added = repository.insert_event_params(conn, rows)
                repository.save_spool_progress(conn, slot.id, after)
            return added
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("journalled events refused by the store; recorded as rejected")
            with write_tx(self._engine) as conn:
                repository.append_rejected(conn, [_refused(row, exc) for row in rows])
                repository.save_spool_progress(conn, slot.id, after)
            return 0

    def _set_aside(self, slot: Slot, position: Position, end: Position) -> Position:
        """Keep a damaged segment for inspection and go on with the next one.

        Records are fsynced before they are acknowledged, so only a failing disk gets here;
        the segment still being written is retried instead, as skipping it would skip rows.
        """
        if position.segment >= end.segment:
            time.sleep(RETRY_SECONDS)
            return position
        path = spool.segment_path(slot.path, position.segment)
        path.rename(path.with_suffix(".bad"))
        return Position(position.segment + 1, 0)

    def _move(self, slot: Slot, start: Position, end: Position) -> int:
        moved, position = 0, start
        while position < end:
            before = self.moved_events
            position = self._move_step(slot, position, end, durable=True)
            moved += self.moved_events - before
        spool.drop_before(slot.path, end.segment)
        return moved

    def _adopt_orphans(self) -> int:
        moved = 0
        for slot in spool.orphans(self._spool.root, self._spool.slot):
            try:
                numbers = spool.segments(slot.path)
                if not numbers:  # another process adopted it first
                    continue
                start = self._progress(slot.id) or Position(numbers[0], 0)
                end = spool.recover(slot.path, start)
                moved += self._move(slot, start, end)
                # Its last segment is fully moved too: nothing of this slot is left.
                spool.drop_before(slot.path, end.segment + 1)
            finally:
                slot.release()
        return moved


def _refused(row: spool.Row, error: Exception) -> dict[str, Any]:
    workspace = row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(str(row[0]))
    payload = row[8].decode() if isinstance(row[8], bytes) else str(row[8])
    return repository.failure_row(workspace, "store_refused", error, payload)


class Journal:
    """A process's journal and its mover, as the app starts and stops them."""

    def __init__(self, spool: Spool, mover: SpoolMover) -> None:
        self.spool = spool
        self.mover = mover

    def start(self) -> None:
        # What earlier processes acknowledged is stored before this one serves anything.
        self.mover.recover()
        self.mover.start()

    def stop(self) -> None:
        self.mover.stop()
        self.spool.close()


def open_journal(
    settings: Settings, engine: Engine, on_commit: Callable[[int], None] | None = None
) -> Journal | None:
    root = spool.spool_root(settings.database_url, settings.ingest_spool_dir, settings.ingest_spool)
    if root is None:
        return None
    journal = Spool(root, progress_reader(engine))
    mover = SpoolMover(engine, journal, batch=settings.ingest_write_batch, on_commit=on_commit)
    return Journal(journal, mover)
