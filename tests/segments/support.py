"""Helpers for the segment specs: recent events, segments over the API, settling the loops."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import send


def ago(days: float = 0, hours: float = 0) -> str:
    when = datetime.now(UTC) - timedelta(days=days, hours=hours)
    return when.isoformat().replace("+00:00", "Z")


def event(user: str, name: str, days_ago: float = 0, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": name,
        "timestamp": ago(days_ago),
        "properties": properties,
    }


def identify(user: str, days_ago: float = 0, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "timestamp": ago(days_ago), "traits": traits}


def settle(live: LiveServer, timeout: float = 60.0) -> None:
    """Resolve every stored event, then let the segment loop catch up."""
    live.drain(timeout)
    live.app.state.segments.drain(timeout)


def post(http: httpx.Client, tenant: Tenant, path: str, body: Any) -> httpx.Response:
    return http.post(f"/api/v1{path}", json=body, headers=tenant.bearer)


def create(
    http: httpx.Client, tenant: Tenant, rules: dict[str, Any], live: LiveServer, **extra: Any
) -> dict[str, Any]:
    """Save a dynamic segment and wait for its first build."""
    body = {"name": extra.pop("name", f"s-{uuid.uuid4().hex[:8]}"), "rules": rules, **extra}
    r = post(http, tenant, "/segments", body)
    assert r.status_code == 201, r.text
    live.app.state.segments.drain()
    return segment(http, tenant, r.json()["id"])


def segment(http: httpx.Client, tenant: Tenant, segment_id: str) -> dict[str, Any]:
    r = http.get(f"/api/v1/segments/{segment_id}", headers=tenant.bearer)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def member_ids(http: httpx.Client, tenant: Tenant, segment_id: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        r = http.get(f"/api/v1/segments/{segment_id}/members", params=params, headers=tenant.bearer)
        assert r.status_code == 200, r.text
        page = r.json()
        found.update(item["profile_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def users(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return list(events)


__all__ = ["send"]
