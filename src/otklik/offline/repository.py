"""SQL for bulk exports: profiles with their identifiers, and the event log, in pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, func, select

from otklik.kit.db import read_tx
from otklik.kit.time import iso
from otklik.models import Event, Identity, Profile
from otklik.profiles.orders import money


def count_profiles(engine: Engine, workspace_id: uuid.UUID) -> int:
    with read_tx(engine) as conn:
        stmt = select(func.count()).where(
            Profile.workspace_id == workspace_id, Profile.merged_into.is_(None)
        )
        return int(conn.execute(stmt).scalar_one())


def count_events(engine: Engine, workspace_id: uuid.UUID) -> int:
    with read_tx(engine) as conn:
        stmt = select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)
        return int(conn.execute(stmt).scalar_one())


def profile_pages(
    engine: Engine, workspace_id: uuid.UUID, size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Root profiles (merged ones are folded into their root) with their identifiers."""
    after: uuid.UUID | None = None
    while True:
        with read_tx(engine) as conn:
            stmt = (
                select(Profile)
                .where(Profile.workspace_id == workspace_id, Profile.merged_into.is_(None))
                .order_by(Profile.id)
                .limit(size)
            )
            if after is not None:
                stmt = stmt.where(Profile.id > after)
            # Rows, not ORM objects: on a Connection, select(Profile) yields plain rows.
            profiles = conn.execute(stmt).all()
            if not profiles:
                return
            ids = [p.id for p in profiles]
            idents: dict[uuid.UUID, list[dict[str, str]]] = {}
            for kind, value, pid in conn.execute(
                select(Identity.type, Identity.value, Identity.profile_id).where(
                    Identity.profile_id.in_(ids)
                )
            ):
                idents.setdefault(pid, []).append({"type": kind, "value": value})
        yield [
            {
                "id": str(p.id),
                "traits": p.traits,
                "identities": idents.get(p.id, []),
                "email": p.email,
                "phone": p.phone,
                "created_at": iso(p.created_at),
                "first_seen_at": iso(p.first_seen_at),
                "last_seen_at": iso(p.last_seen_at),
                "events_count": p.events_count,
                "orders_count": p.orders_count,
                "revenue": str(money(p.revenue)),
                "last_order_at": iso(p.last_order_at),
                "erased": p.erased_at is not None,
            }
            for p in profiles
        ]
        after = profiles[-1].id


def event_pages(
    engine: Engine, workspace_id: uuid.UUID, size: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        with read_tx(engine) as conn:
            stmt = (
                select(Event.seq, Event.payload, Event.profile_id, Event.received_at)
                .where(Event.workspace_id == workspace_id, Event.seq > after)
                .order_by(Event.seq)
                .limit(size)
            )
            rows = conn.execute(stmt).all()
        if not rows:
            return
        yield [
            {**row.payload, "profileId": str(row.profile_id) if row.profile_id else None}
            for row in rows
        ]
        after = rows[-1].seq
