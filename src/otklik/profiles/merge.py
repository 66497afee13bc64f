"""Explicit merges and undoing any merge, from the log the merge left behind.

An explicit merge goes through the resolver's own machinery (BatchResolver.merge), so it is
logged, flattened and folded exactly like one the resolver decides. Undo works from the
merge_log snapshot and re-derives what it cannot restore from the store: counters are
recounted over the events and orders each cluster ends up with.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.time import iso
from otklik.profiles import repository as repo
from otklik.profiles.identity import ANONYMOUS_ID, USER_ID
from otklik.profiles.repository import AnyRow
from otklik.profiles.resolver import SYSTEM, BatchResolver, system_event
from otklik.profiles.service import (
    PageOf,
    ProfileErased,
    ProfileNotFound,
    Scope,
    cursor_after,
    locate,
    page_of,
    profile_view,
)
from otklik.profiles.state import CENT, ProfileState
from otklik.segments.changes import ANYTHING

UNMERGED_EVENT = "profile.unmerged"


class SameProfile(Unprocessable):
    code = "same_profile"


class ProfileAlreadyMerged(Conflict):
    code = "profile_already_merged"


class MergeNotFound(NotFound):
    code = "merge_not_found"


class UndoOrder(Conflict):
    code = "undo_order"


class AlreadyUndone(Conflict):
    code = "already_undone"


def merge_view(row: AnyRow) -> dict[str, Any]:
    return dict(row._mapping)


def merge_profiles(
    scope: Scope, winner_id: uuid.UUID, loser_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """Fold the loser into the winner; explicit, so it is allowed across different user ids."""
    if winner_id == loser_id:
        raise SameProfile("A profile cannot be merged into itself")
    conn, ws = scope.conn, scope.workspace_id
    repo.resolver_lock(conn)
    for pid in (winner_id, loser_id):
        row = repo.get_profile(conn, ws, pid)
        if row is None:
            raise ProfileNotFound(f"No profile {pid} in this workspace")
        if row.merged_into is not None:
            raise ProfileAlreadyMerged(
                f"Profile {pid} was merged into {row.merged_into}; merge its root instead",
                details={"profile_id": str(pid), "merged_into": str(row.merged_into)},
            )
        if row.erased_at is not None:
            raise ProfileErased(f"Profile {pid} was erased")
    resolver = BatchResolver(conn, ws, scope.config, now)
    resolver.load_states([winner_id, loser_id])
    merge_id = resolver.merge(winner_id, loser_id, reason="manual", seq=_seq_at_merge(scope))
    resolver.flush()
    return _result(scope, merge_id)


def _seq_at_merge(scope: Scope) -> int:
    # Undo re-homes events resolved after the merge, i.e. everything still pending now.
    first_pending = repo.min_pending_seq(scope.conn, scope.workspace_id)
    return first_pending - 1 if first_pending is not None else repo.max_event_seq(scope.conn)


def undo_merge(scope: Scope, merge_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Split a merge apart again; later merges of the winner must be undone first."""
    conn, ws = scope.conn, scope.workspace_id
    repo.resolver_lock(conn)
    log = repo.get_merge_log(conn, ws, merge_id)
    if log is None:
        raise MergeNotFound("No merge with that id in this workspace")
    if log.undone_at is not None:
        raise AlreadyUndone(f"This merge was undone at {log.undone_at.isoformat()}")
    winner = repo.get_profile(conn, ws, log.winner_id)
    loser = repo.get_profile(conn, ws, log.loser_id)
    if winner is None or loser is None:
        raise MergeNotFound("The profiles of this merge no longer exist")
    if winner.merged_into is not None or loser.merged_into != winner.id:
        blocking = repo.latest_active_merge_of_loser(conn, winner.id)
        raise UndoOrder(
            "The winner was merged again since; undo the later merge first",
            details={"undo_first": str(blocking) if blocking else None},
        )
    if winner.erased_at is not None or loser.erased_at is not None:
        raise ProfileErased("An erased profile's merges cannot be undone")

    snapshot = log.snapshot or {}
    w, lo = winner.id, loser.id
    moved = [uuid.UUID(i) for i in snapshot.get("moved_identities", [])]
    # Identities the winner gave away since (to a later merge's winner) are not ours to take.
    back = [row.id for row in repo.identities_by_ids(conn, moved) if row.profile_id == w]
    repo.set_identity_owner(conn, back, lo)
    repointed = {uuid.UUID(p) for p in snapshot.get("repointed_profiles", [])}
    winner_cluster = repo.cluster_ids(conn, w)
    repo.set_merged_into(conn, {pid: lo for pid in winner_cluster if pid in repointed})
    repo.clear_merged_into(conn, lo)
    _rehome_later_events(scope, w, lo, int(log.event_seq_at_merge))

    resolver = BatchResolver(conn, ws, scope.config, now)
    resolver.load_states([w, lo])
    restored, kept = resolver.states[lo], resolver.states[w]
    restored.merged_into = None
    restored.traits = dict(snapshot.get("loser_traits") or {})
    winner_had = snapshot.get("winner_traits") or {}
    for key, value in restored.traits.items():
        # Only what came from the loser and was not changed since leaves the winner.
        if key not in winner_had and kept.traits.get(key) == value:
            kept.traits.pop(key, None)
    for state in (kept, restored):
        resolver.apply_traits(state, {})  # re-derives the email/phone columns from traits
        _recount(scope, state, repo.cluster_ids(conn, state.id))
    repo.update_merge_log(conn, merge_id, {"undone_at": now})
    for pid in (w, lo):
        resolver.touched[pid].add(ANYTHING)
    props = {"merge_id": str(merge_id), "winner_id": str(w), "loser_id": str(lo)}
    for pid, suffix in ((w, "winner"), (lo, "loser")):
        resolver.pending.system_events.append(
            system_event(ws, UNMERGED_EVENT, pid, now, f"unmerge:{merge_id}:{suffix}", props)
        )
    resolver.flush()
    return _result(scope, merge_id)


def _rehome_later_events(scope: Scope, winner: uuid.UUID, loser: uuid.UUID, after: int) -> None:
    """Events resolved to the winner after the merge that were the loser's go back to it.

    An event is the loser's when its user id is one of the loser's, or when it has no user id
    of the winner's and its anonymous id is the loser's (the resolver ranks user id first).
    """
    conn = scope.conn
    idents = repo.identities_of_profiles(conn, [winner, loser], [USER_ID, ANONYMOUS_ID])
    loser_ids = {(r.type, r.value) for r in idents if r.profile_id == loser}
    winner_users = {r.value for r in idents if r.profile_id == winner and r.type == USER_ID}
    moving = []
    for event in repo.events_since(conn, winner, after):
        if event.type == SYSTEM:
            continue
        if event.user_id is not None and (USER_ID, event.user_id) in loser_ids:
            moving.append(event)
        elif event.user_id is not None and event.user_id in winner_users:
            continue
        elif event.anonymous_id is not None and (ANONYMOUS_ID, event.anonymous_id) in loser_ids:
            moving.append(event)
    repo.rehome_events(conn, [e.seq for e in moving], loser)
    repo.rehome_orders(conn, scope.workspace_id, [e.message_id for e in moving], winner, loser)


def _recount(scope: Scope, state: ProfileState, members: list[uuid.UUID]) -> None:
    counts = repo.cluster_aggregates(scope.conn, members, SYSTEM)
    state.events_count = counts["events_count"]
    state.first_seen_at = counts["first_seen_at"]
    state.last_seen_at = counts["last_seen_at"]
    state.orders_count = counts["orders_count"]
    state.revenue = Decimal(str(counts["revenue"])).quantize(CENT)
    state.last_order_at = counts["last_order_at"]
    state.dirty = True


def _result(scope: Scope, merge_id: uuid.UUID) -> dict[str, Any]:
    log = repo.get_merge_log(scope.conn, scope.workspace_id, merge_id)
    assert log is not None  # written in this transaction
    return {
        "merge": merge_view(log),
        "winner": profile_view(scope, locate(scope, log.winner_id)),
        "loser": profile_view(scope, locate(scope, log.loser_id)),
    }


def list_merges(
    scope: Scope, profile_id: uuid.UUID | None, *, limit: int, cursor: str | None
) -> PageOf:
    """The merge log newest first; with a profile, the merges of its cluster."""
    members = locate(scope, profile_id).members if profile_id is not None else None
    rows = repo.merge_logs(
        scope.conn,
        scope.workspace_id,
        members,
        limit=limit + 1,
        after=cursor_after(cursor, uuid.UUID),
    )
    return page_of(rows, limit, lambda r: [iso(r.created_at), str(r.id)], merge_view)


# -- For the console: the log with both sides named, and what an undo would do --

UNDONE, UNDOABLE, LATER_MERGE, ERASED, GONE = "undone", "undoable", "later_merge", "erased", "gone"


def undo_state(undone_at: datetime | None, winner: AnyRow | None, loser: AnyRow | None) -> str:
    """Whether undo_merge would accept this merge now, and if not, why (the same checks)."""
    if undone_at is not None:
        return UNDONE
    if winner is None or loser is None:
        return GONE
    if winner.merged_into is not None or loser.merged_into != winner.id:
        return LATER_MERGE
    if winner.erased_at is not None or loser.erased_at is not None:
        return ERASED
    return UNDOABLE


def merge_log_page(scope: Scope, *, limit: int, cursor: str | None) -> PageOf:
    """The merge log newest first, each entry with both profiles and its undo state."""
    page = list_merges(scope, None, limit=limit, cursor=cursor)
    ids = [m[side] for m in page.items for side in ("winner_id", "loser_id")]
    rows = repo.profiles_in_workspace(scope.conn, scope.workspace_id, ids)
    return PageOf([_described(m, rows) for m in page.items], page.next_cursor)


def describe_merge(scope: Scope, merge_id: uuid.UUID) -> dict[str, Any]:
    """One merge with both profiles, its undo state and, when blocked, the merge to undo first."""
    log = repo.get_merge_log(scope.conn, scope.workspace_id, merge_id)
    if log is None:
        raise MergeNotFound("No merge with that id in this workspace")
    rows = repo.profiles_in_workspace(scope.conn, scope.workspace_id, [log.winner_id, log.loser_id])
    out = _described(merge_view(log), rows)
    if out["undo_state"] == LATER_MERGE:
        out["undo_first"] = repo.latest_active_merge_of_loser(scope.conn, log.winner_id)
    return out


def _described(merge: dict[str, Any], rows: dict[uuid.UUID, AnyRow]) -> dict[str, Any]:
    winner, loser = rows.get(merge["winner_id"]), rows.get(merge["loser_id"])
    state = undo_state(merge["undone_at"], winner, loser)
    return {**merge, "winner": winner, "loser": loser, "undo_state": state, "undo_first": None}
