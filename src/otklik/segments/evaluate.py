"""Re-evaluating a few profiles against a few segments, and recording who entered or left.

This is the incremental path: the segment loop calls it for the profiles an event changed,
with only the segments whose rules can change with that event, and for due times.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.kit.fastsql import Fast
from otklik.profiles.events_repository import OwnEvent, append_own_events
from otklik.segments import compiler as c
from otklik.segments import context as cx
from otklik.segments import repository as repo
from otklik.segments import schedule
from otklik.segments.validation import Analysis

ENTERED = "segment.entered"
EXITED = "segment.exited"


@dataclass
class Compiled:
    """A segment's parsed rules with what validation learned about them."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    version: int
    state: str
    analysis: Analysis
    # Statements built once per (dialect, consent regime) and run with a clock (cx.Clock).
    _prepared: dict[tuple[str, str], Prepared] = field(default_factory=dict, repr=False)

    @property
    def rules(self) -> Any:
        return self.analysis.rules

    def context(self, base: cx.Context) -> cx.Context:
        return cx.Context(
            base.workspace_id,
            base.now,
            base.dialect,
            self.analysis.trait_types,
            base.marketing_consent,
            base.scope,
        )

    def prepared(self, base: cx.Context) -> Prepared:
        key = (base.dialect, base.marketing_consent)
        found = self._prepared.get(key)
        if found is None:
            clock = cx.Clock(base.now)
            ctx = self.context(base).parametrised(clock)
            rows = schedule.due_rows(schedule.candidates(self.rules, ctx), ctx)
            dues = (
                Fast(repo.dues_from(self.id, self.workspace_id, rows)) if rows is not None else None
            )
            found = self._prepared[key] = Prepared(clock, Fast(c.members(self.rules, ctx)), dues)
        return found

    def affected_by(self, topics: set[str]) -> bool:
        return "*" in topics or not self.analysis.topics.isdisjoint(topics)


@dataclass
class Prepared:
    clock: cx.Clock
    members: Fast
    dues: Fast | None  # the INSERT of the scoped profiles' due times

    def set(self, now: datetime, profile_ids: Sequence[uuid.UUID]) -> None:
        self.clock.now = now
        self.clock.scope = list(profile_ids)


@dataclass
class Changes:
    entered: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    exited: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    evaluated: int = 0

    def extend(self, other: Changes) -> None:
        self.entered.extend(other.entered)
        self.exited.extend(other.exited)
        self.evaluated += other.evaluated

    def touched(self) -> dict[uuid.UUID, set[uuid.UUID]]:
        """Profiles whose membership moved, by segment."""
        out: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for sid, pid in (*self.entered, *self.exited):
            out[sid].add(pid)
        return out


def matching(
    conn: Connection, segment: Compiled, base: cx.Context, profile_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    prepared = segment.prepared(base)
    prepared.set(base.now, profile_ids)
    return {pid for (pid,) in prepared.members.rows(conn)}


def reevaluate(
    conn: Connection,
    segments: Sequence[Compiled],
    base: cx.Context,
    profile_ids: Sequence[uuid.UUID],
    before: set[tuple[uuid.UUID, uuid.UUID]] | None = None,
) -> Changes:
    """Evaluate the profiles against the segments and apply the differences.

    `before` may carry the current memberships of these profiles, read once for many calls.
    """
    changes = Changes()
    if not segments or not profile_ids:
        return changes
    if before is None:
        before = repo.current(conn, [s.id for s in segments], profile_ids)
    now = base.now
    asked = set(profile_ids)
    counts: dict[uuid.UUID, int] = {}
    for segment in segments:
        found = matching(conn, segment, base, profile_ids)
        changes.evaluated += len(profile_ids)
        # `before` may hold other profiles too (read once for a whole pass): only these count.
        was = {pid for sid, pid in before if sid == segment.id and pid in asked}
        entered = [(segment.id, pid) for pid in sorted(found - was)]
        exited = [(segment.id, pid) for pid in sorted(was - found)]
        changes.entered.extend(entered)
        changes.exited.extend(exited)
        counts[segment.id] = len(entered) - len(exited)
        if segment.analysis.time_relative:
            repo.drop_dues(conn, segment.id, profile_ids)
            prepared = segment.prepared(base)
            if prepared.dues is not None:
                prepared.set(now, profile_ids)
                prepared.dues.execute(conn)
    record(conn, base.workspace_id, {s.id: s.name for s in segments}, changes, now)
    repo.add_counts(conn, counts)
    return changes


def record(
    conn: Connection,
    workspace_id: uuid.UUID,
    names: dict[uuid.UUID, str],
    changes: Changes,
    now: datetime,
    *,
    emit: bool = True,
) -> None:
    """Write the entries and exits, and tell the profile's timeline (journeys start on them)."""
    repo.enter(
        conn,
        [
            {"workspace_id": workspace_id, "segment_id": sid, "profile_id": pid, "entered_at": now}
            for sid, pid in changes.entered
        ],
    )
    repo.leave(conn, changes.exited, now)
    if emit:
        tell(conn, workspace_id, names, changes, now)


def tell(
    conn: Connection,
    workspace_id: uuid.UUID,
    names: dict[uuid.UUID, str],
    changes: Changes,
    now: datetime,
) -> None:
    """segment.entered / segment.exited on each profile's timeline."""
    append_own_events(conn, list(_events(workspace_id, names, changes, now)))


def _events(
    workspace_id: uuid.UUID, names: dict[uuid.UUID, str], changes: Changes, now: datetime
) -> Iterable[OwnEvent]:
    stamp = f"{now.timestamp():.6f}"
    for name, pairs in ((ENTERED, changes.entered), (EXITED, changes.exited)):
        for sid, pid in pairs:
            yield OwnEvent(
                workspace_id=workspace_id,
                profile_id=pid,
                message_id=f"{name}:{sid}:{pid}:{stamp}",
                name=name,
                properties={"segment_id": str(sid), "segment_name": names.get(sid, "")},
                timestamp=now,
            )
