"""Finding profiles that are probably one person but were kept apart, for a human to review.

They arise when the never-merge rule refused to join two user ids that share an email or a
phone (two accounts of one person, or a family sharing a phone), and from imports. Merging
them is a decision the API leaves to whoever reviews the list (POST /profiles/merge).
"""

from __future__ import annotations

from typing import Any

from otklik.profiles import repository as repo
from otklik.profiles.identity import USER_ID
from otklik.profiles.service import Scope

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
