"""The one way other domains say "this profile changed": a row in the segment loop's queue.

It is written in the same transaction as the change itself, so a committed change is never
missed by segments, and a rolled-back one never re-evaluates anybody.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection

from otklik.segments import repository as repo

ANYTHING = "*"  # merges, undos and erasures: every segment may move
REACH = "reach"  # consent, suppression, push subscriptions, Telegram chats


def profiles_changed(
    conn: Connection, workspace_id: uuid.UUID, topics: Mapping[uuid.UUID, Iterable[str]]
) -> None:
    rows = [
        {"workspace_id": workspace_id, "profile_id": pid, "topics": "\n".join(sorted(set(t)))}
        for pid, t in topics.items()
        if t
    ]
    repo.mark_dirty(conn, rows)


def profile_changed(
    conn: Connection, workspace_id: uuid.UUID, profile_id: uuid.UUID, *topics: str
) -> None:
    profiles_changed(conn, workspace_id, {profile_id: topics})


def addresses_changed(
    conn: Connection, workspace_id: uuid.UUID, channel: str, addresses: Iterable[str]
) -> None:
    """A suppression list moved: whoever holds those addresses may become (un)reachable."""
    owners = repo.address_owners(conn, workspace_id, channel, list(addresses))
    profiles_changed(conn, workspace_id, {pid: (REACH,) for pid in owners})


def push_addresses_changed(
    conn: Connection, workspace_id: uuid.UUID, addresses: Iterable[str]
) -> None:
    owners = repo.push_owners(conn, workspace_id, list(addresses))
    profiles_changed(conn, workspace_id, {pid: (REACH,) for pid in owners})
