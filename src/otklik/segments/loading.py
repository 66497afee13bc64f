"""Stored segments turned into compiled ones, cached until their version moves."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from otklik.segments import repository as repo
from otklik.segments.evaluate import Compiled
from otklik.segments.validation import Analysis, parse


def compile_row(row: Any) -> Compiled:
    facts = row.analysis or {}
    analysis = Analysis(
        parse(row.rules),
        trait_types=dict(facts.get("trait_types") or {}),
        topics=set(row.topics or []),
        depends_on={uuid.UUID(str(i)) for i in row.depends_on or []},
        time_relative=bool(facts.get("time_relative")),
        calendar=bool(facts.get("calendar")),
    )
    return Compiled(row.id, row.workspace_id, row.name, row.version, row.state, analysis)


def in_dependency_order(segments: Sequence[Compiled]) -> list[Compiled]:
    """Segments referred to come before the segments that refer to them (no cycles exist)."""
    by_id = {s.id: s for s in segments}
    out: list[Compiled] = []
    done: set[uuid.UUID] = set()

    def visit(segment: Compiled, trail: frozenset[uuid.UUID]) -> None:
        if segment.id in done or segment.id in trail:
            return
        for dep in sorted(segment.analysis.depends_on):
            if dep in by_id:
                visit(by_id[dep], trail | {segment.id})
        done.add(segment.id)
        out.append(segment)

    for segment in segments:
        visit(segment, frozenset())
    return out


class SegmentCache:
    """The dynamic segments of each workspace, reloaded only when one is edited."""

    def __init__(self) -> None:
        self._by_id: dict[uuid.UUID, Compiled] = {}

    def of_workspaces(
        self, conn: Connection, workspace_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Compiled]]:
        rows = repo.versions(conn, list(workspace_ids))
        stale = [
            row.id
            for row in rows
            if row.id not in self._by_id or self._by_id[row.id].version != row.version
        ]
        for row in repo.segments_by_id(conn, stale) if stale else []:
            self._by_id[row.id] = compile_row(row)
        grouped: dict[uuid.UUID, list[Compiled]] = defaultdict(list)
        for row in rows:
            segment = self._by_id[row.id]
            segment.state = row.state
            # A segment not built yet has no members to diff against: its build covers it.
            if row.state in ("ready", "stale"):
                grouped[row.workspace_id].append(segment)
        return {ws: in_dependency_order(segs) for ws, segs in grouped.items()}
