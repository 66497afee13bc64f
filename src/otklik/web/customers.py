"""Console pages: the customer list and search, the customer card, its timeline and events.

Reading is for every role; editing a trait needs the edit-customers permission. The list is
one GET form, so it works without JavaScript; htmx asks for the results fragment alone
(`HX-Request`) while the person types, and pushes the URL so Back and reload keep the search.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from otklik.kit.errors import AppError
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.profiles import card as cards
from otklik.profiles import search
from otklik.profiles.service import ProfileNotFound, Scope
from otklik.web import segments
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Console, Editor, Viewer

router = APIRouter(include_in_schema=False)

SEEN_CHOICES = (1, 7, 30, 90, 365)
# What people read when a trait edit is refused, by the error's code.
TRAIT_ERRORS: dict[str, str] = {
    "invalid_key": N_("Give the trait a name of 1 to 100 characters, not starting with $."),
    "invalid_number": N_("The value is not a number."),
    "invalid_boolean": N_("For a yes/no trait, enter true or false."),
    "invalid_json": N_("The value is not valid JSON."),
    "invalid_kind": N_("Choose what kind of value this is."),
    "trait_value_too_long": N_("The value is too long (at most 10,000 characters)."),
    "profile_erased": N_("This customer was erased on request; their traits cannot be changed."),
}


def _scope(request: Request, session: Session, console: Console) -> Scope:
    conn = session.connection()
    config = request.app.state.resolver.config_for(conn, console.workspace_id)
    return Scope(conn, console.workspace_id, config)


def _profile_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProfileNotFound("No customer with that id in this workspace") from None


def _fragment(request: Request) -> bool:
    """An htmx swap wants the fragment; a history restore after reload wants the whole page."""
    headers = request.headers
    return headers.get("hx-request") == "true" and not headers.get("hx-history-restore-request")


def _seen_days(value: str) -> int | None:
    try:
        days = int(value)
    except ValueError:
        return None
    return days if days in SEEN_CHOICES else None


@router.get("/customers", response_class=HTMLResponse)
def customer_list(
    request: Request,
    console: Viewer,
    session: DbSession,
    q: str = "",
    identified: bool = False,
    has_email: bool = False,
    has_phone: bool = False,
    has_orders: bool = False,
    seen: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    filters = search.parse_filters(
        identified=identified,
        has_email=has_email,
        has_phone=has_phone,
        has_orders=has_orders,
        seen_days=_seen_days(seen),
    )
    page = search.customers_page(
        _scope(request, session, console),
        q=q,
        filters=filters,
        cursor=cursor,
        now=utc_now(),
    )
    params = _list_params(search.clean(q), filters)
    context = {
        "page": page,
        "q": search.clean(q),
        "filters": filters,
        "seen_choices": SEEN_CHOICES,
        "params": params,
        "query_string": urlencode(params),
        "first_page": not cursor,
    }
    name = "customers/_results.html" if _fragment(request) else "customers/list.html"
    return render(request, name, context, console=console)


def _list_params(q: str, filters: search.Filters) -> dict[str, str]:
    params = {"q": q} if q else {}
    for key in ("identified", "has_email", "has_phone", "has_orders"):
        if getattr(filters, key):
            params[key] = "1"
    if filters.seen_days:
        params["seen"] = str(filters.seen_days)
    return params


def _card_page(
    request: Request,
    console: Console,
    scope: Scope,
    profile_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    card = cards.card(scope, profile_id)
    cluster = [card["profile"]["id"], *card["profile"]["merged_ids"]]
    context = {
        **card,
        "segments": segments.current_segments(scope.conn, scope.workspace_id, cluster),
        "trait_kinds": cards.TRAIT_KINDS,
        "form": {"key": "", "kind": "string", "value": ""},
        "error": None,
        **extra,
    }
    return render(request, "customers/card.html", context, console=console, status=status)


@router.get("/customers/{profile_id}", response_class=HTMLResponse)
def customer_card(
    request: Request, console: Viewer, session: DbSession, profile_id: str
) -> Response:
    scope = _scope(request, session, console)
    pid = _profile_id(profile_id)
    root = cards.surviving_id(scope, pid)
    if root is not None:
        return RedirectResponse(f"/customers/{root}", status_code=303)
    return _card_page(request, console, scope, pid)


@router.get("/customers/{profile_id}/timeline", response_class=HTMLResponse)
def customer_timeline(
    request: Request,
    console: Viewer,
    session: DbSession,
    profile_id: str,
    cursor: str | None = None,
) -> HTMLResponse:
    scope = _scope(request, session, console)
    pid = _profile_id(profile_id)
    page = cards.timeline(scope, pid, cursor=cursor)
    context = {"timeline": page, "profile_id": pid}
    if _fragment(request):
        return render(request, "customers/_timeline_items.html", context, console=console)
    profile = cards.service.get_profile(scope, pid)
    context = {
        **context,
        "profile": profile,
        "display_name": search.display_name(profile["traits"]),
    }
    return render(request, "customers/timeline.html", context, console=console)


@router.get("/customers/{profile_id}/events/{seq}", response_class=HTMLResponse)
def customer_event(
    request: Request, console: Viewer, session: DbSession, profile_id: str, seq: int
) -> HTMLResponse:
    scope = _scope(request, session, console)
    pid = _profile_id(profile_id)
    event = cards.event_detail(scope, pid, seq)
    profile = cards.service.get_profile(scope, pid)
    context = {
        "event": event,
        "profile": profile,
        "display_name": search.display_name(profile["traits"]),
    }
    return render(request, "customers/event.html", context, console=console)


@router.post("/customers/{profile_id}/traits", response_class=HTMLResponse)
def edit_trait(
    request: Request,
    console: Editor,
    session: DbSession,
    profile_id: str,
    key: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "string",
    value: Annotated[str, Form()] = "",
) -> Response:
    scope = _scope(request, session, console)
    pid = _profile_id(profile_id)
    try:
        view = cards.edit_trait(scope, pid, key=key, kind=kind, raw=value, now=utc_now())
    except AppError as exc:
        if exc.code not in TRAIT_ERRORS:
            raise
        # Nothing was written but perhaps the resolver lock's version bump; drop that too.
        session.rollback()
        scope = _scope(request, session, console)
        error = {"code": exc.code, "text": TRAIT_ERRORS[exc.code]}
        form = {"key": key, "kind": kind, "value": value}
        return _card_page(request, console, scope, pid, status=422, error=error, form=form)
    return RedirectResponse(f"/customers/{view['id']}?notice=traits_saved#traits", status_code=303)
