"""Helpers shared by the ingest and SDK tests: custom live servers, reading what was stored."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import Engine, select

from otklik.app import create_app
from otklik.config import Settings
from otklik.models import Event, Identity, Profile, RejectedEvent
from tests.conftest import LiveServer, free_port

T = TypeVar("T")


@contextmanager
def serve(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    """The real app with the given settings behind a real uvicorn on a loopback port."""
    app = create_app(settings, engine)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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
