"""Helpers shared by the ingest and SDK tests: custom live servers, reading what was stored."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from otklik.ingest import wire
from otklik.models import Event, Identity, Profile, RejectedEvent

T = TypeVar("T")


def basic(write_key: str, *, colon: bool = True) -> dict[str, str]:
    """The Authorization header the server SDKs send: Basic base64("<writeKey>:")."""
    raw = f"{write_key}:" if colon else write_key
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def events(engine: Engine, workspace_id: uuid.UUID) -> list[Any]:
    """Every SDK event stored for a workspace, in log order."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Event)
                .where(Event.workspace_id == workspace_id, Event.type != "system")
                .order_by(Event.seq)
            ).all()
        )


def by_message_id(engine: Engine, workspace_id: uuid.UUID) -> dict[str, Any]:
    rows = events(engine, workspace_id)
    out = {row.message_id: row for row in rows}
    assert len(out) == len(rows), "a messageId is stored more than once"
    return out


def rejected(engine: Engine, workspace_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(RejectedEvent)
                .where(RejectedEvent.workspace_id == workspace_id)
                .order_by(RejectedEvent.id)
            ).all()
        )


def nothing_stored(engine: Engine, workspace_id: uuid.UUID) -> bool:
    return not events(engine, workspace_id) and not rejected(engine, workspace_id)


def profile_of(engine: Engine, workspace_id: uuid.UUID, kind: str, value: str) -> Any:
    """The live profile an identifier points at (following merges), or None."""
    with engine.connect() as conn:
        profile_id = conn.execute(
            select(Identity.profile_id).where(
                Identity.workspace_id == workspace_id,
                Identity.type == kind,
                Identity.value == value,
            )
        ).scalar_one_or_none()
        for _ in range(64):
            if profile_id is None:
                return None
            row = conn.execute(select(Profile).where(Profile.id == profile_id)).one()
            if row.merged_into is None:
                return row
            profile_id = row.merged_into
    raise AssertionError("merge chain too long")


def wait_for(probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy; returns it (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def normalised(
    item: dict[str, Any], received: datetime, client_ip: str | None = None
) -> wire.Accepted:
    """One item as the request path accepts it (no batch context)."""
    return wire.normalise(
        item,
        forced_type=None,
        shared_context={},
        shared_integrations={},
        batch_sent_at=None,
        received_at=received,
        client_ip=client_ip,
    )
