"""SQL for the customer models: orders as (person, day, amount) rows, fits, scores, the RFM grid.

The order reads and the score writes are the hot paths (a refit reads every order of a
workspace and rewrites a score row per customer), so they go to the driver with ready values;
see `otklik.kit.rawsql` for what each store expects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, case, delete, func, insert, select

from otklik.kit.rawsql import Dialect, executemany
from otklik.models import InsightFit, Order, Profile, ProfileScore, Workspace

AnyRow = Row[*tuple[Any, ...]]
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
) -> tuple[list[Any], list[float], list[float]]:
    """Every counted order of the workspace as three parallel lists (person, day, amount).

    Person ids come back as the store holds them (hex text on SQLite, UUID on PostgreSQL);
    `read_uuid` turns them into UUIDs, which callers do once per person, not per order.
    """
    d = Dialect(conn)
    sql = _orders_sql(d, conn.dialect.name, skip_statuses)
    rows = conn.exec_driver_sql(sql, (d.uuid(workspace_id), *skip_statuses)).all()
    if not rows:
        return [], [], []
    people, days, amounts = zip(*rows, strict=True)
    return list(people), list(days), list(amounts)


def read_uuid(conn: Connection, value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def cluster_orders(
    conn: Connection,
    workspace_id: uuid.UUID,
    roots: Sequence[uuid.UUID],
    skip_statuses: Sequence[str],
) -> tuple[list[Any], list[float], list[float]]:
    """`order_rows` for the given people only (each a root with the profiles merged into it)."""
    d = Dialect(conn)
    people: list[Any] = []
    days: list[float] = []
    amounts: list[float] = []
    for chunk in _chunks(list(roots), _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        # Two indexed lookups (the root itself, the profiles merged into it), then orders by
        # profile: the planner never has to scan the workspace's orders.
        extra = (
            f" AND o.profile_id IN (SELECT id FROM profile WHERE id IN ({marks})"
            f" UNION ALL SELECT id FROM profile WHERE merged_into IN ({marks}))"
        )
        sql = _orders_sql(d, conn.dialect.name, skip_statuses, extra)
        ids = [d.uuid(pid) for pid in chunk]
        for person, day, amount in conn.exec_driver_sql(
            sql, (d.uuid(workspace_id), *skip_statuses, *ids, *ids)
        ):
            people.append(person)
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


def score_flags(conn: Connection, workspace_id: uuid.UUID) -> dict[uuid.UUID, tuple[Any, bool]]:
    """Every scored profile's (RFM class, leaving): what segments condition on most."""
    d = Dialect(conn)
    read = d.read_uuid()
    rows = conn.exec_driver_sql(
        d.sql("SELECT profile_id, rfm_class, leaving FROM profile_score WHERE workspace_id = ?"),
        (d.uuid(workspace_id),),
    )
    return {cast(uuid.UUID, read(pid)): (cls, bool(leaving)) for pid, cls, leaving in rows}


def _driver_row(d: Dialect, row: tuple[Any, ...]) -> tuple[Any, ...]:
    pid, ws, *middle, leaving, scored_at = row
    if d.postgres:
        return row
    return (pid.hex, ws.hex, *middle, int(leaving), d.time(scored_at))


def replace_scores(
    conn: Connection, workspace_id: uuid.UUID, rows: Iterable[tuple[Any, ...]]
) -> int:
    """Delete the workspace's score rows and write `rows` (in SCORE_COLUMNS order) instead.

    One transaction (the caller's), so readers see the old scores or the new ones, never a mix.
    PostgreSQL takes the rows through COPY, SQLite through chunked executemany.
    """
    d = Dialect(conn)
    conn.execute(delete(S).where(S.c.workspace_id == workspace_id))
    columns = ", ".join(SCORE_COLUMNS)
    written = 0
    if d.postgres:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY profile_score ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
        return written
    sql = f"INSERT INTO profile_score ({columns}) VALUES ({', '.join('?' for _ in SCORE_COLUMNS)})"
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(_driver_row(d, row))
        if len(chunk) == _CHUNK:
            written += executemany(conn, sql, chunk)
            chunk = []
    written += executemany(conn, sql, chunk)
    return written


def upsert_scores(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert or overwrite score rows (in SCORE_COLUMNS order); the same SQL on both stores."""
    if not rows:
        return
    d = Dialect(conn)
    columns = ", ".join(SCORE_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in SCORE_COLUMNS[1:])
    sql = d.sql(
        f"INSERT INTO profile_score ({columns}) VALUES ({', '.join('?' for _ in SCORE_COLUMNS)})"
        f" ON CONFLICT (profile_id) DO UPDATE SET {updates}"
    )
    executemany(conn, sql, [_driver_row(d, row) for row in rows])


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
