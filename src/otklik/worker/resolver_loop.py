"""Drains the pending part of the event log into profiles, in log order, in batches.

In embedded mode this runs as a thread of `otklik serve`, woken by each ingest commit; in
scale-out mode `otklik worker` runs it, polling with back-off (PostgreSQL serialises the
resolvers with an advisory lock, so any number may run).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError

from otklik.config import Settings
from otklik.ingest.repository import append_rejected, count_pending, failure_row
from otklik.kit.db import read_tx, write_tx
from otklik.kit.time import utc_now
from otklik.models import Workspace
from otklik.models.event import FAILED
from otklik.profiles import log_repository
from otklik.profiles import repository as repo
from otklik.profiles.identity import Junk
from otklik.profiles.log_repository import PendingEvent
from otklik.profiles.resolver import BatchStats, ResolverConfig, prepare_batch
from otklik.worker.polling import PollingLoop

log = logging.getLogger(__name__)
CONFIG_TTL = 30.0
BATCH_FIELDS = [f.name for f in fields(BatchStats)]


@dataclass
class Totals(BatchStats):
    """Everything this loop has resolved since it started."""

    batches: int = 0
    redone: int = 0  # batches prepared from reads that a concurrent write made stale

    def add(self, stats: BatchStats) -> None:
        for name in BATCH_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(stats, name))


def _by_workspace(events: list[Any]) -> dict[uuid.UUID, list[Any]]:
    groups: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for event in events:
        groups[event.workspace_id].append(event)
    return groups


class ResolverLoop(PollingLoop):
    thread_name = "otklik-resolver"

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.totals = Totals()
        # Workspace settings (phone region, currency) change rarely but may be edited in the
        # console of another process: re-read them after CONFIG_TTL seconds.
        self._configs: dict[uuid.UUID, tuple[float, ResolverConfig]] = {}
        self._junk: dict[str, Junk] = {}
        # Told after each committed batch (the segment loop re-evaluates what it changed).
        self.on_batch: Callable[[], None] | None = None
        # In `otklik serve`: whether the API beside this loop is taking tracking calls, when
        # batches stay at `resolver_batch_under_ingest` (see config.py).
        self.ingest_active: Callable[[], bool] | None = None

    def config_for(self, conn: Any, workspace_id: uuid.UUID) -> ResolverConfig:
        cached = self._configs.get(workspace_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CONFIG_TTL:
            return cached[1]
        row = conn.execute(
            select(Workspace.default_region, Workspace.currency).where(Workspace.id == workspace_id)
        ).first()
        region = (row.default_region if row else None) or self.settings.default_phone_region
        currency = (row.currency if row else None) or "RUB"
        junk = self._junk.get(region)
        if junk is None:
            junk = self._junk[region] = Junk.build(self.settings.junk_identifiers, region)
        config = ResolverConfig(
            region, currency, frozenset(self.settings.identity_unique_types), junk
        )
        self._configs[workspace_id] = (now, config)
        return config

    def batch_size(self) -> int:
        if self.ingest_active is not None and self.ingest_active():
            return min(self.settings.resolver_batch_under_ingest, self.settings.resolver_batch)
        return self.settings.resolver_batch

    def run_once(self) -> int:
        """Resolve one batch; returns how many events it took (0 when nothing was pending)."""
        size = self.batch_size()
        try:
            return self._resolve(size)
        except Exception:
            log.exception("resolver batch failed; resolving its events one by one")
        # One event that cannot be resolved must not stop every workspace behind it.
        taken = 0
        for _ in range(size):
            step = self._resolve_alone()
            if step == 0:
                break
            taken += step
        return taken

    def _resolve(self, limit: int) -> int:
        """Prepare a batch from reads alone, then write it under the lock if still current.

        Holding the write lock only for the writes lets ingest commit while a batch is being
        worked out. Every writer of profiles bumps a version; if it moved since the reads,
        the batch is redone under the lock (the old, always-correct path).
        """
        with read_tx(self.engine) as conn:
            version = repo.profiles_version(conn)
            events = log_repository.pending_events(conn, limit)
            if not events:
                return 0
            # Taken after the read: a "now" from before it could be older than the batch
            # another runner (a drain) finished meanwhile, so a profile created later would
            # carry an earlier created_at than one created before it.
            now = utc_now()
            prepared = [
                prepare_batch(conn, workspace_id, group, self.config_for(conn, workspace_id), now)
                for workspace_id, group in _by_workspace(events).items()
            ]
        with write_tx(self.engine, durable=False) as conn:
            if not repo.try_resolver_lock(conn):
                return 0
            if repo.profiles_version(conn) != version:
                self.totals.redone += 1
                events = log_repository.pending_events(conn, limit)
                now = utc_now()
                prepared = [
                    prepare_batch(conn, ws, group, self.config_for(conn, ws), now)
                    for ws, group in _by_workspace(events).items()
                ]
            for batch in prepared:
                batch.conn = conn
                batch.flush()
                self.totals.add(batch.stats)
            repo.bump_profiles_version(conn)
        if events:
            self.totals.batches += 1
            if self.on_batch is not None:
                self.on_batch()
        return len(events)

    def _resolve_alone(self) -> int:
        """Resolve the oldest pending event by itself, or set it aside if it cannot be.

        All under the lock, so the event blamed is exactly the one that failed.
        """
        with write_tx(self.engine, durable=False) as conn:
            if not repo.try_resolver_lock(conn):
                return 0
            events = log_repository.pending_events(conn, 1)
            if not events:
                return 0
            event = events[0]
            try:
                with conn.begin_nested():
                    config = self.config_for(conn, event.workspace_id)
                    batch = prepare_batch(conn, event.workspace_id, events, config, utc_now())
                    batch.flush()
                    repo.bump_profiles_version(conn)
                self.totals.add(batch.stats)
            except OperationalError:
                raise  # the store is unreachable or busy: retry later, blame no event
            except Exception as exc:
                self._set_aside(conn, event, exc)
        return 1

    def _set_aside(self, conn: Connection, event: PendingEvent, error: Exception) -> None:
        """Mark the event as failed and record why, for the debugger."""
        log.error("event %s could not be resolved and is set aside: %s", event.seq, error)
        log_repository.mark_failed(conn, event.seq, FAILED)
        payload = orjson.dumps(event.payload or {}, default=str).decode()
        append_rejected(conn, [failure_row(event.workspace_id, "resolve_failed", error, payload)])

    def drain(self, timeout: float = 60.0) -> int:
        """Resolve until nothing is pending (for the CLI, imports and tests)."""
        deadline = time.monotonic() + timeout
        done = 0
        while time.monotonic() < deadline:
            taken = self.run_once()
            done += taken
            if taken == 0:
                with self.engine.connect() as conn:
                    if count_pending(conn) == 0:
                        return done
                time.sleep(0.05)
        raise TimeoutError(f"events still pending after {timeout}s")
