"""Identity resolution: turns pending events into profiles, identities, merges and orders.

A batch of events is resolved in memory against the identities it touches (one query for
all of them), then written back in a handful of bulk statements. Rules, in order:

1. The event's identifiers are ranked (user id first, anonymous id last); the profile of the
   highest-ranked known identifier is the target, unless it already carries a different value
   of a never-merge type (user id by default) that the event also names - a shared device.
2. Other known identifiers of the event pull their profiles into the target (a merge) unless
   the two carry different never-merge values; then each keeps its own.
3. Unknown identifiers are attached to the target; with no known identifier a profile is made.
4. `alias` is an explicit statement that two ids are one person: it merges even across user ids.
Junk and invalid values never reach this point (see identity.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.kit.ids import uuid7
from otklik.kit.time import iso
from otklik.models.event import PROCESSED, UNATTRIBUTED
from otklik.profiles import log_repository
from otklik.profiles import repository as repo
from otklik.profiles.identity import (
    ANONYMOUS_ID,
    EMAIL,
    PHONE,
    Ident,
    Junk,
    alias_candidates,
    identifiers_of,
    normalise,
    simple_identifiers,
)
from otklik.profiles.orders import ORDER_EVENTS, OrderFacts, order_from_properties
from otklik.profiles.state import ProfileState
from otklik.segments.changes import ANYTHING, profiles_changed

SYSTEM = "system"  # event type of what Otklik itself records (merges), never from an SDK


@dataclass(frozen=True)
class ResolverConfig:
    region: str
    currency: str
    unique_types: frozenset[str]
    junk: Junk


@dataclass
class BatchStats:
    events: int = 0
    profiles_created: int = 0
    merges: int = 0
    orders: int = 0
    unattributed: int = 0


@dataclass
class _Order:
    id: uuid.UUID
    profile_id: uuid.UUID
    total: Any
    placed_at: datetime
    new: bool = False
    changed: bool = False
    facts: OrderFacts | None = None
    message_id: str | None = None


@dataclass
class _Pending:
    profiles: dict[uuid.UUID, ProfileState] = field(default_factory=dict)
    identities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    identity_owner: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    merged_owner: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    merge_logs: list[dict[str, Any]] = field(default_factory=list)
    system_events: list[dict[str, Any]] = field(default_factory=list)
    marks: list[tuple[int, uuid.UUID | None, int]] = field(default_factory=list)


class BatchResolver:
    def __init__(
        self, conn: Connection, workspace_id: uuid.UUID, config: ResolverConfig, now: datetime
    ) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.config = config
        self.now = now
        self.owner: dict[tuple[str, str], uuid.UUID] = {}
        self.states: dict[uuid.UUID, ProfileState] = {}
        self.orders: dict[str, _Order] = {}
        self.pending = _Pending()
        self.stats = BatchStats()
        # Identity and merged-into moves decided in this batch, by the profile they left.
        self._moved_into: dict[uuid.UUID, list[uuid.UUID]] = {}
        # What changed on which profile, for the segment loop ("event:<name>", "trait:<key>").
        self.touched: dict[uuid.UUID, set[str]] = defaultdict(set)

    # -- loading -------------------------------------------------------------------------
    def preload(self, idents: Sequence[Ident], order_ids: Sequence[str] = ()) -> None:
        pairs = [(ident.type, ident.value) for ident in idents]
        found = repo.identities_for(self.conn, self.workspace_id, pairs)
        self.owner.update(found)
        self.load_states(found.values())
        for row in repo.orders_by_external(self.conn, self.workspace_id, order_ids).values():
            self.orders[row.external_id] = _Order(row.id, row.profile_id, row.total, row.placed_at)

    def load_states(self, ids: Any) -> None:
        missing = {pid for pid in ids if pid not in self.states}
        if not missing:
            return
        for row in repo.profile_rows(self.conn, missing):
            self.states[row.id] = ProfileState.from_row(row)
        for row in repo.identities_of_profiles(
            self.conn, missing, sorted(self.config.unique_types)
        ):
            self.states[row.profile_id].unique.setdefault(row.type, set()).add(row.value)
        roots = {s.merged_into for s in self.states.values() if s.merged_into} - set(self.states)
        if roots:
            self.load_states(roots)

    def state(self, profile_id: uuid.UUID) -> ProfileState:
        self.load_states([profile_id])
        return self.states[self.root(profile_id)]

    def root(self, profile_id: uuid.UUID) -> uuid.UUID:
        seen = 0
        while (state := self.states.get(profile_id)) is not None and state.merged_into:
            profile_id = state.merged_into
            seen += 1
            if seen > 64:  # a cycle would be a bug; never spin forever on one
                raise RuntimeError(f"merge cycle at profile {profile_id}")
        return profile_id

    # -- the rules -----------------------------------------------------------------------
    def resolve(
        self, idents: Sequence[Ident], when: datetime, seq: int, reason: str
    ) -> uuid.UUID | None:
        owner = self.owner
        # Most events name only identifiers already on one profile: nothing to decide (the
        # rules below would pick that profile and change nothing).
        roots: set[uuid.UUID] = set()
        for ident in idents:
            pid = owner.get(ident)  # an Ident is its own (type, value) key
            if pid is None:
                break
            roots.add(self.root(pid))
        else:
            if len(roots) == 1:
                return roots.pop()
        matched: list[tuple[Ident, uuid.UUID]] = []
        unmatched: list[Ident] = []
        for ident in idents:
            pid = owner.get(ident)
            if pid is None:
                unmatched.append(ident)
            else:
                matched.append((ident, self.root(pid)))
        target: uuid.UUID | None = None
        for _ident, matched_pid in matched:
            # A merge earlier in this loop may have folded this profile into the target
            # already (two identifiers of one profile): take its root now, or it would be
            # merged, and its counters added, a second time.
            pid = self.root(matched_pid)
            if target is None:
                if not any(self.conflicts(pid, other) for other in unmatched):
                    target = pid
            elif (
                pid != target
                and self.can_merge(target, pid)
                # The event's own new user id counts too: never fold in someone else's.
                and not any(self.conflicts(pid, other) for other in unmatched)
            ):
                self.merge(target, pid, reason=reason, seq=seq)
        if target is None:
            if not idents:
                return None
            target = self.new_profile(when).id
        for ident in unmatched:
            if not self.conflicts(target, ident):
                self.attach(ident, target)
        return target

    def conflicts(self, profile_id: uuid.UUID, ident: Ident) -> bool:
        if ident.type not in self.config.unique_types:
            return False
        values = self.states[profile_id].unique.get(ident.type)
        return bool(values) and ident.value not in values  # type: ignore[operator]

    def can_merge(self, a: uuid.UUID, b: uuid.UUID) -> bool:
        left, right = self.states[a], self.states[b]
        for kind in self.config.unique_types:
            mine, theirs = left.unique.get(kind), right.unique.get(kind)
            if mine and theirs and mine != theirs:
                return False
        return True

    def new_profile(self, when: datetime) -> ProfileState:
        state = ProfileState(
            id=uuid7(), workspace_id=self.workspace_id, traits={}, created_at=self.now, new=True
        )
        state.dirty = True
        self.states[state.id] = state
        self.stats.profiles_created += 1
        return state

    def attach(self, ident: Ident, profile_id: uuid.UUID) -> None:
        row = {
            "id": uuid7(),
            "workspace_id": self.workspace_id,
            "type": ident.type,
            "value": ident.value,
            "profile_id": profile_id,
            "created_at": self.now,
        }
        self.pending.identities[(ident.type, ident.value)] = row
        self.owner[(ident.type, ident.value)] = profile_id
        if ident.type in self.config.unique_types:
            self.states[profile_id].unique.setdefault(ident.type, set()).add(ident.value)

    def merge(
        self, winner_id: uuid.UUID, loser_id: uuid.UUID, *, reason: str, seq: int
    ) -> uuid.UUID:
        """Fold the loser into the winner; everything needed to undo it goes to the log."""
        winner, loser = self.states[winner_id], self.states[loser_id]
        merge_id = uuid7()
        snapshot = {
            "winner_traits": dict(winner.traits),
            "loser_traits": dict(loser.traits),
            "winner_contacts": [winner.email, winner.phone],
            "winner_aggregates": _jsonable(winner.aggregates()),
            "loser_aggregates": _jsonable(loser.aggregates()),
        }
        moved = self._identities_leaving(loser_id)
        for identity_id in moved:
            self.pending.identity_owner[identity_id] = winner_id
        for row in self.pending.identities.values():
            if row["profile_id"] == loser_id:
                row["profile_id"] = winner_id
                moved.append(row["id"])
        for key, pid in list(self.owner.items()):
            if pid == loser_id:
                self.owner[key] = winner_id
        self._moved_into.setdefault(winner_id, []).extend(moved)
        repointed = self._profiles_merged_into(loser_id)
        for pid in repointed:
            self.pending.merged_owner[pid] = winner_id
            if pid in self.states:
                self.states[pid].merged_into = winner_id
                self.states[pid].dirty = True  # flush skips merged_owner for loaded states
        snapshot["moved_identities"] = [str(i) for i in moved]
        snapshot["repointed_profiles"] = [str(p) for p in repointed]
        winner.absorb(loser)
        self.touched[winner_id].add(ANYTHING)
        self.touched[loser_id].add(ANYTHING)
        loser.merged_into = winner_id
        loser.dirty = True
        self.pending.merge_logs.append(
            {
                "id": merge_id,
                "workspace_id": self.workspace_id,
                "winner_id": winner_id,
                "loser_id": loser_id,
                "reason": reason,
                "snapshot": snapshot,
                "event_seq_at_merge": seq,
                "created_at": self.now,
                "undone_at": None,
            }
        )
        self.pending.system_events.append(
            system_event(
                self.workspace_id,
                "profile.merged",
                winner_id,
                self.now,
                f"merge:{merge_id}",
                {
                    "merge_id": str(merge_id),
                    "winner_id": str(winner_id),
                    "loser_id": str(loser_id),
                    "reason": reason,
                },
            )
        )
        self.stats.merges += 1
        return merge_id

    def _identities_leaving(self, loser_id: uuid.UUID) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        if not self.states[loser_id].new:
            ids = [row.id for row in repo.identities_of_profiles(self.conn, [loser_id])]
        ids.extend(self._moved_into.pop(loser_id, []))
        # Identities this batch already moved elsewhere are not the loser's any more.
        return [
            i
            for i in dict.fromkeys(ids)
            if self.pending.identity_owner.get(i, loser_id) == loser_id
        ]

    def _profiles_merged_into(self, loser_id: uuid.UUID) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        if not self.states[loser_id].new:
            ids = repo.cluster_ids(self.conn, loser_id)
        ids.extend(pid for pid, owner in self.pending.merged_owner.items() if owner == loser_id)
        ids.extend(pid for pid, s in self.states.items() if s.merged_into == loser_id)
        return [pid for pid in dict.fromkeys(ids) if pid != loser_id]

    # -- applying an event ---------------------------------------------------------------
    def apply(self, target: uuid.UUID, event: Any, payload: dict[str, Any] | None) -> None:
        state = self.states[target]
        touched = self.touched[target]
        touched.add("seen")
        if event.name:
            touched.add(f"event:{event.name}")
        if payload is None:  # a plain page/track/screen: it was seen, nothing more
            state.seen(event.timestamp)
            return
        context = payload.get("context") or {}
        state.seen(event.timestamp, active=context.get("active") is not False)
        if event.type == "identify":
            traits = payload.get("traits") or context.get("traits") or {}
            if isinstance(traits, dict):
                self.apply_traits(state, traits)
        elif event.type == "track" and event.name in ORDER_EVENTS:
            props = payload.get("properties") or {}
            facts = order_from_properties(props, self.config.currency)
            if facts is not None:
                self.record_order(target, facts, event.timestamp, payload.get("messageId"))
                touched.add("order")

    def apply_traits(self, state: ProfileState, traits: dict[str, Any]) -> None:
        self.touched[state.id].update(f"trait:{key}" for key in _trait_keys(traits))
        traits = dict(traits)
        set_once = traits.pop("$set_once", None)
        unset = traits.pop("$unset", None)
        for key, value in traits.items():
            state.traits[key] = value
        if isinstance(set_once, dict):
            for key, value in set_once.items():
                state.traits.setdefault(key, value)
        if isinstance(unset, list):
            for key in unset:
                if isinstance(key, str):
                    state.traits.pop(key, None)
        for kind in (EMAIL, PHONE):
            value = normalise(kind, state.traits.get(kind), self.config.region)
            if value is not None and value in self.config.junk:
                value = None
            setattr(state, kind, value)
        state.dirty = True

    def record_order(
        self, target: uuid.UUID, facts: OrderFacts, placed_at: datetime, message_id: Any
    ) -> None:
        existing = self.orders.get(facts.external_id)
        if existing is None:
            self.orders[facts.external_id] = _Order(
                uuid7(),
                target,
                facts.total,
                placed_at,
                new=True,
                facts=facts,
                message_id=str(message_id) if message_id else None,
            )
            self.states[target].add_order(facts.total, placed_at)
            self.stats.orders += 1
            return
        # The same order sent again with new figures: correct the totals, never count it twice.
        owner = self.state(existing.profile_id)
        owner.add_order(facts.total - existing.total, existing.placed_at, count=0)
        existing.total, existing.facts, existing.changed = facts.total, facts, True

    # -- writing -------------------------------------------------------------------------
    def flush(self) -> None:
        new_rows = [s.as_row(self.now) for s in self.states.values() if s.new]
        repo.insert_profiles(self.conn, new_rows)
        repo.update_profiles(
            self.conn, [s.as_row(self.now) for s in self.states.values() if s.dirty and not s.new]
        )
        repo.insert_identities(self.conn, list(self.pending.identities.values()))
        inserted = {row["id"] for row in self.pending.identities.values()}
        by_owner: dict[uuid.UUID, list[uuid.UUID]] = {}
        for identity_id, owner in self.pending.identity_owner.items():
            if identity_id not in inserted:
                by_owner.setdefault(owner, []).append(identity_id)
        for owner, ids in by_owner.items():
            repo.set_identity_owner(self.conn, ids, owner)
        repo.set_merged_into(
            self.conn,
            {
                pid: owner
                for pid, owner in self.pending.merged_owner.items()
                if pid not in self.states
            },
        )
        for row in self.pending.merge_logs:
            repo.insert_merge_log(self.conn, row)
        repo.insert_events(self.conn, self.pending.system_events)
        self._flush_orders()
        log_repository.mark_events(self.conn, self.pending.marks)
        profiles_changed(self.conn, self.workspace_id, self.touched)

    def _flush_orders(self) -> None:
        orders, items = [], []
        for order in self.orders.values():
            if not (order.new or order.changed) or order.facts is None:
                continue
            facts = order.facts
            row = {
                "id": order.id,
                "workspace_id": self.workspace_id,
                "external_id": facts.external_id,
                "profile_id": order.profile_id,
                "placed_at": order.placed_at,
                "total": facts.total,
                "currency": facts.currency,
                "status": facts.status,
                "source": "event",
                "message_id": order.message_id,
                "created_at": self.now,
            }
            lines = [
                {
                    "id": uuid7(),
                    "order_id": order.id,
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "price": line.price,
                }
                for line in facts.lines
            ]
            if order.new:
                orders.append(row)
                items.extend(lines)
            else:
                repo.replace_order(self.conn, row, lines)
        repo.insert_orders(self.conn, orders, items)


def _trait_keys(traits: dict[str, Any]) -> list[str]:
    keys = [k for k in traits if isinstance(k, str) and not k.startswith("$")]
    for special in ("$set_once", "$unset"):
        extra = traits.get(special)
        if isinstance(extra, dict | list):
            keys.extend(k for k in extra if isinstance(k, str))
    return keys


def system_event(
    workspace_id: uuid.UUID,
    name: str,
    profile_id: uuid.UUID,
    when: datetime,
    message_id: str,
    properties: dict[str, Any],
) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "message_id": message_id,
        "type": SYSTEM,
        "name": name,
        "user_id": None,
        "anonymous_id": None,
        "timestamp": when,
        "received_at": when,
        "payload": {
            "type": SYSTEM,
            "event": name,
            "messageId": message_id,
            "timestamp": iso(when),
            "properties": properties,
        },
        "profile_id": profile_id,
        "status": PROCESSED,
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (iso(v) if isinstance(v, datetime) else str(v) if v is not None else None)
        for k, v in values.items()
    }


def event_identifiers(event: Any, config: ResolverConfig) -> tuple[list[Ident], list[Ident]]:
    """(identifiers, alias previousId candidates) of one stored event."""
    payload = event.payload
    if payload is None:
        return simple_identifiers(event.user_id, event.anonymous_id, config.junk), []
    idents = identifiers_of(payload, config.region, config.junk)
    previous = payload.get("previousId") if payload.get("type") == "alias" else None
    candidates = alias_candidates(str(previous), config.junk) if previous else []
    return idents, candidates


def resolve_batch(
    conn: Connection,
    workspace_id: uuid.UUID,
    events: Sequence[Any],
    config: ResolverConfig,
    now: datetime,
) -> BatchStats:
    """Resolve one workspace's pending events (in log order) and write the outcome."""
    resolver = prepare_batch(conn, workspace_id, events, config, now)
    resolver.flush()
    return resolver.stats


def prepare_batch(
    conn: Connection,
    workspace_id: uuid.UUID,
    events: Sequence[Any],
    config: ResolverConfig,
    now: datetime,
) -> BatchResolver:
    """Decide everything about a batch from reads alone; `flush()` then writes it."""
    resolver = BatchResolver(conn, workspace_id, config, now)
    parsed = [(event, *event_identifiers(event, config)) for event in events]
    wanted = [i for _, idents, cands in parsed for i in (*idents, *cands)]
    order_ids = [
        facts.external_id
        for e, _, _ in parsed
        if e.payload is not None
        and e.type == "track"
        and e.name in ORDER_EVENTS
        and (facts := order_from_properties(e.payload.get("properties") or {}, config.currency))
    ]
    resolver.preload(wanted, order_ids)
    for event, idents, candidates in parsed:
        reason = "identify" if event.type == "identify" else event.type
        target = resolver.resolve(idents, event.timestamp, event.seq, reason)
        if candidates and target is not None:
            _apply_alias(resolver, target, candidates, event.seq)
        resolver.stats.events += 1
        if target is None:
            resolver.stats.unattributed += 1
            resolver.pending.marks.append((event.seq, None, UNATTRIBUTED))
            continue
        root = resolver.root(target)
        resolver.apply(root, event, event.payload)
        resolver.pending.marks.append((event.seq, root, PROCESSED))
    return resolver


def _apply_alias(
    resolver: BatchResolver, target: uuid.UUID, candidates: list[Ident], seq: int
) -> None:
    for ident in candidates:
        pid = resolver.owner.get((ident.type, ident.value))
        if pid is not None:
            source = resolver.root(pid)
            if source != resolver.root(target):
                resolver.merge(resolver.root(target), source, reason="alias", seq=seq)
            return
    anonymous = Ident(ANONYMOUS_ID, candidates[-1].value)
    resolver.attach(anonymous, resolver.root(target))
