"""Public (write-key) endpoints a site or an app calls to register push addresses."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from otklik.delivery import repository as repo
from otklik.delivery import subscriptions
from otklik.kit.errors import NotFound
from otklik.kit.nul import NoNul
from otklik.kit.web import DbSession

router = APIRouter(prefix="/v1/push", tags=["push"])


class PushKeys(BaseModel):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class BrowserSubscription(BaseModel):
    """The browser's PushSubscription.toJSON(); fields browsers add later are ignored."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=2048)
    keys: PushKeys
    expirationTime: float | None = None


class SubscriptionIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    writeKey: str | None = None
    subscription: BrowserSubscription
    userId: str | None = Field(default=None, max_length=256)
    anonymousId: str | None = Field(default=None, max_length=256)


class DeviceIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    writeKey: str | None = None
    token: str = Field(min_length=1, max_length=4096)
    platform: Literal["fcm", "apns"]
    userId: str | None = Field(default=None, max_length=256)
    anonymousId: str | None = Field(default=None, max_length=256)


def _workspace(request: Request, authorization: str | None, body_key: str | None) -> Any:
    return request.app.state.ingest.write_key_owner(authorization, body_key)


@router.get("/config")
def push_config(
    request: Request,
    session: DbSession,
    writeKey: str | None = None,
    authorization: str | None = Header(default=None),
) -> dict[str, Any]:
    """What the site's snippet needs: the VAPID public key of the workspace's web push."""
    workspace_id = _workspace(request, authorization, writeKey)
    for row in repo.channel_settings(session.connection(), workspace_id):
        if row.kind == "webpush" and row.enabled and (row.config or {}).get("vapid_public_key"):
            return {"vapid_public_key": row.config["vapid_public_key"]}
    raise NotFound("web push is not set up for this workspace", code="webpush_not_configured")


def _register(
    request: Request,
    session: DbSession,
    body: SubscriptionIn | DeviceIn,
    authorization: str | None,
    user_agent: str,
    *,
    kind: str,
    raw: str,
    platform: str = "",
) -> dict[str, Any]:
    workspace_id = _workspace(request, authorization, body.writeKey)
    done = subscriptions.subscribe(
        session.connection(),
        workspace_id,
        kind=kind,
        platform=platform,
        raw=raw,
        user_id=body.userId,
        anonymous_id=body.anonymousId,
        user_agent=user_agent,
    )
    return {"profile_id": str(done.profile_id), "created": done.created}


@router.post("/subscriptions", status_code=201)
def add_subscription(
    body: SubscriptionIn,
    request: Request,
    session: DbSession,
    authorization: str | None = Header(default=None),
    user_agent: str = Header(default=""),
) -> dict[str, Any]:
    """A browser's web push subscription, bound to the visitor (userId or anonymousId)."""
    raw = orjson.dumps(body.subscription.model_dump(include={"endpoint", "keys"})).decode()
    return _register(request, session, body, authorization, user_agent, kind="webpush", raw=raw)


@router.post("/devices", status_code=201)
def add_device(
    body: DeviceIn,
    request: Request,
    session: DbSession,
    authorization: str | None = Header(default=None),
    user_agent: str = Header(default=""),
) -> dict[str, Any]:
    """An app's FCM or APNs device token, bound to the user."""
    return _register(
        request,
        session,
        body,
        authorization,
        user_agent,
        kind="mobile_push",
        raw=body.token,
        platform=body.platform,
    )
