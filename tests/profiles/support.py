"""Helpers for the profile specs: send events through /v1/batch, call the REST API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Tenant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    """An explicit event time, so timelines have a known order."""
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def send(http: httpx.Client, tenant: Tenant, *events: dict[str, Any]) -> None:
    """Store events through the Segment batch endpoint with the tenant's write key."""
    batch = [{"messageId": f"m-{uuid.uuid4().hex}", **event} for event in events]
    r = http.post("/v1/batch", json={"batch": batch, "writeKey": tenant.write_key})
    assert r.status_code == 200, r.text
    assert "rejected" not in r.json(), r.json()


def track(name: str, minute: float, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "timestamp": at(minute), **fields}


def order(order_id: str, total: Any, minute: float, **fields: Any) -> dict[str, Any]:
    props = {"order_id": order_id, "total": total, "currency": "RUB"}
    props.update(fields.pop("properties", {}))
    return track("Order Completed", minute, properties=props, **fields)


def get(http: httpx.Client, tenant: Tenant, path: str, **params: Any) -> Any:
    r = http.get(f"/api/v1{path}", params=params, headers=tenant.bearer)
    assert r.status_code == 200, r.text
    return r.json()


def lookup(http: httpx.Client, tenant: Tenant, kind: str, value: str) -> dict[str, Any] | None:
    r = http.get(
        "/api/v1/profiles/lookup", params={"type": kind, "value": value}, headers=tenant.bearer
    )
    if r.status_code == 404:
        assert r.json()["code"] == "profile_not_found"
        return None
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def pid_of(http: httpx.Client, tenant: Tenant, kind: str, value: str) -> str:
    found = lookup(http, tenant, kind, value)
    assert found is not None, (kind, value)
    return str(found["id"])


def timeline(http: httpx.Client, tenant: Tenant, profile_id: str, **params: Any) -> list[Any]:
    """The whole timeline, newest first, following cursors."""
    items: list[Any] = []
    cursor = None
    while True:
        page = get(http, tenant, f"/profiles/{profile_id}/timeline", cursor=cursor, **params)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def merge(http: httpx.Client, tenant: Tenant, winner: str, loser: str) -> httpx.Response:
    return http.post(
        "/api/v1/profiles/merge",
        json={"winner_id": winner, "loser_id": loser},
        headers=tenant.bearer,
    )


def undo(http: httpx.Client, tenant: Tenant, merge_id: str) -> httpx.Response:
    return http.post(f"/api/v1/merges/{merge_id}/undo", headers=tenant.bearer)


def idents(profile: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for i in profile["identities"]}
