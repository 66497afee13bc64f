"""SQL for the customer models: orders as (person, day, amount) rows, fits, scores, the RFM grid.

The order reads and the score writes are the hot paths (a refit reads every order of a
workspace and rewrites a score row per customer), so they go to the driver with ready values;
see `otklik.kit.rawsql` for what each store expects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, case, delete, func, insert, select

from otklik.kit.rawsql import Dialect, executemany
from otklik.models import InsightFit, Order, Profile, ProfileScore, Workspace

AnyRow = Row[*tuple[Any, ...]]
# A profile id as the store hands it back (hex text on SQLite, a UUID on PostgreSQL): the bulk
# paths keep ids in this form end to end; `to_uuids` converts the few that leave this module.
Key = Any
F = cast(Table, InsightFit.__table__)
S = cast(Table, ProfileScore.__table__)
P = cast(Table, Profile.__table__)
W = cast(Table, Workspace.__table__)
O = cast(Table, Order.__table__)  # noqa: E741 - the table's conventional short name

SCORE_COLUMNS = (
    "profile_id",
    "workspace_id",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "rfm_class",
    "p_alive",
    "expected_purchases",
    "clv",
    "usual_gap_days",
    "leaving",
    "scored_at",
)
_CHUNK = 5000
_REFIT_LOCK = 7_310_601
_IN_CHUNK = 500

# One row per order: the person it belongs to now (a merged profile's orders count for the
# profile it was merged into), the time in days since 1970-01-01 UTC and the amount.
_ORDERS = """
SELECT COALESCE(p.merged_into, p.id), {day}, {amount}
FROM "order" o
JOIN profile p ON p.id = o.profile_id
JOIN profile r ON r.id = COALESCE(p.merged_into, p.id)
WHERE o.workspace_id = ? AND r.erased_at IS NULL AND o.total >= 0
  AND o.status NOT IN ({statuses}){extra}
"""
_DAY = {
    "sqlite": "julianday(o.placed_at) - 2440587.5",
    "postgresql": "EXTRACT(EPOCH FROM o.placed_at)::float8 / 86400.0",
}
_AMOUNT = {"sqlite": "CAST(o.total AS REAL)", "postgresql": "o.total::float8"}


def _orders_sql(d: Dialect, name: str, statuses: Sequence[str], extra: str = "") -> str:
    marks = ", ".join("?" for _ in statuses) or "''"
    return d.sql(_ORDERS.format(day=_DAY[name], amount=_AMOUNT[name], statuses=marks, extra=extra))


def order_rows(
    conn: Connection, workspace_id: uuid.UUID, skip_statuses: Sequence[str]
) -> tuple[list[Key], list[float], list[float]]:
    """Every counted order of the workspace as three parallel lists (person, day, amount).

    Persons come back as store keys (see `Key`): a million of them are never turned into
    UUIDs only to be written back as the same text.
    """
    d = Dialect(conn)
    sql = _orders_sql(d, conn.dialect.name, skip_statuses)
    rows = conn.exec_driver_sql(sql, (d.uuid(workspace_id), *skip_statuses)).all()
    if not rows:
        return [], [], []
    people, days, amounts = zip(*rows, strict=True)
    return list(people), list(days), list(amounts)


def to_uuids(conn: Connection, keys: Iterable[Key]) -> list[uuid.UUID]:
    if conn.dialect.name == "postgresql":
        return list(keys)
    return [uuid.UUID(hex=key) for key in keys]


def to_keys(conn: Connection, ids: Iterable[uuid.UUID]) -> list[Key]:
    d = Dialect(conn)
    return [d.uuid(pid) for pid in ids]


def cluster_orders(
    conn: Connection,
    workspace_id: uuid.UUID,
    roots: Sequence[uuid.UUID],
    skip_statuses: Sequence[str],
) -> tuple[list[Key], list[float], list[float]]:
    """`order_rows` for the given people only (live roots of `workspace_id`, as `roots_of`
    found them, with the profiles merged into them).

    Members first, by two indexed lookups, then their orders by the profile index: a filter
    on the workspace would tempt SQLite's planner into scanning all the workspace's orders.
    """
    d = Dialect(conn)
    name = conn.dialect.name
    root_of: dict[Key, Key] = {}
    for chunk in _chunks(to_keys(conn, roots), _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        # Only by id: a workspace filter here, too, draws SQLite to the workspace's index.
        # The roots were found in the workspace, and merges never cross workspaces.
        sql = d.sql(
            f"SELECT id, id FROM profile WHERE id IN ({marks})"
            f" UNION ALL SELECT id, merged_into FROM profile WHERE merged_into IN ({marks})"
        )
        root_of.update(conn.exec_driver_sql(sql, (*chunk, *chunk)).all())
    people: list[Key] = []
    days: list[float] = []
    amounts: list[float] = []
    statuses = ", ".join("?" for _ in skip_statuses) or "''"
    for chunk in _chunks(list(root_of), _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        sql = d.sql(
            f'SELECT o.profile_id, {_DAY[name]}, {_AMOUNT[name]} FROM "order" o'
            f" WHERE o.profile_id IN ({marks}) AND o.total >= 0 AND o.status NOT IN ({statuses})"
        )
        for member, day, amount in conn.exec_driver_sql(sql, (*chunk, *skip_statuses)):
            people.append(root_of[member])
            days.append(day)
            amounts.append(amount)
    return people, days, amounts


def roots_of(
    conn: Connection, workspace_id: uuid.UUID, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, bool]]:
    """Each known profile id -> (the root it lives under, whether that root is erased)."""
    out: dict[uuid.UUID, tuple[uuid.UUID, bool]] = {}
    root = func.coalesce(P.c.merged_into, P.c.id)
    R = P.alias("r")
    for chunk in _chunks(list(profile_ids), _IN_CHUNK):
        rows = conn.execute(
            select(P.c.id, root, R.c.erased_at)
            .join(R, R.c.id == root)
            .where(P.c.workspace_id == workspace_id, P.c.id.in_(chunk))
        )
        for pid, root_id, erased_at in rows:
            out[pid] = (root_id, erased_at is not None)
    return out


def profiles_with_orders_since(
    conn: Connection, workspace_id: uuid.UUID, since: datetime
) -> list[uuid.UUID]:
    """Profiles that got an order stored at or after `since` (as the order rows name them)."""
    rows = conn.execute(
        select(O.c.profile_id)
        .where(O.c.workspace_id == workspace_id, O.c.created_at >= since)
        .distinct()
    )
    return [row[0] for row in rows]


def workspace_timezone(conn: Connection, workspace_id: uuid.UUID) -> str | None:
    return conn.execute(select(W.c.timezone).where(W.c.id == workspace_id)).scalar()


def lock_refits(conn: Connection, workspace_id: uuid.UUID) -> None:
    """One refit at a time per workspace until the transaction ends. On PostgreSQL two at once
    would both delete the old rows and then collide inserting the new; SQLite writers already
    queue one behind the other."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_REFIT_LOCK, str(workspace_id))
        )


# --- fits ------------------------------------------------------------------------------------


def insert_fit(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(F).values(**values))


def latest_fit(conn: Connection, workspace_id: uuid.UUID) -> AnyRow | None:
    return conn.execute(
        select(F)
        .where(F.c.workspace_id == workspace_id)
        .order_by(F.c.fitted_at.desc(), F.c.id.desc())
        .limit(1)
    ).first()


def latest_fit_time(conn: Connection, workspace_id: uuid.UUID) -> datetime | None:
    return conn.execute(
        select(func.max(F.c.fitted_at)).where(F.c.workspace_id == workspace_id)
    ).scalar()


def fits(conn: Connection, workspace_id: uuid.UUID, limit: int) -> Sequence[AnyRow]:
    return conn.execute(
        select(F)
        .where(F.c.workspace_id == workspace_id)
        .order_by(F.c.fitted_at.desc(), F.c.id.desc())
        .limit(limit)
    ).all()


# --- scores ----------------------------------------------------------------------------------


def score_flags(conn: Connection, workspace_id: uuid.UUID) -> dict[Key, tuple[str, bool]]:
    """Every scored profile's (RFM class, leaving): what segments condition on most."""
    d = Dialect(conn)
    rows = conn.exec_driver_sql(
        d.sql("SELECT profile_id, rfm_class, leaving FROM profile_score WHERE workspace_id = ?"),
        (d.uuid(workspace_id),),
    )
    return {pid: (cls, bool(leaving)) for pid, cls, leaving in rows}


def _driver_rows(
    d: Dialect,
    workspace_id: uuid.UUID,
    keys: Sequence[Key],
    values: Sequence[Sequence[Any]],
    scored_at: datetime,
) -> Iterator[tuple[Any, ...]]:
    """Rows in SCORE_COLUMNS order; `values` holds the columns between workspace_id and
    scored_at, one list per column, `leaving` (a bool) last."""
    ws, at = d.uuid(workspace_id), d.time(scored_at)
    *middle, leaving = values
    flags = leaving if d.postgres else [int(v) for v in leaving]
    for key, *row in zip(keys, *middle, flags, strict=True):
        yield (key, ws, *row, at)


def replace_scores(
    conn: Connection,
    workspace_id: uuid.UUID,
    keys: Sequence[Key],
    values: Sequence[Sequence[Any]],
    scored_at: datetime,
) -> int:
    """Delete the workspace's score rows and write these instead (see `_driver_rows`).

    One transaction (the caller's), so readers see the old scores or the new ones, never a mix.
    PostgreSQL takes the rows through COPY, SQLite through chunked executemany.
    """
    d = Dialect(conn)
    conn.execute(delete(S).where(S.c.workspace_id == workspace_id))
    rows = _driver_rows(d, workspace_id, keys, values, scored_at)
    columns = ", ".join(SCORE_COLUMNS)
    if d.postgres:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY profile_score ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(keys)
    sql = f"INSERT INTO profile_score ({columns}) VALUES ({', '.join('?' for _ in SCORE_COLUMNS)})"
    while chunk := list(islice(rows, _CHUNK)):
        executemany(conn, sql, chunk)
    return len(keys)


def upsert_scores(
    conn: Connection,
    workspace_id: uuid.UUID,
    keys: Sequence[Key],
    values: Sequence[Sequence[Any]],
    scored_at: datetime,
) -> None:
    """Insert or overwrite these people's score rows; the same SQL on both stores."""
    if not keys:
        return
    d = Dialect(conn)
    columns = ", ".join(SCORE_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in SCORE_COLUMNS[1:])
    sql = d.sql(
        f"INSERT INTO profile_score ({columns}) VALUES ({', '.join('?' for _ in SCORE_COLUMNS)})"
        f" ON CONFLICT (profile_id) DO UPDATE SET {updates}"
    )
    executemany(conn, sql, list(_driver_rows(d, workspace_id, keys, values, scored_at)))


def delete_scores(
    conn: Connection, workspace_id: uuid.UUID, profile_ids: Iterable[uuid.UUID]
) -> None:
    for chunk in _chunks(list(profile_ids), _IN_CHUNK):
        conn.execute(delete(S).where(S.c.workspace_id == workspace_id, S.c.profile_id.in_(chunk)))


def score_row(conn: Connection, workspace_id: uuid.UUID, profile_id: uuid.UUID) -> AnyRow | None:
    return conn.execute(
        select(S).where(S.c.workspace_id == workspace_id, S.c.profile_id == profile_id)
    ).first()


def grid_cells(conn: Connection, workspace_id: uuid.UUID) -> Sequence[AnyRow]:
    """(r, f, customers, revenue) per occupied cell."""
    return conn.execute(
        select(S.c.r, S.c.f, func.count(), func.coalesce(func.sum(S.c.monetary), 0.0))
        .where(S.c.workspace_id == workspace_id, S.c.r.is_not(None), S.c.f.is_not(None))
        .group_by(S.c.r, S.c.f)
    ).all()


def class_totals(conn: Connection, workspace_id: uuid.UUID) -> Sequence[AnyRow]:
    """(rfm_class, customers, revenue, leaving customers) per class."""
    return conn.execute(
        select(
            S.c.rfm_class,
            func.count(),
            func.coalesce(func.sum(S.c.monetary), 0.0),
            func.coalesce(func.sum(case((S.c.leaving, 1), else_=0)), 0),
        )
        .where(S.c.workspace_id == workspace_id, S.c.rfm_class.is_not(None))
        .group_by(S.c.rfm_class)
    ).all()


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
