"""Console pages: suggested duplicates, a side-by-side comparison, merging, the merge log, undo.

Reading is for every role; merging and undoing need the manage-data permission. Both writes
ask for an explicit confirmation, because a merge joins two people's histories.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from otklik.kit.errors import AppError, BadRequest
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.profiles import duplicates, merge
from otklik.profiles.service import Scope
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Console, DataManager, Viewer

router = APIRouter(include_in_schema=False)

GROUPS_LIMIT = 50
LOG_PAGE = 25
CONFIRMED = "yes"

# What people read when a merge or an undo is refused, by the domain error's code; the
# domain's own message (in English, with ids) is shown beneath as the detail.
REFUSALS: dict[str, str] = {
    "same_profile": N_("A customer cannot be merged with itself."),
    "profile_not_found": N_("No such customer in this workspace."),
    "profile_already_merged": N_(
        "One of these customers has already been merged into another one. "
        "Reload the list of duplicates and compare again."
    ),
    "profile_erased": N_("One of these customers was erased on request; it cannot be merged."),
    "merge_not_found": N_("No such merge in this workspace."),
    "already_undone": N_("This merge has already been undone."),
    "undo_order": N_(
        "The surviving customer was merged again after this merge. Undo the later merge first."
    ),
    "invalid_id": N_("The link does not name a customer or a merge; check it and try again."),
    "not_confirmed": N_("Tick the confirmation box to go ahead."),
}


def _scope(request: Request, session: Session, console: Console) -> Scope:
    conn = session.connection()
    config = request.app.state.resolver.config_for(conn, console.workspace_id)
    return Scope(conn, console.workspace_id, config)


def _uuid(value: str | None, what: str) -> uuid.UUID:
    try:
        return uuid.UUID((value or "").strip())
    except ValueError:
        raise BadRequest(f"{what} is not a valid id", code="invalid_id") from None


def _refusal(exc: AppError) -> dict[str, Any]:
    return {"code": exc.code, "text": REFUSALS.get(exc.code), "detail": exc.message}


def _not_confirmed() -> dict[str, Any]:
    return {"code": "not_confirmed", "text": REFUSALS["not_confirmed"], "detail": None}


@router.get("/duplicates", response_class=HTMLResponse)
def duplicate_list(
    request: Request,
    console: Viewer,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = GROUPS_LIMIT,
) -> HTMLResponse:
    groups = duplicates.suggestions(_scope(request, session, console), limit)
    return render(
        request,
        "merges/duplicates.html",
        {"groups": groups, "limit": limit, "more": len(groups) >= limit},
        console=console,
    )


@router.get("/duplicates/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    console: Viewer,
    session: DbSession,
    a: str | None = None,
    b: str | None = None,
) -> HTMLResponse:
    first, second = _uuid(a, "The first customer"), _uuid(b, "The second customer")
    view = duplicates.compare(_scope(request, session, console), first, second)
    return render(request, "merges/compare.html", _compare_context(view), console=console)


def _compare_context(view: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"view": view, "winner": view["suggested_winner"], "refusal": None, **extra}


@router.post("/duplicates/merge", response_class=HTMLResponse)
def merge_pair(
    request: Request,
    console: DataManager,
    session: DbSession,
    a: Annotated[str, Form()] = "",
    b: Annotated[str, Form()] = "",
    winner: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    first, second = _uuid(a, "The first customer"), _uuid(b, "The second customer")
    chosen = _uuid(winner, "The surviving customer")
    if chosen not in (first, second):
        raise BadRequest(
            "The surviving customer must be one of the two compared", code="invalid_id"
        )
    loser = second if chosen == first else first
    scope = _scope(request, session, console)
    if confirm != CONFIRMED:
        view = duplicates.compare(scope, first, second)
        refusal = _not_confirmed()
        context = _compare_context(view, winner=chosen, refusal=refusal)
        return render(request, "merges/compare.html", context, console=console, status=422)
    try:
        merge.merge_profiles(scope, chosen, loser, utc_now())
    except AppError as exc:
        # Nothing was written but the lock's version bump; drop that too.
        session.rollback()
        context = {"action": "merge", "refusal": _refusal(exc), "a": first, "b": second}
        return render(request, "merges/refused.html", context, console=console, status=exc.status)
    return RedirectResponse("/merges?notice=merged", status_code=303)


@router.get("/merges", response_class=HTMLResponse)
def merge_log(
    request: Request,
    console: Viewer,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = LOG_PAGE,
) -> HTMLResponse:
    page = merge.merge_log_page(_scope(request, session, console), limit=limit, cursor=cursor)
    context = {"page": page, "first_page": cursor is None, "limit": limit}
    return render(request, "merges/log.html", context, console=console)


@router.get("/merges/{merge_id}/undo", response_class=HTMLResponse)
def confirm_undo(
    request: Request, console: DataManager, session: DbSession, merge_id: str
) -> HTMLResponse:
    entry = merge.describe_merge(_scope(request, session, console), _uuid(merge_id, "The merge"))
    return render(request, "merges/undo.html", {"entry": entry, "refusal": None}, console=console)


@router.post("/merges/{merge_id}/undo", response_class=HTMLResponse)
def undo(
    request: Request,
    console: DataManager,
    session: DbSession,
    merge_id: str,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    mid = _uuid(merge_id, "The merge")
    scope = _scope(request, session, console)
    if confirm != CONFIRMED:
        entry = merge.describe_merge(scope, mid)
        refusal = _not_confirmed()
        return render(
            request,
            "merges/undo.html",
            {"entry": entry, "refusal": refusal},
            console=console,
            status=422,
        )
    try:
        merge.undo_merge(scope, mid, utc_now())
    except AppError as exc:
        session.rollback()
        details = exc.details if isinstance(exc.details, dict) else {}
        context = {
            "action": "undo",
            "refusal": _refusal(exc),
            "undo_first": details.get("undo_first"),
        }
        return render(request, "merges/refused.html", context, console=console, status=exc.status)
    return RedirectResponse("/merges?notice=merge_undone", status_code=303)
