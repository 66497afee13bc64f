"""Segments: define, preview, edit, delete, static lists and snapshots. Never commits.

Saving a dynamic segment stores its rules and marks it for a build; the segment loop builds
it (set-based) and from then on keeps it current from events and due times.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from otklik.delivery.service import workspace_settings
from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.ids import uuid7
from otklik.kit.nul import has_nul
from otklik.profiles.identity import normalise
from otklik.profiles.repository import identities_for
from otklik.profiles.service import identifier_type
from otklik.segments import catalog as catalogs
from otklik.segments import compiler as c
from otklik.segments import context as cx
from otklik.segments import repository as repo
from otklik.segments import rules as r
from otklik.segments.evaluate import Changes, record
from otklik.segments.validation import Analysis, analyse, parse

SAMPLE = 10
MAX_STATIC_IDS = 100_000


class SegmentNotFound(NotFound):
    code = "segment_not_found"


class SegmentNameTaken(Conflict):
    code = "segment_name_taken"


class SegmentInUse(Conflict):
    code = "segment_in_use"


class NotStatic(Unprocessable):
    code = "not_static"


class NotDynamic(Unprocessable):
    code = "not_dynamic"


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[dict[str, Any]]
    took_ms: int


def get(conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID) -> Any:
    row = repo.segment(conn, workspace_id, segment_id)
    if row is None:
        raise SegmentNotFound("No segment with that id in this workspace")
    return row


def check(
    conn: Connection, workspace_id: uuid.UUID, body: Any, segment_id: uuid.UUID | None = None
) -> Analysis:
    """Parse and validate a rule tree (raises InvalidRules with every problem and its path)."""
    _no_nul(body)
    rules = parse(body)
    graph = {
        row.id: (row.kind, {uuid.UUID(str(d)) for d in row.depends_on or []})
        for row in repo.segments(conn, workspace_id)
    }
    if segment_id is not None:
        graph[segment_id] = ("dynamic", set())  # its old references are being replaced
    return analyse(
        rules, catalogs.Catalog(conn, workspace_id), segment_id=segment_id, segments=graph
    )


def _stored(analysis: Analysis) -> dict[str, Any]:
    return {
        "rules": analysis.rules.model_dump(mode="json", exclude_defaults=False),
        "topics": sorted(analysis.topics),
        "depends_on": sorted(str(d) for d in analysis.depends_on),
        "analysis": {
            "trait_types": analysis.trait_types,
            "time_relative": analysis.time_relative,
            "calendar": analysis.calendar,
        },
    }


def create(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    name: str,
    description: str,
    kind: str,
    rules: Any,
    now: datetime,
) -> uuid.UUID:
    _free_name(conn, workspace_id, name)
    _no_nul(description)
    segment_id = uuid7()
    row: dict[str, Any] = {
        "id": segment_id,
        "workspace_id": workspace_id,
        "name": name,
        "description": description,
        "kind": kind,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    if kind == "dynamic":
        if rules is None:
            raise Unprocessable("a dynamic segment needs rules", code="missing_rules")
        row.update(_stored(check(conn, workspace_id, rules, segment_id)), state="building")
    else:
        if rules is not None:
            raise Unprocessable(
                "a static segment takes members, not rules", code="unexpected_rules"
            )
        row.update(rules=None, topics=[], depends_on=[], analysis={}, state="ready", built_at=now)
    repo.insert_segment(conn, row)
    return segment_id


def _no_nul(*values: Any) -> None:
    # The console calls these services directly; PostgreSQL stores no NUL in text or JSON.
    if any(has_nul(v) for v in values):
        raise Unprocessable("text must not contain NUL (\\u0000) characters", code="nul_character")


def _free_name(
    conn: Connection, workspace_id: uuid.UUID, name: str, own: uuid.UUID | None = None
) -> None:
    _no_nul(name)
    found = repo.segment_by_name(conn, workspace_id, name)
    if found is not None and found.id != own:
        raise SegmentNameTaken(f"a segment named {name!r} already exists")


def update(
    conn: Connection,
    workspace_id: uuid.UUID,
    segment_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
) -> None:
    row = get(conn, workspace_id, segment_id)
    _no_nul(changes.get("description"))
    values: dict[str, Any] = {"updated_at": now}
    if "name" in changes and changes["name"] != row.name:
        _free_name(conn, workspace_id, changes["name"], segment_id)
        values["name"] = changes["name"]
    if "description" in changes:
        values["description"] = changes["description"]
    if changes.get("rules") is not None:
        if row.kind != "dynamic":
            raise NotDynamic("a static segment has no rules; add or remove members instead")
        values.update(_stored(check(conn, workspace_id, changes["rules"], segment_id)))
        values["version"] = row.version + 1
        # Until rebuilt, readers keep the members of the old rules (never a half-built set).
        values["state"] = "building" if row.built_at is None else "stale"
    repo.update_segment(conn, segment_id, values)


def delete(conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID) -> None:
    get(conn, workspace_id, segment_id)
    users = [
        row.name
        for row in repo.segments(conn, workspace_id)
        if str(segment_id) in (row.depends_on or [])
    ]
    if users:
        raise SegmentInUse(f"segments {', '.join(users)} refer to this one; change them first")
    repo.delete_segment(conn, segment_id)


def rebuild(
    conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID, now: datetime
) -> None:
    row = get(conn, workspace_id, segment_id)
    if row.kind != "dynamic":
        raise NotDynamic("a static segment is not built from rules")
    state = "building" if row.built_at is None else "stale"
    repo.update_segment(conn, segment_id, {"state": state, "updated_at": now})


def preview(
    conn: Connection,
    workspace_id: uuid.UUID,
    body: Any,
    now: datetime,
    segment_id: uuid.UUID | None = None,
    sample: int = SAMPLE,
) -> Preview:
    """The live count and a few matching customers, for a builder being edited."""
    started = time.perf_counter()
    analysis = check(conn, workspace_id, body, segment_id)
    ctx = cx.Context(
        workspace_id,
        now,
        conn.dialect.name,
        analysis.trait_types,
        workspace_settings(conn, workspace_id).marketing_consent,
    )
    matches = c.members(analysis.rules, ctx).subquery()
    count = int(conn.execute(select(func.count()).select_from(matches)).scalar() or 0)
    ids = [pid for (pid,) in conn.execute(c.members(analysis.rules, ctx).limit(sample))]
    people = repo_profiles(conn, ids)
    took = int((time.perf_counter() - started) * 1000)
    return Preview(count, people, took)


def repo_profiles(conn: Connection, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = conn.execute(
        select(cx.PROFILE.c.id, cx.PROFILE.c.email, cx.PROFILE.c.phone, cx.PROFILE.c.traits).where(
            cx.PROFILE.c.id.in_(ids)
        )
    )
    return [person(row) for row in rows]


def person(row: Any) -> dict[str, Any]:
    traits = row.traits or {}
    name = " ".join(
        str(traits[k]) for k in ("first_name", "last_name") if isinstance(traits.get(k), str)
    )
    return {
        "profile_id": row.profile_id if hasattr(row, "profile_id") else row.id,
        "name": name or traits.get("name") or None,
        "email": row.email,
        "phone": row.phone,
    }


# -- static segments -----------------------------------------------------------------------
def resolve_people(
    conn: Connection, workspace_id: uuid.UUID, identifiers: dict[str, list[str]], region: str
) -> tuple[list[uuid.UUID], list[dict[str, str]]]:
    """Live profile ids for listed identifiers, and the ones that matched nobody."""
    found: list[uuid.UUID] = []
    missing: list[dict[str, str]] = []
    pairs: list[tuple[str, str, str]] = []
    for kind, values in identifiers.items():
        if kind == "profile_id":
            continue
        kind = identifier_type(kind)
        for value in values:
            norm = normalise(kind, value, region)
            if norm is None:
                missing.append({"type": kind, "value": value, "reason": "not a usable identifier"})
            else:
                pairs.append((kind, norm, value))
    owners = identities_for(conn, workspace_id, [(k, n) for k, n, _ in pairs])
    for kind, norm, value in pairs:
        owner = owners.get((kind, norm))
        if owner is None:
            missing.append({"type": kind, "value": value, "reason": "no such customer"})
        else:
            found.append(owner)
    raw_ids: list[uuid.UUID] = []
    for value in identifiers.get("profile_id", []):
        try:
            raw_ids.append(uuid.UUID(str(value)))
        except ValueError:
            missing.append({"type": "profile_id", "value": value, "reason": "not a profile id"})
    found.extend(raw_ids)
    roots = repo.profile_roots(conn, found) if found else {}
    live: list[uuid.UUID] = []
    for pid in found:
        root = roots.get(pid)
        if root is None:
            missing.append({"type": "profile_id", "value": str(pid), "reason": "no such customer"})
        else:
            live.append(root)
    return list(dict.fromkeys(live)), missing


def change_static(
    conn: Connection,
    workspace_id: uuid.UUID,
    segment_id: uuid.UUID,
    profile_ids: list[uuid.UUID],
    now: datetime,
    *,
    add: bool,
) -> int:
    row = get(conn, workspace_id, segment_id)
    if row.kind != "static":
        raise NotStatic("members of a dynamic segment follow its rules; edit the rules instead")
    if len(profile_ids) > MAX_STATIC_IDS:
        raise Unprocessable(f"at most {MAX_STATIC_IDS} customers per request", code="too_many")
    current = {pid for _, pid in repo.current(conn, [segment_id], profile_ids)}
    changes = Changes()
    if add:
        changes.entered = [(segment_id, pid) for pid in profile_ids if pid not in current]
    else:
        changes.exited = [(segment_id, pid) for pid in profile_ids if pid in current]
    record(conn, workspace_id, {segment_id: row.name}, changes, now)
    moved = len(changes.entered) - len(changes.exited)
    repo.add_counts(conn, {segment_id: moved})
    return len(changes.entered) + len(changes.exited)


def snapshot(
    conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID, name: str, now: datetime
) -> uuid.UUID:
    """A static copy of a segment's members as they are now."""
    source = get(conn, workspace_id, segment_id)
    new_id = create(
        conn,
        workspace_id,
        name=name,
        description=f"Snapshot of {source.name}",
        kind="static",
        rules=None,
        now=now,
    )
    count = repo.copy_members(conn, workspace_id, segment_id, new_id, now)
    repo.update_segment(conn, new_id, {"members_count": count})
    return new_id


def builder_catalog(conn: Connection, workspace_id: uuid.UUID) -> dict[str, Any]:
    """Everything the visual builder offers: fields with types and the operators for each."""
    return {
        "traits": catalogs.traits(conn, workspace_id),
        "events": repo.event_names(conn, workspace_id),
        "attributes": r.ATTRIBUTES,
        "scores": r.SCORES,
        "rfm_classes": list(r.RFM_CLASSES),
        "channels": list(r.REACH_CHANNELS),
        "identifier_types": repo.identity_types(conn, workspace_id),
        "operators": {kind: sorted(ops) for kind, ops in r.OPS_BY_TYPE.items()},
        "segments": [
            {"id": str(row.id), "name": row.name, "kind": row.kind}
            for row in repo.segments(conn, workspace_id)
        ],
    }
