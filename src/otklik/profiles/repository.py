"""SQL for profiles, identities, merges and the resolver's reads and writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, text, update

from otklik.models import Event, Identity, MergeLog, Order, OrderItem, Profile
from otklik.models.event import PENDING

P = Profile.__table__
I = Identity.__table__  # noqa: E741 - the table's conventional short name
E = Event.__table__
M = MergeLog.__table__
O = Order.__table__  # noqa: E741
OI = OrderItem.__table__

PROFILE_STATE_COLS = (
    P.c.id,
    P.c.workspace_id,
    P.c.traits,
    P.c.email,
    P.c.phone,
    P.c.merged_into,
    P.c.erased_at,
    P.c.created_at,
    P.c.first_seen_at,
    P.c.last_seen_at,
    P.c.events_count,
    P.c.orders_count,
    P.c.revenue,
    P.c.last_order_at,
)
RESOLVER_LOCK = 7_310_001


def try_resolver_lock(conn: Connection) -> bool:
    """One resolver at a time: identity decisions depend on every earlier one."""
    if conn.dialect.name != "postgresql":
        return True  # SQLite's BEGIN IMMEDIATE already serialises writers
    return bool(conn.execute(text(f"SELECT pg_try_advisory_xact_lock({RESOLVER_LOCK})")).scalar())


def pending_events(conn: Connection, limit: int) -> Sequence[Row[Any]]:
    stmt = (
        select(E.c.seq, E.c.workspace_id, E.c.type, E.c.name, E.c.timestamp, E.c.payload)
        .where(E.c.status == PENDING)
        .order_by(E.c.seq)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def identities_for(
    conn: Connection, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    wanted = set(pairs)
    out: dict[tuple[str, str], uuid.UUID] = {}
    values = sorted({value for _, value in wanted})
    for chunk in _chunks(values, 500):
        stmt = select(I.c.type, I.c.value, I.c.profile_id).where(
            I.c.workspace_id == workspace_id, I.c.value.in_(chunk)
        )
        for kind, value, profile_id in conn.execute(stmt):
            if (kind, value) in wanted:
                out[(kind, value)] = profile_id
    return out


def profile_rows(conn: Connection, ids: Iterable[uuid.UUID]) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(sorted(set(ids)), 500):
        rows.extend(conn.execute(select(*PROFILE_STATE_COLS).where(P.c.id.in_(chunk))))
    return rows


def identities_of_profiles(
    conn: Connection, ids: Iterable[uuid.UUID], types: Sequence[str] | None = None
) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(sorted(set(ids)), 500):
        stmt = select(I.c.id, I.c.type, I.c.value, I.c.profile_id).where(I.c.profile_id.in_(chunk))
        if types is not None:
            stmt = stmt.where(I.c.type.in_(list(types)))
        rows.extend(conn.execute(stmt))
    return rows


def insert_profiles(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(P), rows)


def update_profiles(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = [key for key in rows[0] if key != "id"]
    stmt = (
        update(P).where(P.c.id == bindparam("_id")).values({key: bindparam(key) for key in columns})
    )
    conn.execute(stmt, [{**row, "_id": row["id"]} for row in rows])


def insert_identities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(I), rows)


def move_identities(conn: Connection, source: uuid.UUID, target: uuid.UUID) -> list[uuid.UUID]:
    ids = [row[0] for row in conn.execute(select(I.c.id).where(I.c.profile_id == source))]
    if ids:
        conn.execute(update(I).where(I.c.profile_id == source).values(profile_id=target))
    return ids


def set_identity_owner(
    conn: Connection, identity_ids: Sequence[uuid.UUID], owner: uuid.UUID
) -> None:
    for chunk in _chunks(list(identity_ids), 500):
        conn.execute(update(I).where(I.c.id.in_(chunk)).values(profile_id=owner))


def repoint_merged(conn: Connection, source: uuid.UUID, target: uuid.UUID) -> list[uuid.UUID]:
    ids = [row[0] for row in conn.execute(select(P.c.id).where(P.c.merged_into == source))]
    if ids:
        conn.execute(update(P).where(P.c.merged_into == source).values(merged_into=target))
    return ids


def insert_merge_log(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(M), [row])


def mark_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = (
            update(E)
            .where(E.c.seq == bindparam("_seq"))
            .values(profile_id=bindparam("_profile"), status=bindparam("_status"))
        )
        conn.execute(stmt, rows)


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(E), rows)


def max_event_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(E.c.seq), 0))).scalar_one())


def orders_by_external(
    conn: Connection, workspace_id: uuid.UUID, external_ids: Iterable[str]
) -> dict[str, Row[Any]]:
    out: dict[str, Row[Any]] = {}
    for chunk in _chunks(sorted(set(external_ids)), 500):
        stmt = select(O.c.id, O.c.external_id, O.c.profile_id, O.c.total, O.c.placed_at).where(
            O.c.workspace_id == workspace_id, O.c.external_id.in_(chunk)
        )
        for row in conn.execute(stmt):
            out[row.external_id] = row
    return out


def insert_orders(
    conn: Connection, orders: list[dict[str, Any]], items: list[dict[str, Any]]
) -> None:
    if orders:
        conn.execute(insert(O), orders)
    if items:
        conn.execute(insert(OI), items)


def replace_order(conn: Connection, order: dict[str, Any], items: list[dict[str, Any]]) -> None:
    order_id = order["id"]
    values = {key: value for key, value in order.items() if key not in ("id", "profile_id")}
    conn.execute(update(O).where(O.c.id == order_id).values(**values))
    conn.execute(OI.delete().where(OI.c.order_id == order_id))
    if items:
        conn.execute(insert(OI), items)


def cluster_ids(conn: Connection, root: uuid.UUID) -> list[uuid.UUID]:
    """The profile and every profile merged into it (merges keep this set flat)."""
    stmt = select(P.c.id).where(or_(P.c.id == root, P.c.merged_into == root))
    return [row[0] for row in conn.execute(stmt)]


def events_after(conn: Connection, profile_id: uuid.UUID, after_seq: int) -> Sequence[Row[Any]]:
    stmt = select(E.c.seq, E.c.user_id, E.c.anonymous_id, E.c.payload).where(
        and_(E.c.profile_id == profile_id, E.c.seq > after_seq)
    )
    return conn.execute(stmt).all()


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def set_merged_into(conn: Connection, owners: dict[uuid.UUID, uuid.UUID]) -> None:
    for pid, owner in owners.items():
        conn.execute(update(P).where(P.c.id == pid).values(merged_into=owner))
