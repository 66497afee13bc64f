"""SQL for profiles, identities, merges and the resolver's reads and writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.types import Uuid

from otklik.kit.rawsql import Dialect
from otklik.models import Event, Identity, MergeLog, Order, OrderItem, Profile, ResolverState
from otklik.models.base import UTCDateTime
from otklik.models.event import is_pending

AnyRow = Row[*tuple[Any, ...]]
# Typed aliases: SQLAlchemy 2.1 types `Model.__table__` as a FromClause, which has no
# insert/update/delete for mypy; these are the Table objects themselves.
P = cast(Table, Profile.__table__)
I = cast(Table, Identity.__table__)  # noqa: E741 - the table's conventional short name
E = cast(Table, Event.__table__)
M = cast(Table, MergeLog.__table__)
O = cast(Table, Order.__table__)  # noqa: E741
OI = cast(Table, OrderItem.__table__)
RS = cast(Table, ResolverState.__table__)

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


def profiles_version(conn: Connection) -> int:
    """A counter every writer of profiles and identities bumps (see resolver_loop)."""
    row = conn.execute(select(RS.c.version).where(RS.c.id == 1)).first()
    return 0 if row is None else int(row[0])


def bump_profiles_version(conn: Connection) -> None:
    if not conn.execute(update(RS).where(RS.c.id == 1).values(version=RS.c.version + 1)).rowcount:
        conn.execute(insert(RS).values(id=1, version=1))


def try_resolver_lock(conn: Connection) -> bool:
    """One resolver at a time: identity decisions depend on every earlier one."""
    if conn.dialect.name != "postgresql":
        return True  # SQLite's BEGIN IMMEDIATE already serialises writers
    return bool(conn.execute(text(f"SELECT pg_try_advisory_xact_lock({RESOLVER_LOCK})")).scalar())


def identities_for(
    conn: Connection, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    # Grouped by type so every lookup walks the (workspace_id, type, value) unique index.
    by_type: dict[str, set[str]] = {}
    for kind, value in pairs:
        by_type.setdefault(kind, set()).add(value)
    out: dict[tuple[str, str], uuid.UUID] = {}
    for kind, values in by_type.items():
        for chunk in _chunks(sorted(values), 500):
            stmt = select(I.c.value, I.c.profile_id).where(
                I.c.workspace_id == workspace_id, I.c.type == kind, I.c.value.in_(chunk)
            )
            for value, profile_id in conn.execute(stmt):
                out[(kind, value)] = profile_id
    return out


def profile_rows(conn: Connection, ids: Iterable[uuid.UUID]) -> list[AnyRow]:
    rows: list[Row[Any]] = []
    for chunk in _chunks(sorted(set(ids)), 500):
        rows.extend(conn.execute(select(*PROFILE_STATE_COLS).where(P.c.id.in_(chunk))))
    return rows


def identities_of_profiles(
    conn: Connection, ids: Iterable[uuid.UUID], types: Sequence[str] | None = None
) -> list[AnyRow]:
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
    if conn.dialect.name == "sqlite":
        _update_profiles_sqlite(conn, columns, rows)
        return
    stmt = (
        update(P).where(P.c.id == bindparam("_id")).values({key: bindparam(key) for key in columns})
    )
    conn.execute(stmt, [{**row, "_id": row["id"]} for row in rows])


def _update_profiles_sqlite(
    conn: Connection, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """The same UPDATE with driver values made here: the resolver's hottest write after marks.

    Through SQLAlchemy, per-row type processing (its SQLite datetime formatting above all)
    cost more than the update itself, inside the write lock that ingest waits for.
    """
    convert = [_sqlite_bind(conn, P.c[name]) for name in columns]
    pairs = list(zip(columns, convert, strict=True))
    params = []
    for row in rows:
        values = [row[name] if fn is None else fn(row[name]) for name, fn in pairs]
        values.append(row["id"].hex)
        params.append(tuple(values))
    statement = "UPDATE profile SET " + ", ".join(f"{P.c[name].name} = ?" for name in columns)
    conn.exec_driver_sql(statement + " WHERE id = ?", params)


def _sqlite_bind(conn: Connection, column: Any) -> Any:
    """The column's own bind processor, or a cheaper one that stores the same text."""
    dialect = conn.dialect
    impl = column.type.dialect_impl(dialect)
    if isinstance(column.type, Uuid):
        return _hex
    if isinstance(column.type, UTCDateTime):
        slow = impl.bind_processor(dialect)

        def store_time(value: datetime | None) -> Any:
            if value is None:
                return None
            if value.tzinfo is UTC:
                return value.replace(tzinfo=None).isoformat(" ", "microseconds")
            return slow(value)

        return store_time
    return impl.bind_processor(dialect)


def _hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else value.hex


def insert_identities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(I), rows)


def set_identity_owner(
    conn: Connection, identity_ids: Sequence[uuid.UUID], owner: uuid.UUID
) -> None:
    for chunk in _chunks(list(identity_ids), 500):
        conn.execute(update(I).where(I.c.id.in_(chunk)).values(profile_id=owner))


def insert_merge_log(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(M), [row])


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(E), rows)


def max_event_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(E.c.seq), 0))).scalar_one())


def orders_by_external(
    conn: Connection, workspace_id: uuid.UUID, external_ids: Iterable[str]
) -> dict[str, AnyRow]:
    out: dict[str, AnyRow] = {}
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


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def set_merged_into(conn: Connection, owners: dict[uuid.UUID, uuid.UUID]) -> None:
    for pid, owner in owners.items():
        conn.execute(update(P).where(P.c.id == pid).values(merged_into=owner))


# -- The profiles REST API: reads, explicit merges and their undo, GDPR export and erasure --
_P, _I, _E, _M, _O, _OI = P, I, E, M, O, OI
PROFILE_COLS = (*PROFILE_STATE_COLS, P.c.updated_at)
EVENT_COLS = (
    _E.c.seq,
    _E.c.type,
    _E.c.name,
    _E.c.timestamp,
    _E.c.received_at,
    _E.c.message_id,
    _E.c.user_id,
    _E.c.anonymous_id,
    _E.c.profile_id,
    _E.c.payload,
)
ORDER_COLS = (
    _O.c.id,
    _O.c.external_id,
    _O.c.profile_id,
    _O.c.placed_at,
    _O.c.total,
    _O.c.currency,
    _O.c.status,
    _O.c.source,
    _O.c.message_id,
)


def resolver_lock(conn: Connection) -> None:
    """Wait for the resolver's lock: an API write to profiles must not interleave with a batch
    (the resolver writes whole profile rows it read earlier, so it would undo the change).
    The version bump tells a resolver that prepared a batch from older reads to redo it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({RESOLVER_LOCK})"))
    bump_profiles_version(conn)


def get_profile(conn: Connection, workspace_id: uuid.UUID, profile_id: uuid.UUID) -> AnyRow | None:
    stmt = select(*PROFILE_COLS).where(_P.c.workspace_id == workspace_id, _P.c.id == profile_id)
    return conn.execute(stmt).first()


def cluster_rows(conn: Connection, root: uuid.UUID) -> Sequence[AnyRow]:
    stmt = (
        select(*PROFILE_COLS)
        .where(or_(_P.c.id == root, _P.c.merged_into == root))
        .order_by(_P.c.created_at, _P.c.id)
    )
    return conn.execute(stmt).all()


def identity_rows(conn: Connection, profile_ids: Sequence[uuid.UUID]) -> Sequence[AnyRow]:
    stmt = (
        select(_I.c.id, _I.c.type, _I.c.value, _I.c.profile_id, _I.c.created_at)
        .where(_I.c.profile_id.in_(list(profile_ids)))
        .order_by(_I.c.type, _I.c.value)
    )
    return conn.execute(stmt).all()


def identities_by_ids(conn: Connection, ids: Sequence[uuid.UUID]) -> list[AnyRow]:
    rows: list[AnyRow] = []
    for chunk in _chunks(list(ids), 500):
        stmt = select(_I.c.id, _I.c.type, _I.c.value, _I.c.profile_id).where(_I.c.id.in_(chunk))
        rows.extend(conn.execute(stmt))
    return rows


def _before(ts_col: Any, key_col: Any, after: tuple[Any, Any] | None) -> Any:
    """Keyset condition for a newest-first page that continues after (ts, key)."""
    if after is None:
        return true()
    ts, key = after
    return or_(ts_col < ts, and_(ts_col == ts, key_col < key))


def list_roots(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[Any, Any] | None,
    match: tuple[Sequence[uuid.UUID], str | None, str | None] | None = None,
) -> Sequence[AnyRow]:
    """Root, non-erased profiles newest first; `match` = (ids, email, phone) narrows to those."""
    stmt = select(*PROFILE_COLS).where(
        _P.c.workspace_id == workspace_id,
        _P.c.merged_into.is_(None),
        _P.c.erased_at.is_(None),
        _before(_P.c.created_at, _P.c.id, after),
    )
    if match is not None:
        ids, email, phone = match
        conds: list[ColumnElement[bool]] = [_P.c.id.in_(list(ids))] if ids else []
        if email:
            conds.append(_P.c.email == email)
        if phone:
            conds.append(_P.c.phone == phone)
        if not conds:
            return []
        stmt = stmt.where(or_(*conds))
    stmt = stmt.order_by(_P.c.created_at.desc(), _P.c.id.desc()).limit(limit)
    return conn.execute(stmt).all()


def timeline(
    conn: Connection,
    workspace_id: uuid.UUID,
    profile_ids: Sequence[uuid.UUID],
    *,
    limit: int | None,
    after: tuple[Any, Any] | None = None,
    event_type: str | None = None,
) -> Sequence[AnyRow]:
    stmt = select(*EVENT_COLS).where(
        _E.c.workspace_id == workspace_id,
        _E.c.profile_id.in_(list(profile_ids)),
        _before(_E.c.timestamp, _E.c.seq, after),
    )
    if event_type is not None:
        stmt = stmt.where(_E.c.type == event_type)
    stmt = stmt.order_by(_E.c.timestamp.desc(), _E.c.seq.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return conn.execute(stmt).all()


def orders_of(
    conn: Connection,
    workspace_id: uuid.UUID,
    profile_ids: Sequence[uuid.UUID],
    *,
    limit: int | None,
    after: tuple[Any, Any] | None = None,
) -> Sequence[AnyRow]:
    stmt = (
        select(*ORDER_COLS)
        .where(
            _O.c.workspace_id == workspace_id,
            _O.c.profile_id.in_(list(profile_ids)),
            _before(_O.c.placed_at, _O.c.id, after),
        )
        .order_by(_O.c.placed_at.desc(), _O.c.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return conn.execute(stmt).all()


def order_items(conn: Connection, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[AnyRow]]:
    out: dict[uuid.UUID, list[AnyRow]] = {}
    for chunk in _chunks(list(order_ids), 500):
        stmt = (
            select(_OI.c.order_id, _OI.c.sku, _OI.c.name, _OI.c.quantity, _OI.c.price)
            .where(_OI.c.order_id.in_(chunk))
            .order_by(_OI.c.order_id, _OI.c.id)
        )
        for row in conn.execute(stmt):
            out.setdefault(row.order_id, []).append(row)
    return out


MERGE_COLS = (
    _M.c.id,
    _M.c.winner_id,
    _M.c.loser_id,
    _M.c.reason,
    _M.c.snapshot,
    _M.c.event_seq_at_merge,
    _M.c.created_at,
    _M.c.undone_at,
)


def merge_logs(
    conn: Connection,
    workspace_id: uuid.UUID,
    profile_ids: Sequence[uuid.UUID] | None,
    *,
    limit: int | None,
    after: tuple[Any, Any] | None = None,
) -> Sequence[AnyRow]:
    """Merges newest first; with profile_ids, only those where either side is one of them."""
    stmt = select(*MERGE_COLS).where(
        _M.c.workspace_id == workspace_id, _before(_M.c.created_at, _M.c.id, after)
    )
    if profile_ids is not None:
        ids = list(profile_ids)
        stmt = stmt.where(or_(_M.c.winner_id.in_(ids), _M.c.loser_id.in_(ids)))
    stmt = stmt.order_by(_M.c.created_at.desc(), _M.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return conn.execute(stmt).all()


def get_merge_log(conn: Connection, workspace_id: uuid.UUID, merge_id: uuid.UUID) -> AnyRow | None:
    stmt = select(*MERGE_COLS).where(_M.c.workspace_id == workspace_id, _M.c.id == merge_id)
    return conn.execute(stmt).first()


def latest_active_merge_of_loser(conn: Connection, loser_id: uuid.UUID) -> uuid.UUID | None:
    stmt = (
        select(_M.c.id)
        .where(_M.c.loser_id == loser_id, _M.c.undone_at.is_(None))
        .order_by(_M.c.created_at.desc(), _M.c.id.desc())
        .limit(1)
    )
    return conn.execute(stmt).scalar()


def update_merge_log(conn: Connection, merge_id: uuid.UUID, values: dict[str, Any]) -> None:
    conn.execute(update(_M).where(_M.c.id == merge_id).values(**values))


def min_pending_seq(conn: Connection, workspace_id: uuid.UUID) -> int | None:
    d = Dialect(conn)
    if not d.postgres:
        # Left to itself SQLite reads every event of the workspace through its own index;
        # "+" makes the workspace a filter, so the small pending index is read instead.
        value = conn.exec_driver_sql(
            "SELECT min(seq) FROM event WHERE status = 0 AND +workspace_id = ?",
            (d.uuid(workspace_id),),
        ).scalar()
    else:
        stmt = select(func.min(_E.c.seq)).where(
            _E.c.workspace_id == workspace_id, is_pending(_E.c.status)
        )
        value = conn.execute(stmt).scalar()
    return None if value is None else int(value)


def events_since(conn: Connection, profile_id: uuid.UUID, after_seq: int) -> Sequence[AnyRow]:
    stmt = select(_E.c.seq, _E.c.message_id, _E.c.type, _E.c.user_id, _E.c.anonymous_id).where(
        _E.c.profile_id == profile_id, _E.c.seq > after_seq
    )
    return conn.execute(stmt).all()


def rehome_events(conn: Connection, seqs: Sequence[int], profile_id: uuid.UUID) -> None:
    for chunk in _chunks(list(seqs), 500):
        conn.execute(update(_E).where(_E.c.seq.in_(chunk)).values(profile_id=profile_id))


def rehome_orders(
    conn: Connection,
    workspace_id: uuid.UUID,
    message_ids: Sequence[str],
    source: uuid.UUID,
    target: uuid.UUID,
) -> None:
    for chunk in _chunks(list(message_ids), 500):
        conn.execute(
            update(_O)
            .where(
                _O.c.workspace_id == workspace_id,
                _O.c.profile_id == source,
                _O.c.message_id.in_(chunk),
            )
            .values(profile_id=target)
        )


def clear_merged_into(conn: Connection, profile_id: uuid.UUID) -> None:
    conn.execute(update(_P).where(_P.c.id == profile_id).values(merged_into=None))


def cluster_aggregates(
    conn: Connection, profile_ids: Sequence[uuid.UUID], skip_type: str
) -> dict[str, Any]:
    """A cluster's counters recomputed from the store (events of `skip_type` do not count)."""
    ids = list(profile_ids)
    events = conn.execute(
        select(func.count(), func.min(_E.c.timestamp), func.max(_E.c.timestamp)).where(
            _E.c.profile_id.in_(ids), _E.c.type != skip_type
        )
    ).one()
    orders = conn.execute(
        select(
            func.count(), func.coalesce(func.sum(_O.c.total), 0), func.max(_O.c.placed_at)
        ).where(_O.c.profile_id.in_(ids))
    ).one()
    return {
        "events_count": int(events[0]),
        "first_seen_at": events[1],
        "last_seen_at": events[2],
        "orders_count": int(orders[0]),
        # SQLite sums NUMERIC as a float; the caller rounds to cents.
        "revenue": orders[1],
        "last_order_at": orders[2],
    }


def delete_identities(conn: Connection, profile_ids: Sequence[uuid.UUID]) -> None:
    conn.execute(_I.delete().where(_I.c.profile_id.in_(list(profile_ids))))


def event_page_by_seq(
    conn: Connection, profile_ids: Sequence[uuid.UUID], after_seq: int, limit: int
) -> Sequence[AnyRow]:
    stmt = (
        select(_E.c.seq, _E.c.type, _E.c.name, _E.c.payload)
        .where(_E.c.profile_id.in_(list(profile_ids)), _E.c.seq > after_seq)
        .order_by(_E.c.seq)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def scrub_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows of {"_seq", "_payload"}: drop the event's identifiers, replace its payload."""
    if rows:
        stmt = (
            update(_E)
            .where(_E.c.seq == bindparam("_seq"))
            .values(user_id=None, anonymous_id=None, payload=bindparam("_payload"))
        )
        conn.execute(stmt, rows)


def erase_profiles(conn: Connection, profile_ids: Sequence[uuid.UUID], when: Any) -> None:
    conn.execute(
        update(_P)
        .where(_P.c.id.in_(list(profile_ids)))
        .values(traits={}, email=None, phone=None, erased_at=when, updated_at=when)
    )


def duplicate_contacts(
    conn: Connection, workspace_id: uuid.UUID, column: str, limit: int
) -> list[str]:
    """Values of profile.<column> (email or phone) held by more than one live root profile."""
    col = _P.c[column]
    stmt = (
        select(col)
        .where(
            _P.c.workspace_id == workspace_id,
            _P.c.merged_into.is_(None),
            _P.c.erased_at.is_(None),
            col.is_not(None),
        )
        .group_by(col)
        .having(func.count() > 1)
        .order_by(col)
        .limit(limit)
    )
    return [row[0] for row in conn.execute(stmt)]


def roots_with_contact(
    conn: Connection, workspace_id: uuid.UUID, column: str, values: Sequence[str]
) -> Sequence[AnyRow]:
    col = _P.c[column]
    stmt = (
        select(*PROFILE_COLS)
        .where(
            _P.c.workspace_id == workspace_id,
            _P.c.merged_into.is_(None),
            _P.c.erased_at.is_(None),
            col.in_(list(values)),
        )
        .order_by(col, _P.c.created_at, _P.c.id)
    )
    return conn.execute(stmt).all()


def profiles_in_workspace(
    conn: Connection, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, AnyRow]:
    """Profiles by id, keyed by id; ids of another workspace are left out."""
    out: dict[uuid.UUID, AnyRow] = {}
    for chunk in _chunks(sorted(set(ids)), 500):
        stmt = select(*PROFILE_COLS).where(_P.c.workspace_id == workspace_id, _P.c.id.in_(chunk))
        for row in conn.execute(stmt):
            out[row.id] = row
    return out
