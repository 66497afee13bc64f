"""Keeps every dynamic segment current: builds, changed profiles, due times, daily sweeps.

One turn of the loop, in order:
1. build the segments that are new or were edited (full, set-based);
2. drain the queue of changed profiles (`segment_dirty`, written in the same transaction as
   the change): each profile is re-evaluated against only the segments its change can move;
3. re-evaluate the profiles whose time-relative conditions are due (`segment_due`);
4. sweep segments with birthday-style conditions once a day, for that day's flips;
5. refit the customer models when the latest fit is older than the schedule allows.
One loop runs at a time across processes (an advisory lock on PostgreSQL, a lock file next
to the SQLite database), because a build and a re-evaluation of the same segment must not
interleave.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from otklik.config import Settings
from otklik.delivery.service import workspace_settings
from otklik.insights import service as insights
from otklik.insights.tasks import run_refit
from otklik.kit.db import read_tx, write_tx
from otklik.kit.time import utc_now
from otklik.segments import context as cx
from otklik.segments import repository as repo
from otklik.segments import schedule
from otklik.segments.build import BuildResult, Progress, build, mark_failed
from otklik.segments.evaluate import Changes, Compiled, reevaluate
from otklik.segments.loading import SegmentCache, compile_row, in_dependency_order
from otklik.worker.polling import PollingLoop

log = logging.getLogger(__name__)
LOCK_KEY = 7_204_311
SETTINGS_TTL = 30.0
REFIT_CHECK = 300.0  # seconds between looks at whether a workspace's models are due
T = TypeVar("T")
Nested = dict[uuid.UUID, dict[uuid.UUID, T]]


class SegmentLoop(PollingLoop):
    thread_name = "otklik-segments"

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.batch = settings.segment_batch
        self.cache = SegmentCache()
        self.evaluated = 0
        self.last_builds: list[BuildResult] = []
        self._consent: dict[uuid.UUID, tuple[float, str]] = {}
        self._thread_lock = threading.Lock()
        self._next_refit_check = 0.0

    # -- one turn -------------------------------------------------------------------------
    def run_once(self, progress: Progress | None = None) -> int:
        with self._exclusive() as mine:
            if not mine:
                return 0
            done = self.build_waiting(progress)
            done += self.drain_dirty()
            done += self.run_due()
            done += self.sweep_calendars()
            self.refit_models()
            return done

    def drain(self, timeout: float = 60.0) -> int:
        """Run until nothing is waiting (for the CLI, the bench and tests)."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            step = self.run_once()
            total += step
            if step == 0:
                return total
        raise TimeoutError(f"segments still busy after {timeout}s")

    def base(self, conn: Connection, workspace_id: uuid.UUID, now: Any) -> cx.Context:
        cached = self._consent.get(workspace_id)
        if cached is None or time.monotonic() - cached[0] > SETTINGS_TTL:
            regime = workspace_settings(conn, workspace_id).marketing_consent
            cached = self._consent[workspace_id] = (time.monotonic(), regime)
        return cx.Context(workspace_id, now, conn.dialect.name, marketing_consent=cached[1])

    # -- 1. builds ----------------------------------------------------------------------------
    def build_waiting(self, progress: Progress | None = None) -> int:
        with read_tx(self.engine) as conn:
            rows = repo.waiting_builds(conn)
            states = {row.id: row.state for row in rows}
            compiled = [compile_row(row) for row in rows]
            first = {row.id: row.built_at is None for row in rows}
        done = 0
        self.last_builds = []
        for segment in in_dependency_order(compiled):
            if any(
                states.get(dep) in ("building", "failed") for dep in segment.analysis.depends_on
            ):
                continue  # its dependency is not built yet (or broken): wait for it
            now = utc_now()
            try:
                with read_tx(self.engine) as conn:
                    base = self.base(conn, segment.workspace_id, now)
                result = build(
                    self.engine,
                    segment,
                    base,
                    first_build=first[segment.id],
                    progress=progress or _quiet,
                )
            except Exception as exc:
                log.exception("segment %s failed to build", segment.id)
                mark_failed(self.engine, segment.id, f"{type(exc).__name__}: {exc}", now)
                continue
            self.last_builds.append(result)
            if result.applied:
                states[segment.id] = "ready"
                done += 1
        return done

    # -- 2. changed profiles ------------------------------------------------------------------
    def drain_dirty(self) -> int:
        with write_tx(self.engine, durable=False) as conn:
            rows = repo.take_dirty(conn, self.batch)
            if not rows:
                return 0
            now = utc_now()
            topics: dict[uuid.UUID, dict[uuid.UUID, set[str]]] = defaultdict(
                lambda: defaultdict(set)
            )
            for row in rows:
                topics[row.workspace_id][row.profile_id].update(row.topics.split("\n"))
            for workspace_id, by_profile in topics.items():
                self._follow_merges(conn, workspace_id, by_profile, now)
            segments = self.cache.of_workspaces(conn, list(topics))
            for workspace_id, by_profile in topics.items():
                # Scores follow orders even where no segment reads them (cards, reports).
                self._rescore(conn, workspace_id, by_profile, now)
                mine = segments.get(workspace_id)
                if not mine:
                    continue
                wanted = {
                    s.id: {pid for pid, t in by_profile.items() if s.affected_by(t)} for s in mine
                }
                self._pass(conn, mine, self.base(conn, workspace_id, now), wanted)
            repo.drop_dirty(conn, rows[-1].id)
            return len(rows)

    def _follow_merges(
        self,
        conn: Connection,
        workspace_id: uuid.UUID,
        by_profile: dict[uuid.UUID, set[str]],
        now: Any,
    ) -> None:
        """A change on a merged-away profile is a change of the profile it lives on now; and
        a static list keeps the person, so the merged profile's stays move to that one."""
        roots = repo.profile_roots(conn, list(by_profile))
        moved: dict[uuid.UUID, uuid.UUID] = {}
        for pid, root in roots.items():
            if root is not None and root != pid:
                by_profile.setdefault(root, set()).update(by_profile[pid])
                moved[pid] = root
        if moved:
            repo.move_static_members(conn, workspace_id, moved, now)

    def _rescore(
        self,
        conn: Connection,
        workspace_id: uuid.UUID,
        by_profile: dict[uuid.UUID, set[str]],
        now: Any,
    ) -> None:
        """Orders move RFM and value scores: refresh those profiles' scores before judging."""
        buyers = [pid for pid, t in by_profile.items() if "order" in t or "*" in t]
        if not buyers:
            return
        insights.rescore(conn, workspace_id, buyers, now)

    def _pass(
        self,
        conn: Connection,
        segments: list[Compiled],
        base: cx.Context,
        wanted: dict[uuid.UUID, set[uuid.UUID]],
    ) -> Changes:
        """Re-evaluate the wanted profiles per segment, in dependency order, so a segment
        that refers to another sees this pass's entries and exits of that other segment."""
        total = Changes()
        moved: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        # One read of the current memberships for the whole pass (each segment's own rows
        # change only when it is evaluated itself, once per pass).
        asked = {s.id for s in segments if wanted.get(s.id)}
        everyone = sorted(set().union(*(wanted[sid] for sid in asked))) if asked else []
        known = repo.current(conn, sorted(asked), everyone)
        for segment in segments:
            pids = set(wanted.get(segment.id, ()))
            for dep in segment.analysis.depends_on:
                pids |= moved.get(dep, set())
            if not pids:
                continue
            prefetched = segment.id in asked and pids <= wanted[segment.id]
            before = {pair for pair in known if pair[0] == segment.id} if prefetched else None
            changes = reevaluate(conn, [segment], base, sorted(pids), before)
            for sid, touched in changes.touched().items():
                moved[sid] |= touched
            total.extend(changes)
        self.evaluated += total.evaluated
        return total

    # -- 3. due times -------------------------------------------------------------------------
    def run_due(self) -> int:
        with write_tx(self.engine, durable=False) as conn:
            now = utc_now()
            rows = repo.take_due(conn, now, self.batch)
            if not rows:
                return 0
            wanted: dict[uuid.UUID, dict[uuid.UUID, set[uuid.UUID]]] = defaultdict(
                lambda: defaultdict(set)
            )
            for row in rows:
                wanted[row.workspace_id][row.segment_id].add(row.profile_id)
            segments = self.cache.of_workspaces(conn, list(wanted))
            for workspace_id, by_segment in wanted.items():
                mine = segments.get(workspace_id, [])
                known = {s.id for s in mine}
                for sid, pids in by_segment.items():
                    if sid not in known:  # deleted, or no longer time-relative
                        repo.drop_dues(conn, sid, sorted(pids))
                self._pass(conn, mine, self.base(conn, workspace_id, now), by_segment)
            return len(rows)

    # -- 4. birthdays ---------------------------------------------------------------------------
    def sweep_calendars(self) -> int:
        now = utc_now()
        with read_tx(self.engine) as conn:
            rows = repo.due_sweeps(conn, now)
        done = 0
        for row in rows:
            segment = compile_row(row)
            with write_tx(self.engine, durable=False) as conn:
                base = self.base(conn, row.workspace_id, now)
                since = (row.next_sweep_at or now) - timedelta(days=1)
                query = schedule.calendar_flips(segment.rules, segment.context(base), since)
                pids = [pid for (pid,) in conn.execute(query)]
                for start in range(0, len(pids), self.batch):
                    reevaluate(conn, [segment], base, pids[start : start + self.batch])
                repo.update_segment(conn, row.id, {"next_sweep_at": schedule.next_midnight(now)})
            done += 1
        return done

    # -- 5. model refits ---------------------------------------------------------------------
    def refit_models(self) -> None:
        """Refit each workspace's customer models on schedule, then rebuild the segments
        whose rules read scores (RFM class, P(alive), value), as all scores moved."""
        if time.monotonic() < self._next_refit_check:
            return
        self._next_refit_check = time.monotonic() + REFIT_CHECK
        every = timedelta(hours=self.settings.insight_refit_hours)
        now = utc_now()
        with read_tx(self.engine) as conn:
            due = [
                ws
                for ws in repo.workspaces_with_orders(conn)
                if insights.refit_due(conn, ws, now, every)
            ]
        for workspace_id in due:
            try:
                # Fitted from a read transaction; the write lock is held only to store it.
                run_refit(self.engine, workspace_id, now)
                with write_tx(self.engine, durable=False) as conn:
                    repo.mark_stale(conn, workspace_id, topic="score")
            except Exception:
                log.exception("customer models of workspace %s failed to refit", workspace_id)

    # -- running --------------------------------------------------------------------------------
    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        with self._thread_lock:
            if self.engine.dialect.name == "postgresql":
                with self.engine.connect() as conn:
                    got = bool(
                        conn.execute(text(f"SELECT pg_try_advisory_lock({LOCK_KEY})")).scalar()
                    )
                    conn.commit()
                    try:
                        yield got
                    finally:
                        if got:
                            conn.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
                            conn.commit()
                return
            with _file_lock(self.engine) as got:
                yield got


def _quiet(stage: str, step: int, of: int) -> None:
    return None


@contextmanager
def _file_lock(engine: Engine) -> Iterator[bool]:
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        yield True
        return
    path = Path(database).with_suffix(Path(database).suffix + ".segments.lock")
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
