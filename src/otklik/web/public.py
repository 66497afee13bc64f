"""Pages people reach from links in messages: unsubscribe, preference centre, confirmation.

No sign-in: each link carries a signed token (delivery/links.py), and a bad one is a 404.
An unsubscribe link only asks on GET (mail scanners follow links); the page's button and
RFC 8058 one-click POSTs do the unsubscribing.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from otklik.consent import preferences
from otklik.delivery import feedback
from otklik.delivery import repository as repo
from otklik.delivery.links import PREFERENCES, UNSUBSCRIBE, Links
from otklik.delivery.settings import DeliverySettings
from otklik.kit.db import read_tx, write_tx
from otklik.kit.errors import NotFound
from otklik.kit.signing import BadToken
from otklik.kit.time import utc_now
from otklik.web.render import render

router = APIRouter(include_in_schema=False)
# Links in mail must not leak the token to the sites a page links to.
HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _links(request: Request) -> Links:
    return request.app.state.delivery.links


def _read(request: Request, purpose: str, token: str) -> uuid.UUID:
    try:
        return _links(request).read_message(purpose, token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None


def _page(
    request: Request, name: str, context: dict[str, object], status: int = 200
) -> HTMLResponse:
    return render(request, f"public/{name}", context, status=status, headers=HEADERS)


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    message_id = _read(request, UNSUBSCRIBE, token)
    engine = request.app.state.engine
    with read_tx(engine) as conn:
        row = repo.message_by_id(conn, message_id)
        if row is None:
            raise NotFound("the message no longer exists", code="bad_link")
        ws = repo.workspaces(conn, [row.workspace_id])[row.workspace_id]
    prefs_url = _links(request).preferences(row.profile_id) if row.profile_id else ""
    return _page(
        request,
        "unsubscribe.html",
        {"done": False, "workspace": ws.name, "channel": row.channel, "preferences_url": prefs_url},
    )


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request) -> HTMLResponse:
    message_id = _read(request, UNSUBSCRIBE, token)
    with write_tx(request.app.state.engine) as conn:
        row = repo.message_by_id(conn, message_id)
        if row is None:
            raise NotFound("the message no longer exists", code="bad_link")
        ws = repo.workspaces(conn, [row.workspace_id])[row.workspace_id]
        settings = DeliverySettings.of(ws.delivery)
        topic = feedback.unsubscribe(conn, row, settings, "unsubscribe_link", utc_now())
    names = {t.key: t.name for t in settings.topics}
    prefs_url = _links(request).preferences(row.profile_id) if row.profile_id else ""
    return _page(
        request,
        "unsubscribe.html",
        {
            "done": True,
            "workspace": ws.name,
            "channel": row.channel,
            "topic": names.get(topic, ""),
            "preferences_url": prefs_url,
        },
    )


@router.get("/p/{token}")
def preference_centre(token: str, request: Request) -> HTMLResponse:
    profile_id = _read(request, PREFERENCES, token)
    with read_tx(request.app.state.engine) as conn:
        prefs = preferences.load(conn, profile_id)
    return _page(request, "preferences.html", {"prefs": prefs, "saved": False})


@router.post("/p/{token}")
async def save_preferences(token: str, request: Request) -> HTMLResponse:
    profile_id = _read(request, PREFERENCES, token)
    form = await request.form()
    with write_tx(request.app.state.engine) as conn:
        prefs = preferences.load(conn, profile_id)
        channels, topics = preferences.form_choices(form, prefs)
        preferences.save(conn, prefs, channels, topics)
        prefs = preferences.load(conn, profile_id)
    return _page(request, "preferences.html", {"prefs": prefs, "saved": True})


@router.get("/c/{token}")
def confirm_subscription(token: str, request: Request) -> HTMLResponse:
    try:
        profile_id, channel, issued = _links(request).read_confirm(token)
    except BadToken as exc:
        raise NotFound(str(exc), code="bad_link") from None
    with write_tx(request.app.state.engine) as conn:
        workspace = preferences.confirm(conn, profile_id, channel, issued)
    prefs_url = _links(request).preferences(profile_id)
    return _page(request, "confirmed.html", {"workspace": workspace, "preferences_url": prefs_url})
