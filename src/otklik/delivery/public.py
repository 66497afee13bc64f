"""Public links in messages: open pixel and click redirect; providers' receipt callbacks.

The pages people read (unsubscribe, preferences, confirmation) are in web/public.py.

No API key here: each link carries a signed token (see links.py). A bad token answers 404
with nothing learnt; tracking never fails the person's click: a redirect whose recording
fails still redirects.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from otklik.channels import registry
from otklik.channels.base import ChannelKind
from otklik.channels.telegram import TelegramConfig, verify_webhook_secret
from otklik.delivery import feedback
from otklik.delivery import repository as repo
from otklik.delivery.links import OPEN, RECEIPTS, TELEGRAM_HOOK
from otklik.delivery.runtime import DeliveryRuntime
from otklik.delivery.telegram_binding import handle_update
from otklik.kit.db import write_tx
from otklik.kit.errors import Forbidden, NotFound, Unprocessable
from otklik.kit.signing import BadToken
from otklik.kit.time import utc_now

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _runtime(request: Request) -> DeliveryRuntime:
    return request.app.state.delivery


def _agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


@router.get("/t/o/{token}.gif")
def open_pixel(token: str, request: Request) -> Response:
    rt = _runtime(request)
    try:
        message_id = rt.links.read_message(OPEN, token)
        with write_tx(rt.engine, durable=False) as conn:
            feedback.record_open(conn, message_id, utc_now(), _agent(request))
    except BadToken:
        pass  # an image must render whatever happens
    except Exception:
        log.exception("recording an open")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}")
def click(token: str, request: Request) -> Response:
    rt = _runtime(request)
    try:
        target = rt.links.read_click(token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None
    if not target.url.startswith(("http://", "https://")):
        raise NotFound("the link is malformed", code="bad_link")
    try:
        with write_tx(rt.engine, durable=False) as conn:
            feedback.record_click(conn, target.message_id, target.url, utc_now(), _agent(request))
    except Exception:
        log.exception("recording a click")
    return RedirectResponse(target.url, status_code=302, headers=NO_STORE)


MAX_HOOK_BYTES = 1024 * 1024


async def _hook(request: Request, purpose: str, token: str) -> tuple[uuid.UUID, bytes]:
    """The channel a provider's callback URL names, and the callback's body."""
    try:
        channel_id = _runtime(request).links.read_message(purpose, token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None
    body = await request.body()
    if len(body) > MAX_HOOK_BYTES:
        raise Unprocessable("callback body over 1 MB", code="too_large")
    return channel_id, body


def _setting(conn: Any, channel_id: uuid.UUID, kind: str | None = None) -> Any:
    setting = repo.channel_settings_by_id(conn, [channel_id]).get(channel_id)
    if setting is None or (kind is not None and setting.kind != kind):
        raise NotFound("that channel is no longer configured", code="bad_link")
    return setting


@router.post("/hooks/receipts/{token}")
async def receipts(token: str, request: Request) -> dict[str, int]:
    """A provider's delivery reports, bounces and complaints for one configured channel."""
    rt = _runtime(request)
    channel_id, body = await _hook(request, RECEIPTS, token)
    with write_tx(rt.engine) as conn:
        setting = _setting(conn, channel_id)
        adapter = registry.build(ChannelKind(setting.kind), setting.provider, setting.config)
        try:
            parsed = adapter.parse_receipts(body, dict(request.headers))
        except ValueError as exc:
            raise Unprocessable(f"could not read the receipt: {exc}", code="bad_receipt") from None
        matched = feedback.apply_receipts(conn, setting.workspace_id, parsed, utc_now())
    return {"received": len(parsed), "matched": matched}


@router.post("/hooks/telegram/{token}")
async def telegram_updates(token: str, request: Request) -> dict[str, str]:
    """Telegram's webhook for one bot: /start with a binding token, blocked bots."""
    rt = _runtime(request)
    channel_id, body = await _hook(request, TELEGRAM_HOOK, token)
    try:
        update = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unprocessable("the update is not JSON", code="malformed_json") from None
    with write_tx(rt.engine) as conn:
        setting = _setting(conn, channel_id, "telegram")
        config = TelegramConfig.model_validate(setting.config)
        # With a secret configured, Telegram must prove it is Telegram; the signed URL alone
        # is the guard otherwise.
        if config.webhook_secret is not None and not verify_webhook_secret(
            dict(request.headers), config
        ):
            raise Forbidden("wrong webhook secret", code="bad_secret")
        outcome = handle_update(conn, rt.links, setting.workspace_id, update)
    return {"outcome": outcome}
