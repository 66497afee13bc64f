"""Public links in messages: open pixel, click redirect, one-click unsubscribe, receipts.

No API key here: each link carries a signed token (see links.py). A bad token answers 404
with nothing learnt; tracking never fails the person's click: a redirect whose recording
fails still redirects.
"""

from __future__ import annotations

import base64
import html
import logging
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from otklik.channels import registry
from otklik.channels.base import ChannelKind
from otklik.delivery import feedback
from otklik.delivery import repository as repo
from otklik.delivery.links import OPEN, UNSUBSCRIBE
from otklik.delivery.runtime import DeliveryRuntime
from otklik.delivery.settings import DeliverySettings
from otklik.kit.db import write_tx
from otklik.kit.errors import NotFound, Unprocessable
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


PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""

TEXTS = {
    "en": {
        "ask": "Unsubscribe",
        "ask_body": "Stop receiving these messages?",
        "done": "You are unsubscribed",
        "done_body": "You will not receive these messages any more.",
        "button": "Unsubscribe",
    },
    "ru": {
        "ask": "Отписка",
        "ask_body": "Больше не получать такие сообщения?",
        "done": "Вы отписались",
        "done_body": "Такие сообщения больше не будут приходить.",
        "button": "Отписаться",
    },
}


def _lang(request: Request) -> str:
    return "ru" if request.headers.get("accept-language", "").lower().startswith("ru") else "en"


def _page(request: Request, title_key: str, body: str) -> HTMLResponse:
    lang = _lang(request)
    text = TEXTS[lang]
    return HTMLResponse(
        PAGE.format(lang=lang, title=html.escape(text[title_key]), body=body), headers=NO_STORE
    )


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A link click only asks: mail scanners follow links, so GET never unsubscribes."""
    _message_for(request, token)
    text = TEXTS[_lang(request)]
    body = (
        f"<p>{html.escape(text['ask_body'])}</p><form method=post>"
        f"<button type=submit>{html.escape(text['button'])}</button></form>"
    )
    return _page(request, "ask", body)


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """The page's button and RFC 8058 one-click (List-Unsubscribe=One-Click) both land here."""
    rt = _runtime(request)
    message_id = _message_for(request, token)
    with write_tx(rt.engine) as conn:
        row = repo.message_by_id(conn, message_id)
        if row is None:
            raise NotFound("the message no longer exists", code="bad_link")
        ws = repo.workspaces(conn, [row.workspace_id])[row.workspace_id]
        feedback.unsubscribe(
            conn, row, DeliverySettings.of(ws.delivery), "unsubscribe_link", utc_now()
        )
    return _page(request, "done", f"<p>{html.escape(TEXTS[_lang(request)]['done_body'])}</p>")


def _message_for(request: Request, token: str) -> uuid.UUID:
    try:
        return _runtime(request).links.read_message(UNSUBSCRIBE, token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None


@router.post("/hooks/receipts/{token}")
async def receipts(token: str, request: Request) -> dict[str, int]:
    """A provider's delivery reports, bounces and complaints for one configured channel."""
    rt = _runtime(request)
    try:
        channel_id = rt.links.read_message("receipts", token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None
    body = await request.body()
    if len(body) > 1024 * 1024:
        raise Unprocessable("receipt body over 1 MB", code="too_large")
    with write_tx(rt.engine) as conn:
        setting = repo.channel_settings_by_id(conn, [channel_id]).get(channel_id)
        if setting is None:
            raise NotFound("that channel no longer exists", code="bad_link")
        adapter = registry.build(ChannelKind(setting.kind), setting.provider, setting.config)
        try:
            parsed = adapter.parse_receipts(body, dict(request.headers))
        except ValueError as exc:
            raise Unprocessable(f"could not read the receipt: {exc}", code="bad_receipt") from None
        matched = feedback.apply_receipts(conn, setting.workspace_id, parsed, utc_now())
    return {"received": len(parsed), "matched": matched}
