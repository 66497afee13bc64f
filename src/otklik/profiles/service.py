"""Profiles through the REST API: finding, reading, listing, and editing traits.

An id may name a profile that was merged away; every read then answers with the root it now
lives under (the person) and says so. A root's cluster is the root plus every profile merged
into it - merges keep that set flat - and timelines and orders read over the whole cluster,
because events keep the profile id they were first resolved to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from otklik.kit.errors import BadRequest, Conflict, NotFound, Unprocessable
from otklik.kit.ids import uuid7
from otklik.kit.pagination import decode_cursor, encode_cursor
from otklik.kit.time import iso, parse_iso
from otklik.profiles import repository as repo
from otklik.profiles.identity import (
    BASE_TYPES,
    EMAIL,
    EXTERNAL_PREFIX,
    PHONE,
    USER_ID,
    identifiers_of,
    is_known_type,
    normalise,
)
from otklik.profiles.repository import AnyRow
from otklik.profiles.resolver import BatchResolver, ResolverConfig, system_event
from otklik.profiles.state import CENT

TRAITS_EVENT = "profile.traits_updated"
MAX_MERGE_HOPS = 64


class ProfileNotFound(NotFound):
    code = "profile_not_found"


class UnknownIdentifierType(Unprocessable):
    code = "unknown_identifier_type"


class InvalidIdentifier(Unprocessable):
    code = "invalid_identifier"


class ProfileErased(Conflict):
    code = "profile_erased"


@dataclass(frozen=True)
class Scope:
    """Who asks (the workspace), on which connection, with the resolver's rules for it."""

    conn: Connection
    workspace_id: uuid.UUID
    config: ResolverConfig


@dataclass(frozen=True)
class Located:
    requested: AnyRow
    root: AnyRow
    members: list[uuid.UUID]  # the root first, then the profiles merged into it


@dataclass(frozen=True)
class PageOf:
    items: list[dict[str, Any]]
    next_cursor: str | None


def locate(scope: Scope, profile_id: uuid.UUID) -> Located:
    """The profile, its root and the root's cluster; another workspace's ids are not found."""
    requested = repo.get_profile(scope.conn, scope.workspace_id, profile_id)
    if requested is None:
        raise ProfileNotFound("No profile with that id in this workspace")
    root = requested
    for _ in range(MAX_MERGE_HOPS):
        if root.merged_into is None:
            break
        parent = repo.get_profile(scope.conn, scope.workspace_id, root.merged_into)
        if parent is None:  # a dangling pointer would be a bug; answer with what exists
            break
        root = parent
    members = repo.cluster_ids(scope.conn, root.id)
    return Located(requested, root, [root.id, *sorted(m for m in members if m != root.id)])


def profile_view(scope: Scope, found: Located) -> dict[str, Any]:
    root = found.root
    identities = repo.identity_rows(scope.conn, found.members)
    return {
        "id": root.id,
        "requested_id": found.requested.id,
        "merged_into": root.id if found.requested.id != root.id else None,
        "merged_ids": found.members[1:],
        "traits": root.traits or {},
        "email": root.email,
        "phone": root.phone,
        "identities": [
            {"type": i.type, "value": i.value, "created_at": i.created_at} for i in identities
        ],
        "aggregates": aggregates(root),
        "erased": root.erased_at is not None,
        "erased_at": root.erased_at,
        "created_at": root.created_at,
        "updated_at": root.updated_at,
    }


def aggregates(row: Any) -> dict[str, Any]:
    return {
        "first_seen_at": row.first_seen_at,
        "last_seen_at": row.last_seen_at,
        "events_count": row.events_count,
        "orders_count": row.orders_count,
        "revenue": Decimal(row.revenue or 0).quantize(CENT),
        "last_order_at": row.last_order_at,
    }


def get_profile(scope: Scope, profile_id: uuid.UUID) -> dict[str, Any]:
    return profile_view(scope, locate(scope, profile_id))


def identifier_type(kind: str) -> str:
    # The resolver lower-cases external kinds; base types are lower-case already.
    kind = kind.strip().lower()
    if not is_known_type(kind):
        raise UnknownIdentifierType(
            f"Unknown identifier type {kind!r}",
            details={"known": [*BASE_TYPES, f"{EXTERNAL_PREFIX}<kind>"]},
        )
    return kind


def lookup(scope: Scope, kind: str, value: str) -> dict[str, Any]:
    """The profile holding one identifier, normalised exactly as the resolver stores it."""
    kind = identifier_type(kind)
    norm = normalise(kind, value, scope.config.region)
    if norm is None:
        raise InvalidIdentifier(f"{value!r} is not a usable {kind}")
    owner = repo.identities_for(scope.conn, scope.workspace_id, [(kind, norm)]).get((kind, norm))
    if owner is None:
        raise ProfileNotFound(f"No profile has that {kind}")
    return profile_view(scope, locate(scope, owner))


def list_profiles(scope: Scope, *, q: str | None, cursor: str | None, limit: int) -> PageOf:
    """Root profiles newest first; `q` matches an email, phone or user id exactly."""
    after = cursor_after(cursor, uuid.UUID)
    match = _search(scope, q) if q is not None and q.strip() else None
    rows = repo.list_roots(
        scope.conn, scope.workspace_id, limit=limit + 1, after=after, match=match
    )
    return page_of(
        rows,
        limit,
        lambda r: [iso(r.created_at), str(r.id)],
        lambda r: {
            "id": r.id,
            "traits": r.traits or {},
            "email": r.email,
            "phone": r.phone,
            "created_at": r.created_at,
            "aggregates": aggregates(r),
        },
    )


def _search(scope: Scope, q: str) -> tuple[list[uuid.UUID], str | None, str | None]:
    region = scope.config.region
    email, phone = normalise(EMAIL, q, region), normalise(PHONE, q, region)
    pairs = [(USER_ID, q.strip())]
    pairs += [(kind, v) for kind, v in ((EMAIL, email), (PHONE, phone)) if v is not None]
    owners = repo.identities_for(scope.conn, scope.workspace_id, pairs)
    # The contact columns catch profiles whose email another profile's identity already owns.
    return sorted(set(owners.values())), email, phone


def timeline(
    scope: Scope,
    profile_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
    event_type: str | None,
) -> PageOf:
    found = locate(scope, profile_id)
    rows = repo.timeline(
        scope.conn,
        scope.workspace_id,
        found.members,
        limit=limit + 1,
        after=cursor_after(cursor, int),
        event_type=event_type,
    )
    return page_of(rows, limit, lambda r: [iso(r.timestamp), r.seq], event_view)


def event_view(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "type": row.type,
        "name": row.name,
        "timestamp": row.timestamp,
        "received_at": row.received_at,
        "message_id": row.message_id,
        "profile_id": row.profile_id,
        "payload": row.payload,
    }


def orders(scope: Scope, profile_id: uuid.UUID, *, cursor: str | None, limit: int) -> PageOf:
    found = locate(scope, profile_id)
    rows = repo.orders_of(
        scope.conn,
        scope.workspace_id,
        found.members,
        limit=limit + 1,
        after=cursor_after(cursor, uuid.UUID),
    )
    page = page_of(rows, limit, lambda r: [iso(r.placed_at), str(r.id)], lambda r: dict(r._mapping))
    return PageOf(with_items(scope.conn, page.items), page.next_cursor)


def with_items(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    items = repo.order_items(conn, [row["id"] for row in rows])
    return [
        {
            **row,
            "items": [
                {"sku": i.sku, "name": i.name, "quantity": i.quantity, "price": i.price}
                for i in items.get(row["id"], [])
            ],
        }
        for row in rows
    ]


def patch_traits(
    scope: Scope,
    profile_id: uuid.UUID,
    *,
    set_: dict[str, Any],
    set_once: dict[str, Any],
    unset: list[str],
    now: datetime,
) -> dict[str, Any]:
    """Edit traits with the identify rules (one code path: BatchResolver.apply_traits).

    New contact values become identifiers of the profile when nobody holds them yet; one
    another profile holds is left there - joining two people is what an explicit merge is for.
    A system event records the edit, so the timeline shows what changed and when.
    """
    repo.resolver_lock(scope.conn)
    found = locate(scope, profile_id)
    root_id = found.root.id
    if found.root.erased_at is not None:
        raise ProfileErased("This profile was erased; it takes no new traits")
    resolver = BatchResolver(scope.conn, scope.workspace_id, scope.config, now)
    resolver.load_states([root_id])
    state = resolver.states[root_id]
    before = dict(state.traits)
    resolver.apply_traits(state, {**set_, "$set_once": set_once, "$unset": unset})
    changed = {k: v for k, v in state.traits.items() if k not in before or before[k] != v}
    idents = identifiers_of({"traits": changed}, scope.config.region, scope.config.junk)
    resolver.preload(idents)
    for ident in idents:
        if (ident.type, ident.value) not in resolver.owner:
            resolver.attach(ident, root_id)
    resolver.pending.system_events.append(
        system_event(
            scope.workspace_id,
            TRAITS_EVENT,
            root_id,
            now,
            f"traits:{uuid7()}",
            {
                "source": "api",
                "set": set_,
                "set_once": set_once,
                "unset": unset,
                "changed": sorted(set(changed) | (set(before) - set(state.traits))),
            },
        )
    )
    resolver.flush()
    return profile_view(scope, locate(scope, root_id))


def cursor_after(cursor: str | None, key_type: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        return parse_iso(str(values[0])), key_type(values[1])
    except (TypeError, ValueError) as exc:
        raise BadRequest("The cursor is not one this API issued", code="invalid_cursor") from exc


def page_of(
    rows: Sequence[Any],
    limit: int,
    key: Callable[[Any], list[Any]],
    view: Callable[[Any], dict[str, Any]],
) -> PageOf:
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(key(rows[-1])) if more and rows else None
    return PageOf([view(row) for row in rows], next_cursor)
