"""All SQL of the segments domain except the compiled rules (compiler.py builds those)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Insert,
    Integer,
    Row,
    Select,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from otklik.kit.fastsql import Fast, among, ids_param
from otklik.models import (
    Event,
    Identity,
    Order,
    Profile,
    PushSubscription,
    Segment,
    SegmentDirty,
    SegmentDue,
    SegmentMembership,
)
from otklik.segments.sql import Json

SEGMENT = cast(Table, Segment.__table__)
MEMBERSHIP = cast(Table, SegmentMembership.__table__)
DIRTY = cast(Table, SegmentDirty.__table__)
DUE = cast(Table, SegmentDue.__table__)
PROFILE = cast(Table, Profile.__table__)
EVENT = cast(Table, Event.__table__)
IDENTITY = cast(Table, Identity.__table__)
ORDER = cast(Table, Order.__table__)
PUSH = cast(Table, PushSubscription.__table__)
CHUNK = 500


# The segment loop runs these for every changed profile: compiled once and run on the
# driver's cursor (kit/fastsql.py), they cost little more than SQLite's own work.
CURRENT = Fast(
    select(MEMBERSHIP.c.segment_id, MEMBERSHIP.c.profile_id).where(
        among(MEMBERSHIP.c.profile_id, ids_param("pids")),
        among(MEMBERSHIP.c.segment_id, ids_param("sids")),
        MEMBERSHIP.c.exited_at.is_(None),
    )
)
LEAVE = Fast(
    update(MEMBERSHIP)
    .where(
        MEMBERSHIP.c.segment_id == bindparam("leaving_segment", type_=Uuid),
        among(MEMBERSHIP.c.profile_id, ids_param("pids")),
        MEMBERSHIP.c.exited_at.is_(None),
    )
    .values(exited_at=bindparam("at", type_=MEMBERSHIP.c.exited_at.type))
)
ADD_COUNT = Fast(
    update(SEGMENT)
    .where(SEGMENT.c.id == bindparam("counted_segment", type_=Uuid))
    .values(members_count=SEGMENT.c.members_count + bindparam("delta", type_=Integer))
)
VERSIONS = Fast(
    select(SEGMENT.c.workspace_id, SEGMENT.c.id, SEGMENT.c.version, SEGMENT.c.state).where(
        among(SEGMENT.c.workspace_id, ids_param("wss")), SEGMENT.c.kind == "dynamic"
    )
)
TAKE_DIRTY = Fast(select(DIRTY).order_by(DIRTY.c.id).limit(bindparam("limit", type_=Integer)))
DROP_DIRTY = Fast(delete(DIRTY).where(DIRTY.c.id <= bindparam("up_to", type_=Integer)))
DROP_DUES = Fast(
    delete(DUE).where(
        DUE.c.segment_id == bindparam("due_segment", type_=Uuid),
        among(DUE.c.profile_id, ids_param("pids")),
    )
)
ROOTS = Fast(
    select(PROFILE.c.id, PROFILE.c.merged_into, PROFILE.c.erased_at).where(
        among(PROFILE.c.id, ids_param("pids"))
    )
)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- what the data holds ---------------------------------------------------------------------
def trait_values(
    conn: Connection, workspace_id: uuid.UUID, name: str, limit: int = 50
) -> list[Any]:
    present = Json(conn.dialect.name, PROFILE.c.traits, [name]).exists()
    rows = conn.execute(
        select(PROFILE.c.traits)
        .where(PROFILE.c.workspace_id == workspace_id, PROFILE.c.merged_into.is_(None), present)
        .limit(limit)
    )
    return [row.traits.get(name) for row in rows if isinstance(row.traits, dict)]


def recent_traits(conn: Connection, workspace_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(PROFILE.c.traits)
        .where(PROFILE.c.workspace_id == workspace_id, PROFILE.c.merged_into.is_(None))
        .order_by(PROFILE.c.created_at.desc())
        .limit(limit)
    )
    return [row.traits for row in rows if isinstance(row.traits, dict)]


def event_seen(conn: Connection, workspace_id: uuid.UUID, name: str) -> bool:
    query = select(exists().where(EVENT.c.workspace_id == workspace_id, EVENT.c.name == name))
    return bool(conn.execute(query).scalar())


def property_seen(conn: Connection, workspace_id: uuid.UUID, name: str, path: list[str]) -> bool:
    present = Json(conn.dialect.name, EVENT.c.payload, ["properties", *path]).exists()
    query = select(
        exists().where(EVENT.c.workspace_id == workspace_id, EVENT.c.name == name, present)
    )
    return bool(conn.execute(query).scalar())


def _distinct_by_seeking(
    conn: Connection, column: Any, workspace_column: Any, ws: uuid.UUID
) -> list[str]:
    """DISTINCT over a (workspace, column) index by seeking from value to value.

    A plain DISTINCT reads every index entry (ten million events); each seek reads one.
    """
    table = column.table
    first = select(func.min(column).label("v")).where(workspace_column == ws)
    seen = first.cte("seen", recursive=True)
    other = table.alias("next_value")
    following = (
        select(func.min(other.c[column.name]))
        .where(other.c[workspace_column.name] == ws, other.c[column.name] > seen.c.v)
        .scalar_subquery()
    )
    seen = seen.union_all(select(following).where(seen.c.v.is_not(None)))
    return [v for (v,) in conn.execute(select(seen.c.v).where(seen.c.v.is_not(None)))]


def event_names(conn: Connection, workspace_id: uuid.UUID) -> list[str]:
    return _distinct_by_seeking(conn, EVENT.c.name, EVENT.c.workspace_id, workspace_id)


def identity_types(conn: Connection, workspace_id: uuid.UUID) -> list[str]:
    return _distinct_by_seeking(conn, IDENTITY.c.type, IDENTITY.c.workspace_id, workspace_id)


# -- segments --------------------------------------------------------------------------------
def insert_segment(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(SEGMENT), [row])


def update_segment(conn: Connection, segment_id: uuid.UUID, values: dict[str, Any]) -> None:
    conn.execute(update(SEGMENT).where(SEGMENT.c.id == segment_id).values(**values))


def delete_segment(conn: Connection, segment_id: uuid.UUID) -> None:
    conn.execute(delete(MEMBERSHIP).where(MEMBERSHIP.c.segment_id == segment_id))
    conn.execute(delete(DUE).where(DUE.c.segment_id == segment_id))
    conn.execute(delete(SEGMENT).where(SEGMENT.c.id == segment_id))


def segment(conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID) -> Row[Any] | None:
    return conn.execute(
        select(SEGMENT).where(SEGMENT.c.workspace_id == workspace_id, SEGMENT.c.id == segment_id)
    ).first()


def segment_by_name(conn: Connection, workspace_id: uuid.UUID, name: str) -> Row[Any] | None:
    return conn.execute(
        select(SEGMENT).where(SEGMENT.c.workspace_id == workspace_id, SEGMENT.c.name == name)
    ).first()


def segments(conn: Connection, workspace_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(SEGMENT).where(SEGMENT.c.workspace_id == workspace_id).order_by(SEGMENT.c.name)
        )
    )


def versions(conn: Connection, workspace_ids: Sequence[uuid.UUID]) -> list[Any]:
    """(workspace, id, version, state) of dynamic segments: cheap, read every loop turn."""
    return VERSIONS.rows(conn, {"wss": workspace_ids})


def segments_by_id(conn: Connection, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    return list(conn.execute(select(SEGMENT).where(SEGMENT.c.id.in_(ids))))


def waiting_builds(conn: Connection) -> list[Row[Any]]:
    """Segments whose rules are newer than their members (new, edited, or a failed build)."""
    return list(
        conn.execute(
            select(SEGMENT)
            .where(SEGMENT.c.kind == "dynamic", SEGMENT.c.state.in_(["building", "stale"]))
            .order_by(SEGMENT.c.updated_at)
        )
    )


def due_sweeps(conn: Connection, now: datetime) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(SEGMENT).where(
                SEGMENT.c.kind == "dynamic",
                SEGMENT.c.state == "ready",
                SEGMENT.c.next_sweep_at.is_not(None),
                SEGMENT.c.next_sweep_at <= now,
            )
        )
    )


# -- membership ------------------------------------------------------------------------------
def current(
    conn: Connection, segment_ids: Sequence[uuid.UUID], profile_ids: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    if not segment_ids or not profile_ids:
        return set()
    out: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for ids in _chunks(profile_ids):
        rows = CURRENT.rows(conn, {"pids": ids, "sids": segment_ids})
        out.update((row.segment_id, row.profile_id) for row in rows)
    return out


def enter(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(MEMBERSHIP), rows)


def leave(conn: Connection, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]], now: datetime) -> None:
    by_segment: dict[uuid.UUID, list[uuid.UUID]] = {}
    for segment_id, profile_id in pairs:
        by_segment.setdefault(segment_id, []).append(profile_id)
    for segment_id, pids in by_segment.items():
        for chunk in _chunks(pids):
            LEAVE.execute(conn, {"leaving_segment": segment_id, "pids": chunk, "at": now})


def members_page(
    conn: Connection, segment_id: uuid.UUID, after: int | None, limit: int
) -> list[Row[Any]]:
    query = (
        select(
            MEMBERSHIP.c.id,
            MEMBERSHIP.c.profile_id,
            MEMBERSHIP.c.entered_at,
            PROFILE.c.traits,
            PROFILE.c.email,
            PROFILE.c.phone,
        )
        .select_from(MEMBERSHIP.join(PROFILE, PROFILE.c.id == MEMBERSHIP.c.profile_id))
        .where(MEMBERSHIP.c.segment_id == segment_id, MEMBERSHIP.c.exited_at.is_(None))
        .order_by(MEMBERSHIP.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(MEMBERSHIP.c.id > after)
    return list(conn.execute(query))


def history(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    segment_id: uuid.UUID | None = None,
    profile_ids: Sequence[uuid.UUID] | None = None,
    current: bool = False,
    limit: int = 100,
) -> list[Row[Any]]:
    """Stays in segments, newest first; `current` keeps the ones not ended."""
    query = (
        select(MEMBERSHIP, SEGMENT.c.name.label("segment_name"))
        .select_from(MEMBERSHIP.join(SEGMENT, SEGMENT.c.id == MEMBERSHIP.c.segment_id))
        .where(MEMBERSHIP.c.workspace_id == workspace_id)
        .order_by(MEMBERSHIP.c.id.desc())
        .limit(limit)
    )
    if segment_id is not None:
        query = query.where(MEMBERSHIP.c.segment_id == segment_id)
    if profile_ids is not None:
        query = query.where(MEMBERSHIP.c.profile_id.in_(profile_ids))
    if current:
        query = query.where(MEMBERSHIP.c.exited_at.is_(None))
    return list(conn.execute(query))


def count_members(conn: Connection, segment_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        MEMBERSHIP.c.segment_id == segment_id, MEMBERSHIP.c.exited_at.is_(None)
    )
    return int(conn.execute(query).scalar() or 0)


def add_counts(conn: Connection, deltas: dict[uuid.UUID, int]) -> None:
    for segment_id, delta in deltas.items():
        if delta:
            ADD_COUNT.execute(conn, {"counted_segment": segment_id, "delta": delta})


# -- the queue of changed profiles ---------------------------------------------------------
def mark_dirty(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(DIRTY), rows)


def take_dirty(conn: Connection, limit: int) -> list[Any]:
    return TAKE_DIRTY.rows(conn, {"limit": limit})


def drop_dirty(conn: Connection, up_to: int) -> None:
    DROP_DIRTY.execute(conn, {"up_to": up_to})


# -- due times -------------------------------------------------------------------------------
def drop_dues(conn: Connection, segment_id: uuid.UUID, profile_ids: Sequence[uuid.UUID]) -> None:
    for chunk in _chunks(profile_ids):
        DROP_DUES.execute(conn, {"due_segment": segment_id, "pids": chunk})


def dues_from(segment_id: uuid.UUID, workspace_id: uuid.UUID, rows: Select[Any]) -> Insert:
    """An INSERT of a segment's due times from a SELECT of (profile, due_at)."""
    found = rows.subquery()
    pid, due_at = list(found.c)[:2]
    source = select(literal(segment_id, Uuid), pid, literal(workspace_id, Uuid), due_at)
    return insert(DUE).from_select(["segment_id", "profile_id", "workspace_id", "due_at"], source)


def replace_all_dues(
    conn: Connection, workspace_id: uuid.UUID, segment_id: uuid.UUID, rows: Select[Any] | None
) -> None:
    """Every due time of a segment, from a SELECT of (profile, due_at), in one statement."""
    conn.execute(delete(DUE).where(DUE.c.segment_id == segment_id))
    if rows is not None:
        conn.execute(dues_from(segment_id, workspace_id, rows))


def take_due(conn: Connection, now: datetime, limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(select(DUE).where(DUE.c.due_at <= now).order_by(DUE.c.due_at).limit(limit))
    )


def profile_roots(conn: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each id's live profile (itself, the profile it was merged into, or None if erased)."""
    out: dict[uuid.UUID, uuid.UUID | None] = {}
    for chunk in _chunks(ids):
        for row in ROOTS.rows(conn, {"pids": chunk}):
            out[row.id] = None if row.erased_at else (row.merged_into or row.id)
    return out


def members_select(segment_id: uuid.UUID) -> Select[Any]:
    return select(MEMBERSHIP.c.profile_id).where(
        MEMBERSHIP.c.segment_id == segment_id, MEMBERSHIP.c.exited_at.is_(None)
    )


def copy_members(
    conn: Connection,
    workspace_id: uuid.UUID,
    source: uuid.UUID,
    target: uuid.UUID,
    now: datetime,
) -> int:
    query = select(
        literal(workspace_id, Uuid),
        literal(target, Uuid),
        MEMBERSHIP.c.profile_id,
        literal(now, MEMBERSHIP.c.entered_at.type),
    ).where(MEMBERSHIP.c.segment_id == source, MEMBERSHIP.c.exited_at.is_(None))
    conn.execute(
        insert(MEMBERSHIP).from_select(
            ["workspace_id", "segment_id", "profile_id", "entered_at"], query
        )
    )
    return count_members(conn, target)  # psycopg reports no row count for INSERT ... SELECT


def address_owners(
    conn: Connection, workspace_id: uuid.UUID, channel: str, addresses: list[str]
) -> set[uuid.UUID]:
    """Live profiles holding any of these addresses (email, phone or Telegram chat)."""
    out: set[uuid.UUID] = set()
    for chunk in _chunks(addresses):
        if channel in ("email", "sms"):
            column = PROFILE.c.email if channel == "email" else PROFILE.c.phone
            query = select(PROFILE.c.id).where(
                PROFILE.c.workspace_id == workspace_id, column.in_(chunk)
            )
        else:
            query = select(IDENTITY.c.profile_id).where(
                IDENTITY.c.workspace_id == workspace_id,
                IDENTITY.c.type == channel,
                IDENTITY.c.value.in_(chunk),
            )
        out.update(pid for (pid,) in conn.execute(query))
    return out


def push_owners(conn: Connection, workspace_id: uuid.UUID, addresses: list[str]) -> set[uuid.UUID]:
    out: set[uuid.UUID] = set()
    for chunk in _chunks(addresses):
        query = select(PUSH.c.profile_id).where(
            PUSH.c.workspace_id == workspace_id, PUSH.c.address.in_(chunk)
        )
        out.update(pid for (pid,) in conn.execute(query))
    return out


def workspaces_with_orders(conn: Connection) -> list[uuid.UUID]:
    return [ws for (ws,) in conn.execute(select(ORDER.c.workspace_id).distinct())]


def mark_stale(conn: Connection, workspace_id: uuid.UUID, *, topic: str) -> int:
    """Queue a rebuild of the built segments whose rules read `topic` (e.g. scores)."""
    ids = [
        row.id
        for row in segments(conn, workspace_id)
        if row.kind == "dynamic" and row.state == "ready" and topic in (row.topics or [])
    ]
    if ids:
        conn.execute(update(SEGMENT).where(SEGMENT.c.id.in_(ids)).values(state="stale"))
    return len(ids)


def move_static_members(
    conn: Connection, workspace_id: uuid.UUID, moved: dict[uuid.UUID, uuid.UUID], now: datetime
) -> None:
    """Stays in static segments follow a merge: the old profile leaves, its root enters."""
    static = select(SEGMENT.c.id).where(
        SEGMENT.c.workspace_id == workspace_id, SEGMENT.c.kind == "static"
    )
    rows = list(
        conn.execute(
            select(MEMBERSHIP.c.segment_id, MEMBERSHIP.c.profile_id).where(
                MEMBERSHIP.c.profile_id.in_(list(moved)),
                MEMBERSHIP.c.exited_at.is_(None),
                MEMBERSHIP.c.segment_id.in_(static),
            )
        )
    )
    if not rows:
        return
    leave(conn, [(row.segment_id, row.profile_id) for row in rows], now)
    wanted = {(row.segment_id, moved[row.profile_id]) for row in rows}
    have = current(conn, list({s for s, _ in wanted}), list({p for _, p in wanted}))
    enter(
        conn,
        [
            {"workspace_id": workspace_id, "segment_id": s, "profile_id": p, "entered_at": now}
            for s, p in sorted(wanted - have)
        ],
    )
    counts: dict[uuid.UUID, int] = {}
    for row in rows:
        counts[row.segment_id] = counts.get(row.segment_id, 0) - 1
    for s, _ in wanted - have:
        counts[s] = counts.get(s, 0) + 1
    add_counts(conn, counts)


def leave_all_but(
    conn: Connection, segment_id: uuid.UUID, staged: Select[Any], now: datetime
) -> int:
    """Close the stays of members not among `staged`; returns how many left."""
    leaving = members_select(segment_id).where(MEMBERSHIP.c.profile_id.not_in(staged))
    count = int(conn.execute(select(func.count()).select_from(leaving.subquery())).scalar() or 0)
    if count:
        conn.execute(
            update(MEMBERSHIP)
            .where(
                MEMBERSHIP.c.segment_id == segment_id,
                MEMBERSHIP.c.exited_at.is_(None),
                MEMBERSHIP.c.profile_id.not_in(staged),
            )
            .values(exited_at=now)
        )
    return count


def enter_all_new(
    conn: Connection,
    workspace_id: uuid.UUID,
    segment_id: uuid.UUID,
    staged: Select[Any],
    now: datetime,
) -> int:
    """Open stays for the staged profiles not yet members; returns how many entered."""
    column = staged.selected_columns[0]
    fresh = staged.where(column.not_in(members_select(segment_id)))
    count = int(conn.execute(select(func.count()).select_from(fresh.subquery())).scalar() or 0)
    if count:
        rows = select(
            literal(workspace_id, Uuid),
            literal(segment_id, Uuid),
            column,
            literal(now, MEMBERSHIP.c.entered_at.type),
        ).where(column.not_in(members_select(segment_id)))
        conn.execute(
            insert(MEMBERSHIP).from_select(
                ["workspace_id", "segment_id", "profile_id", "entered_at"], rows
            )
        )
    return count
