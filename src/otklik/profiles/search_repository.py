"""SQL for the console's customer list, search and card extras (an event by its seq).

The list walks live root profiles newest first along ix_profile_ws_created and stops after one
page, so a search that matches often answers after a few hundred rows; every search condition
is either a column of the row being walked or an uncorrelated `IN (subquery)` over the
(workspace_id, type, value) identity index, which each store evaluates once per query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    Uuid,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
)

from otklik.profiles.identity import ANONYMOUS_ID, EMAIL, PHONE
from otklik.profiles.repository import EVENT_COLS, PROFILE_COLS, AnyRow
from otklik.profiles.repository import E as _E
from otklik.profiles.repository import I as _I
from otklik.profiles.repository import P as _P

if TYPE_CHECKING:
    from otklik.profiles.search import Filters, Search

NAME_TRAITS = ("name", "first_name", "last_name", "firstName", "lastName")

# A loose index scan: the distinct identifier types of a workspace in one index seek per type,
# so an exact value is then looked up per type along the unique (workspace, type, value) index.
_TYPES_SQL = text(
    """
    WITH RECURSIVE t(type) AS (
        SELECT min(type) FROM identity WHERE workspace_id = :ws
        UNION ALL
        SELECT (SELECT min(i.type) FROM identity i WHERE i.workspace_id = :ws AND i.type > t.type)
        FROM t WHERE t.type IS NOT NULL
    )
    SELECT type FROM t WHERE type IS NOT NULL
    """
).bindparams(bindparam("ws", type_=Uuid()))


def identity_types(conn: Connection, workspace_id: uuid.UUID) -> list[str]:
    return [row[0] for row in conn.execute(_TYPES_SQL, {"ws": workspace_id})]


def _owners(workspace_id: uuid.UUID, *conds: ColumnElement[bool]) -> Any:
    return select(_I.c.profile_id).where(_I.c.workspace_id == workspace_id, *conds)


def _name_text() -> ColumnElement[str]:
    """The name traits joined into one string ("name|first last|firstName lastName")."""
    parts = {key: _P.c.traits[key].as_string() for key in NAME_TRAITS}

    def part(key: str) -> ColumnElement[str]:
        return _coalesce(parts[key])

    return (
        part("name")
        + literal("|")
        + part("first_name")
        + literal(" ")
        + part("last_name")
        + literal("|")
        + part("firstName")
        + literal(" ")
        + part("lastName")
    )


def _coalesce(expr: ColumnElement[str]) -> ColumnElement[str]:
    return func.coalesce(expr, literal(""))


def _name_match(conn: Connection, search: Search) -> ColumnElement[bool]:
    from otklik.profiles.search import glob_pattern, raw_prefilters, regex_pattern

    if conn.dialect.name == "postgresql":
        return _name_text().op("~")(regex_pattern(search.name_classes))
    precise = _name_text().op("GLOB")(glob_pattern(search.name_classes))
    # Extracting five JSON keys from every row costs ~2 us a row on SQLite 3.40, and a GLOB
    # of letter classes as much: a LIKE over the raw JSON text first (C speed, ~0.3 us a row)
    # leaves both for the few rows that can match (see search.raw_prefilters).
    raw = type_coerce(_P.c.traits, Text)  # the stored JSON text itself, no CAST
    checks = [
        or_(*(raw.like(pattern, escape="\\") for pattern in variants))
        for variants in raw_prefilters(search.text)
    ]
    return and_(*checks, precise)


def _search_conds(
    conn: Connection, workspace_id: uuid.UUID, search: Search
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if search.profile_id is not None:
        conds.append(_P.c.id == search.profile_id)
    types = identity_types(conn, workspace_id)
    if types and search.exact_values:
        conds.append(
            _P.c.id.in_(
                _owners(
                    workspace_id, _I.c.type.in_(types), _I.c.value.in_(list(search.exact_values))
                )
            )
        )
    if search.email_fragment:
        like = search.email_fragment
        conds.append(_P.c.email.like(like, escape="\\"))
        conds.append(
            _P.c.id.in_(_owners(workspace_id, _I.c.type == EMAIL, _I.c.value.like(like, "\\")))
        )
    if search.phone_patterns:
        phones = search.phone_patterns
        conds.append(or_(*(_P.c.phone.like(p, escape="\\") for p in phones)))
        values = or_(*(_I.c.value.like(p, escape="\\") for p in phones))
        conds.append(_P.c.id.in_(_owners(workspace_id, _I.c.type == PHONE, values)))
    if search.name_classes:
        conds.append(_name_match(conn, search))
    return conds


def _has_identity(*conds: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(select(_I.c.id).where(_I.c.profile_id == _P.c.id, *conds))


def _filter_conds(filters: Filters, seen_since: datetime | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if filters.identified:
        conds.append(_has_identity(_I.c.type != ANONYMOUS_ID))
    if filters.has_email:
        conds.append(or_(_P.c.email.is_not(None), _has_identity(_I.c.type == EMAIL)))
    if filters.has_phone:
        conds.append(or_(_P.c.phone.is_not(None), _has_identity(_I.c.type == PHONE)))
    if filters.has_orders:
        conds.append(_P.c.orders_count > 0)
    if seen_since is not None:
        conds.append(_P.c.last_seen_at >= seen_since)
    return conds


def find_customers(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    search: Search | None,
    filters: Filters,
    seen_since: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[AnyRow]:
    """Live root profiles newest first, after the keyset `after`, narrowed as asked."""
    conds: list[ColumnElement[bool]] = [
        _P.c.workspace_id == workspace_id,
        _P.c.merged_into.is_(None),
        _P.c.erased_at.is_(None),
        *_filter_conds(filters, seen_since),
    ]
    if after is not None:
        ts, key = after
        # "<=" first: a plain range the index can seek to, then the tie-break on the id.
        conds.append(_P.c.created_at <= ts)
        conds.append(or_(_P.c.created_at < ts, _P.c.id < key))
    if search is not None:
        matches = _search_conds(conn, workspace_id, search)
        conds.append(or_(*matches) if matches else false())
    stmt = (
        select(*PROFILE_COLS)
        .where(*conds)
        .order_by(_P.c.created_at.desc(), _P.c.id.desc())
        .limit(limit)
    )
    return conn.execute(stmt).all()


def event_in_cluster(
    conn: Connection, workspace_id: uuid.UUID, profile_ids: Sequence[uuid.UUID], seq: int
) -> AnyRow | None:
    """One event of a customer (any profile of their cluster), or None."""
    stmt = select(*EVENT_COLS, _E.c.status).where(
        _E.c.seq == seq,
        _E.c.workspace_id == workspace_id,
        _E.c.profile_id.in_(list(profile_ids)),
    )
    return conn.execute(stmt).first()
