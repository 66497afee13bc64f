"""Set-up steps the delivery specifications share: a channel, a template, a person."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send

DAYTIME = {"quiet_hours": {"enabled": False}}
FINAL = {"sent", "delivered", "opened", "clicked", "failed", "skipped", "deferred"}


def api(http: httpx.Client, tenant: Tenant, method: str, path: str, **kw: Any) -> httpx.Response:
    return http.request(method, f"/api/v1{path}", headers=tenant.bearer, **kw)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def set_up(
    http: httpx.Client,
    tenant: Tenant,
    *,
    settings: dict[str, Any] | None = None,
    channel: str = "email",
    config: dict[str, Any] | None = None,
    provider: str = "logging",
) -> dict[str, Any]:
    # Links in messages point at this test's server.
    base = {"public_url": str(http.base_url).rstrip("/"), **DAYTIME}
    ok(api(http, tenant, "PUT", "/delivery-settings", json={**base, **(settings or {})}))
    return ok(
        api(
            http,
            tenant,
            "POST",
            "/channels",
            json={
                "kind": channel,
                "provider": provider,
                "name": f"{channel}-{provider}",
                "config": config or {},
            },
        ),
        201,
    )


def template(
    http: httpx.Client,
    tenant: Tenant,
    *,
    key: str | None = None,
    channel: str = "email",
    purpose: str = "marketing",
    content: dict[str, Any] | None = None,
    topic: str = "",
) -> str:
    key = key or f"t-{uuid.uuid4().hex[:8]}"
    body = content or {
        "subject": "Hello, {{ profile.traits.first_name|default('friend') }}",
        "body": '<p>Sale! <a href="https://shop.example/sale?utm_source=email&utm_campaign=s1">'
        'Shop</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        "body_format": "html",
    }
    ok(
        api(
            http,
            tenant,
            "POST",
            "/templates",
            json={
                "key": key,
                "channel": channel,
                "purpose": purpose,
                "topic": topic,
                "content": body,
            },
        ),
        201,
    )
    return key


def person(
    live: LiveServer, http: httpx.Client, tenant: Tenant, *, consent: bool = True, **traits: Any
) -> str:
    user = f"u-{uuid.uuid4().hex[:10]}"
    email = traits.pop("email", f"{user}@example.org")
    send(http, tenant, {"type": "identify", "userId": user, "traits": {"email": email, **traits}})
    live.drain()
    pid = pid_of(http, tenant, "user_id", user)
    if consent:
        ok(
            api(
                http,
                tenant,
                "PUT",
                f"/profiles/{pid}/consents",
                json={"channel": "email", "status": "granted", "source": "test"},
            )
        )
    return pid


def send_message(http: httpx.Client, tenant: Tenant, **body: Any) -> httpx.Response:
    return api(http, tenant, "POST", "/messages", json=body)


def settled(http: httpx.Client, tenant: Tenant, message_id: str, timeout: float = 20.0) -> Any:
    """The message once the pipeline has finished with it for now."""
    deadline = time.monotonic() + timeout
    while True:
        found = ok(api(http, tenant, "GET", f"/messages/{message_id}"))
        if found["state"] in FINAL or (found["state"] == "queued" and found["attempts"]):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
