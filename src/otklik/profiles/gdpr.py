"""The data subject's rights: everything held about a person (export), and erasure.

Erasure covers the whole cluster (the person, not one of their merged-away profiles) and
removes personal data everywhere it is stored, while keeping what is anonymous and needed
for the shop's own figures: event types and times, order amounts, the profile's counters.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from otklik.kit.ids import uuid7
from otklik.profiles import repository as repo
from otklik.profiles.merge import merge_view
from otklik.profiles.orders import ORDER_EVENTS
from otklik.profiles.resolver import system_event
from otklik.profiles.service import (
    Scope,
    event_view,
    locate,
    profile_view,
    with_items,
)
from otklik.segments.changes import ANYTHING, profiles_changed

ERASED_EVENT = "profile.erased"
SCRUB_BATCH = 1000
# What an order event keeps: the amounts, which the shop's revenue reports need.
ORDER_KEYS = ("order_id", "orderId", "total", "revenue", "currency")
# Merge snapshots hold both sides' traits and contacts; only ids and counters stay.
SNAPSHOT_PII = ("winner_traits", "loser_traits", "winner_contacts")


def export(scope: Scope, profile_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """One document with everything stored about the person the id belongs to."""
    found = locate(scope, profile_id)
    conn, ws = scope.conn, scope.workspace_id
    members = repo.cluster_rows(conn, found.root.id)
    events = repo.timeline(conn, ws, found.members, limit=None)
    orders = repo.orders_of(conn, ws, found.members, limit=None)
    merges = repo.merge_logs(conn, ws, found.members, limit=None)
    return {
        "exported_at": now,
        "profile": profile_view(scope, found),
        "profiles": [
            {
                "id": m.id,
                "merged_into": m.merged_into,
                "created_at": m.created_at,
                "erased_at": m.erased_at,
            }
            for m in members
        ],
        "events": [event_view(e) for e in reversed(events)],  # oldest first, as they happened
        "orders": with_items(conn, [dict(o._mapping) for o in orders]),
        "merges": [merge_view(m) for m in merges],
    }


def erase(scope: Scope, profile_id: uuid.UUID, now: datetime) -> None:
    """Remove the person's personal data from every row that holds it; idempotent.

    Identities go, so the old email or user id finds nobody and a new event with it makes a
    new profile. Events stay (the log is append-only and counts must still add up) but lose
    their identifiers and all properties except an order's amounts. Orders keep amounts and
    items (products, not people). Rejected input is not linked to anyone and is left alone.
    """
    conn = scope.conn
    repo.resolver_lock(conn)
    found = locate(scope, profile_id)
    members = found.members
    repo.delete_identities(conn, members)
    after = 0
    while rows := repo.event_page_by_seq(conn, members, after, SCRUB_BATCH):
        repo.scrub_events(
            conn,
            [
                {"_seq": r.seq, "_payload": stripped_payload(r.type, r.name, r.payload)}
                for r in rows
            ],
        )
        after = rows[-1].seq
    repo.erase_profiles(conn, members, now)
    profiles_changed(conn, scope.workspace_id, {pid: (ANYTHING,) for pid in members})
    for log in repo.merge_logs(conn, scope.workspace_id, members, limit=None):
        snapshot = {k: v for k, v in (log.snapshot or {}).items() if k not in SNAPSHOT_PII}
        repo.update_merge_log(conn, log.id, {"snapshot": {**snapshot, "erased": True}})
    if found.root.erased_at is None:
        # The record that erasure happened carries nothing about the person.
        repo.insert_events(
            conn,
            [
                system_event(
                    scope.workspace_id,
                    ERASED_EVENT,
                    found.root.id,
                    now,
                    f"erase:{uuid7()}",
                    {"profiles": len(members)},
                )
            ],
        )


def stripped_payload(kind: str, name: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "timestamp": payload.get("timestamp"),
        "messageId": payload.get("messageId"),
    }
    if kind in ("track", "system"):
        out["event"] = name
    elif name is not None:
        out["name"] = name
    if kind == "track" and name in ORDER_EVENTS:
        props = payload.get("properties")
        if isinstance(props, dict):
            out["properties"] = {k: props[k] for k in ORDER_KEYS if k in props}
    return out
