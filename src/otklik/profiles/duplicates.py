"""Finding profiles that are probably one person but were kept apart, for a human to review.

They arise when the never-merge rule refused to join two user ids that share an email or a
phone (two accounts of one person, or a family sharing a phone), and from imports. Merging
them is a decision the API leaves to whoever reviews the list (POST /profiles/merge).
"""

from __future__ import annotations

import uuid
from typing import Any

from otklik.profiles import repository as repo
from otklik.profiles.identity import USER_ID
from otklik.profiles.merge import ProfileAlreadyMerged, SameProfile
from otklik.profiles.service import (
    ProfileErased,
    ProfileNotFound,
    Scope,
    event_view,
    locate,
    profile_view,
)

CONTACTS = ("email", "phone")
SUMMARY_FIRST = ("name", "first_name", "firstName", "last_name", "lastName", "email", "phone")
SUMMARY_SIZE = 8


def find_duplicates(scope: Scope, limit: int) -> list[dict[str, Any]]:
    """Groups of live root profiles sharing a normalised email or phone, at most `limit`."""
    groups: list[dict[str, Any]] = []
    for column in CONTACTS:
        values = repo.duplicate_contacts(scope.conn, scope.workspace_id, column, limit)
        if not values:
            continue
        rows = repo.roots_with_contact(scope.conn, scope.workspace_id, column, values)
        user_ids: dict[Any, list[str]] = {}
        for ident in repo.identities_of_profiles(scope.conn, [r.id for r in rows], [USER_ID]):
            user_ids.setdefault(ident.profile_id, []).append(ident.value)
        by_value: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_value.setdefault(getattr(row, column), []).append(
                {
                    "id": row.id,
                    "user_ids": sorted(user_ids.get(row.id, [])),
                    "email": row.email,
                    "phone": row.phone,
                    "traits": summary(row.traits or {}),
                    "events_count": row.events_count,
                    "created_at": row.created_at,
                }
            )
        groups.extend(
            {"key": column, "value": value, "profiles": profiles}
            for value, profiles in by_value.items()
        )
    return groups[:limit]


def summary(traits: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in SUMMARY_FIRST if k in traits]
    keys += sorted(k for k in traits if k not in SUMMARY_FIRST)
    return {k: traits[k] for k in keys[:SUMMARY_SIZE]}


# -- For the console: suggestions with every reason they match, and a side-by-side view --

RECENT_EVENTS = 5


def name_of(traits: dict[str, Any]) -> str | None:
    """A person's name as traits give it, folded so "Olga  Ivanova" matches "olga ivanova"."""
    name = traits.get("name")
    if not isinstance(name, str) or not name.strip():
        first = traits.get("first_name") or traits.get("firstName") or ""
        last = traits.get("last_name") or traits.get("lastName") or ""
        name = f"{first} {last}" if isinstance(first, str) and isinstance(last, str) else ""
    folded = " ".join(name.split()).casefold()
    return folded or None


def suggestions(scope: Scope, limit: int) -> list[dict[str, Any]]:
    """find_duplicates regrouped by the profiles involved, each group with every shared value.

    Two profiles sharing both an email and a phone are one suggestion with two reasons, not
    two suggestions; a name they all share is added as a further (weaker) reason.
    """
    merged: dict[frozenset[Any], dict[str, Any]] = {}
    for group in find_duplicates(scope, limit):
        ids = frozenset(p["id"] for p in group["profiles"])
        entry = merged.setdefault(ids, {"profiles": group["profiles"], "reasons": []})
        entry["reasons"].append({"key": group["key"], "value": group["value"]})
    out = list(merged.values())
    for entry in out:
        names = {name_of(p["traits"]) for p in entry["profiles"]}
        if len(names) == 1 and None not in names:
            entry["reasons"].append({"key": "name", "value": names.pop()})
    return out


def compare(
    scope: Scope, a_id: uuid.UUID, b_id: uuid.UUID, events: int = RECENT_EVENTS
) -> dict[str, Any]:
    """Two live root profiles side by side, with what a merge of them would keep.

    The suggested survivor is the one with more orders, then the older one: it is the
    profile other systems most likely already point at.
    """
    if a_id == b_id:
        raise SameProfile("A profile cannot be compared with itself")
    a, b = _side(scope, a_id, events), _side(scope, b_id, events)
    keys = set(a["traits"]) | set(b["traits"])
    ordered = [k for k in SUMMARY_FIRST if k in keys] + sorted(keys - set(SUMMARY_FIRST))
    missing = object()
    traits = []
    for key in ordered:
        va, vb = a["traits"].get(key, missing), b["traits"].get(key, missing)
        traits.append(
            {
                "key": key,
                "a": None if va is missing else va,
                "b": None if vb is missing else vb,
                "in_a": va is not missing,
                "in_b": vb is not missing,
                "same": va == vb,
                "conflict": va is not missing and vb is not missing and va != vb,
            }
        )
    ranked = sorted((a, b), key=lambda s: (-s["aggregates"]["orders_count"], s["created_at"]))
    return {
        "a": a,
        "b": b,
        "traits": traits,
        "shared": shared_signals(a, b),
        "suggested_winner": ranked[0]["id"],
    }


def shared_signals(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Why two profiles look like one person: the contact values and name they share."""
    out = [
        {"key": column, "value": a[column]}
        for column in CONTACTS
        if a[column] is not None and a[column] == b[column]
    ]
    name = name_of(a["traits"])
    if name is not None and name == name_of(b["traits"]):
        out.append({"key": "name", "value": name})
    return out


def _side(scope: Scope, profile_id: uuid.UUID, events: int) -> dict[str, Any]:
    row = repo.get_profile(scope.conn, scope.workspace_id, profile_id)
    if row is None:
        raise ProfileNotFound("No profile with that id in this workspace")
    if row.merged_into is not None:
        raise ProfileAlreadyMerged(
            f"Profile {profile_id} was merged into {row.merged_into} already",
            details={"profile_id": str(profile_id), "merged_into": str(row.merged_into)},
        )
    if row.erased_at is not None:
        raise ProfileErased(f"Profile {profile_id} was erased")
    view = profile_view(scope, locate(scope, profile_id))
    recent = repo.timeline(
        scope.conn, scope.workspace_id, [view["id"], *view["merged_ids"]], limit=events
    )
    view["recent_events"] = [event_view(r) for r in recent]
    view["user_ids"] = sorted(i["value"] for i in view["identities"] if i["type"] == USER_ID)
    return view
