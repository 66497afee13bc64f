"""Console pages: the message log, one message's whole story, the suppression list, and
consent recorded from the customer card.

Reading is for every role. Changing the suppression list needs the manage-messaging
permission; recording consent on the card needs edit-customers. Every read and write goes
through the same services and repositories as the REST API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from otklik.consent import repository as consent_repo
from otklik.consent import service as consent
from otklik.consent import suppression_list as imports
from otklik.delivery import log_repository as log_repo
from otklik.delivery import repository as delivery_repo
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, NotFound
from otklik.kit.pagination import encode_cursor
from otklik.kit.time import as_utc, iso, utc_now
from otklik.kit.web import DbSession
from otklik.models.message import DEFERRED, QUEUED, STATES
from otklik.profiles import card as cards
from otklik.profiles import service as profiles
from otklik.profiles.identity import EMAIL, PHONE, USER_ID
from otklik.profiles.search import display_name
from otklik.profiles.service import ProfileErased, ProfileNotFound, Scope, cursor_after
from otklik.templates import repository as template_repo
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Console, Editor, Messenger, Viewer

router = APIRouter(include_in_schema=False)

LOG_PAGE = 50
SUPPRESSION_PAGE = 50
CONFIRMED = "yes"
MESSAGE_CHANNELS = ("email", "sms", "webpush", "mobile_push", "telegram", "webhook")
SOURCES = ("transactional_api", "campaign", "journey", "test", "system")
# The reason codes offered in the log's filter; a code met on a message page also filters.
REASON_CODES = (
    "no_consent",
    "consent_pending",
    "unsubscribed",
    "topic_unsubscribed",
    "suppressed",
    "quiet_hours",
    "frequency_cap",
    "channel_not_configured",
    "channel_disabled",
    "channel_misconfigured",
    "no_address",
    "profile_gone",
    "template_missing",
    "invalid_email",
    "invalid_phone",
    "retries_exhausted",
    "hard_bounce",
)
REFUSALS: dict[str, str] = {
    "empty_address": N_("Give an address."),
    "address_too_long": N_("The address is too long."),
    "invalid_email": N_("That is not an email address."),
    "invalid_phone": N_("That is not a phone number."),
    "invalid_chat_id": N_("A Telegram chat id is a number."),
    "invalid_channel": N_("Choose a channel."),
    "not_confirmed": N_("Tick the confirmation box to go ahead."),
    "no_file": N_("Choose a CSV file to upload."),
    "file_too_large": N_("The file is larger than 5 MB; split it into smaller files."),
    "no_column": N_("The file has several columns and none is named email, phone or address."),
    "not_text": N_("The file is not a CSV text file (UTF-8 or Windows-1251)."),
    "empty_file": N_("The file has no addresses."),
}


class MessageNotFound(NotFound):
    code = "message_not_found"


class SuppressionNotFound(NotFound):
    code = "suppression_not_found"


def _scope(request: Request, conn: Connection, console: Console) -> Scope:
    config = request.app.state.resolver.config_for(conn, console.workspace_id)
    return Scope(conn, console.workspace_id, config)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def _after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    return cursor_after(cursor, uuid.UUID)


def _refusal(code: str, detail: str | None = None) -> dict[str, Any]:
    return {"code": code, "text": REFUSALS.get(code), "detail": detail}


# ---------------------------------------------------------------- the message log


def _who(scope: Scope, text: str) -> dict[str, Any]:
    """The customer filter: a profile id, an email, a phone or a user id.

    Matches the whole merged cluster (a message keeps the id it was sent to), and also
    messages sent to the typed address itself (test sends, address overrides).
    """
    found: dict[str, Any] | None = None
    address: str | None = None
    as_id = _uuid(text)
    if as_id is not None:
        try:
            found = profiles.get_profile(scope, as_id)
        except ProfileNotFound:
            found = None
    else:
        kinds = (EMAIL,) if "@" in text else (PHONE, USER_ID)
        for kind in kinds:
            try:
                found = profiles.lookup(scope, kind, text)
                break
            except AppError:
                continue
        address = imports.plain_address(text, scope.config.region)
    ids = [found["id"], *found["merged_ids"]] if found else []
    return {"profile": found, "profile_ids": ids, "address": address}


@router.get("/messages", response_class=HTMLResponse)
def message_log(
    request: Request,
    console: Viewer,
    session: DbSession,
    state: str = "",
    channel: str = "",
    reason: str = "",
    template: str = "",
    source: str = "",
    customer: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    conn = session.connection()
    templates = template_repo.list_templates(conn, console.workspace_id, None, True)
    by_id = {t.id: t for t in templates}
    template_id = _uuid(template)
    chosen = {
        "state": state if state in STATES else "",
        "channel": channel if channel in MESSAGE_CHANNELS else "",
        "reason": reason.strip()[:48],
        "template": str(template_id) if template_id in by_id else "",
        "source": source if source in SOURCES else "",
        "customer": customer.strip()[:320],
    }
    who = _who(_scope(request, conn, console), chosen["customer"]) if chosen["customer"] else None
    columns = {
        "state": chosen["state"] or None,
        "channel": chosen["channel"] or None,
        "reason_code": chosen["reason"] or None,
        "template_id": template_id if chosen["template"] else None,
        "source": chosen["source"] or None,
    }
    wanted = log_repo.LogFilter(
        columns,
        who["profile_ids"] if who else None,
        who["address"] if who else None,
    )
    rows = log_repo.log_page(
        conn, console.workspace_id, wanted, after=_after(cursor), limit=LOG_PAGE + 1
    )
    more = len(rows) > LOG_PAGE
    rows = rows[:LOG_PAGE]
    people = delivery_repo.profiles(conn, (r.profile_id for r in rows if r.profile_id))
    counts = log_repo.state_counts(conn, console.workspace_id, wanted.without("state"))
    params = {k: v for k, v in chosen.items() if v}
    next_cursor = encode_cursor([iso(rows[-1].created_at), str(rows[-1].id)]) if more else None
    context = {
        "items": [_log_item(r, by_id, people) for r in rows],
        "chosen": chosen,
        "who": who,
        "templates": templates,
        "states": STATES,
        "channels": MESSAGE_CHANNELS,
        "sources": SOURCES,
        "reason_codes": REASON_CODES,
        "counts": counts,
        "total": sum(counts.values()),
        "params": params,
        "without_state": urlencode({k: v for k, v in params.items() if k != "state"}),
        "next_query": urlencode({**params, "cursor": next_cursor}) if next_cursor else None,
        "first_page": not cursor,
    }
    return render(request, "messages/log.html", context, console=console)


def _person(row: Any | None) -> dict[str, Any] | None:
    if row is None:
        return None
    name = display_name(row.traits or {}) or row.email or row.phone
    return {"id": row.id, "name": name, "erased": row.erased_at is not None}


def _log_item(row: Any, templates: dict[uuid.UUID, Any], people: dict[uuid.UUID, Any]) -> Any:
    return {
        "m": row,
        "template": templates.get(row.template_id),
        "person": _person(people.get(row.profile_id)) if row.profile_id else None,
    }


# ---------------------------------------------------------------- one message


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_detail(
    request: Request, console: Viewer, session: DbSession, message_id: str
) -> HTMLResponse:
    conn = session.connection()
    mid = _uuid(message_id)
    row = delivery_repo.message(conn, console.workspace_id, mid) if mid else None
    if row is None:
        raise MessageNotFound("No such message in this workspace")
    template = (
        template_repo.find(conn, console.workspace_id, str(row.template_id))
        if row.template_id
        else None
    )
    provider = None
    if row.channel_config_id:
        provider = delivery_repo.channel_settings_by_id(conn, [row.channel_config_id]).get(
            row.channel_config_id
        )
    person = None
    if row.profile_id:
        person = _person(delivery_repo.profiles(conn, [row.profile_id]).get(row.profile_id))
    attempts = delivery_repo.attempts_of(conn, row.id)
    events = delivery_repo.events_of(conn, row.id)
    context = {
        "m": row,
        "template": template,
        "provider": {"name": provider.name, "provider": provider.provider} if provider else None,
        "person": person,
        "story": story(row, attempts, events),
        "next_try": row.due_at if row.state in (QUEUED, DEFERRED) else None,
    }
    return render(request, "messages/detail.html", context, console=console)


def story(row: Any, attempts: list[Any], events: list[Any]) -> list[dict[str, Any]]:
    """Created, each attempt and each event, in the order they happened."""
    lines: list[tuple[datetime, int, dict[str, Any]]] = [
        (as_utc(row.created_at), 0, {"kind": "created", "at": row.created_at})
    ]
    for a in attempts:
        took = None
        if a.finished_at is not None:
            took = int((as_utc(a.finished_at) - as_utc(a.started_at)).total_seconds() * 1000)
        lines.append(
            (as_utc(a.started_at), 1, {"kind": "attempt", "at": a.started_at, "a": a, "ms": took})
        )
    for e in events:
        detail = e.detail if isinstance(e.detail, dict) else {}
        lines.append(
            (as_utc(e.occurred_at), 2, {"kind": "event", "at": e.occurred_at, "e": e, "d": detail})
        )
    lines.sort(key=lambda line: (line[0], line[1]))
    return [line[2] for line in lines]


# ---------------------------------------------------------------- consent from the card


@router.post("/customers/{profile_id}/consents", response_class=HTMLResponse)
def record_consent(
    request: Request,
    console: Editor,
    session: DbSession,
    profile_id: str,
    channel: Annotated[str, Form()] = "",
    purpose: Annotated[str, Form()] = "marketing",
    topic: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
) -> Response:
    scope = _scope(request, session.connection(), console)
    pid = _uuid(profile_id)
    if pid is None:
        raise ProfileNotFound("No customer with that id in this workspace")
    found = profiles.locate(scope, pid)
    if found.root.erased_at is not None:
        raise ProfileErased("This customer was erased on request; consent cannot be recorded")
    if status not in ("granted", "denied"):
        raise consent.InvalidConsent("Choose whether consent was given or withdrawn")
    consent.set_consent(
        scope.conn,
        workspace_id=console.workspace_id,
        profile_id=found.root.id,
        channel=channel,
        purpose=purpose,
        topic=topic.strip(),
        status=status,
        source="console",
        settings=cards.delivery_settings(scope),
    )
    return RedirectResponse(
        f"/customers/{found.root.id}?notice=consent_saved#channels-h", status_code=303
    )


# ---------------------------------------------------------------- suppressions


def _suppression_page(
    request: Request,
    console: Console,
    conn: Connection,
    *,
    channel: str = "",
    q: str = "",
    cursor: str | None = None,
    form: dict[str, str] | None = None,
    refusal: dict[str, Any] | None = None,
    refusal_at: str = "",
    report: imports.Report | None = None,
    status: int = 200,
) -> HTMLResponse:
    channel = channel if channel in imports.CHANNELS else ""
    q = q.strip()[:320]
    rows = consent_repo.suppression_page(
        conn,
        console.workspace_id,
        channel=channel or None,
        q=q or None,
        after=_after(cursor),
        limit=SUPPRESSION_PAGE + 1,
    )
    more = len(rows) > SUPPRESSION_PAGE
    rows = rows[:SUPPRESSION_PAGE]
    params = {k: v for k, v in (("channel", channel), ("q", q)) if v}
    next_cursor = encode_cursor([iso(rows[-1].created_at), str(rows[-1].id)]) if more else None
    context = {
        "rows": rows,
        "channel": channel,
        "q": q,
        "channels": imports.CHANNELS,
        "total": consent_repo.count_suppressions(conn, console.workspace_id),
        "next_query": urlencode({**params, "cursor": next_cursor}) if next_cursor else None,
        "first_query": urlencode(params),
        "first_page": not cursor,
        "form": form or {"channel": channel or "email", "address": "", "detail": ""},
        "refusal": refusal,
        "refusal_at": refusal_at,
        "refusals": REFUSALS,
        "report": report,
    }
    return render(request, "messages/suppressions.html", context, console=console, status=status)


@router.get("/suppressions", response_class=HTMLResponse)
def suppression_list(
    request: Request,
    console: Viewer,
    session: DbSession,
    channel: str = "",
    q: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    conn = session.connection()
    return _suppression_page(request, console, conn, channel=channel, q=q, cursor=cursor)


@router.post("/suppressions", response_class=HTMLResponse)
def add_suppression(
    request: Request,
    console: Messenger,
    session: DbSession,
    channel: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    detail: Annotated[str, Form()] = "",
) -> Response:
    conn = session.connection()
    try:
        value = imports.normalise(channel, address, console.workspace.default_region)
    except imports.AddressRefused as exc:
        form = {"channel": channel, "address": address, "detail": detail}
        refusal = _refusal(exc.code)
        return _suppression_page(
            request, console, conn, form=form, refusal=refusal, refusal_at="add", status=422
        )
    added = consent.suppress(conn, console.workspace_id, channel, value, "manual", detail.strip())
    notice = "suppression_added" if added else "suppression_exists"
    query = urlencode({"notice": notice, "channel": channel, "q": value})
    return RedirectResponse(f"/suppressions?{query}", status_code=303)


def _listed(conn: Connection, console: Console, channel: str, address: str) -> Any:
    found = consent_repo.suppressed(conn, console.workspace_id, [(channel, address)])
    row = found.get((channel, address))
    if row is None:
        raise SuppressionNotFound("That address is not on the suppression list")
    return row


@router.get("/suppressions/remove", response_class=HTMLResponse)
def confirm_removal(
    request: Request, console: Messenger, session: DbSession, channel: str = "", address: str = ""
) -> HTMLResponse:
    row = _listed(session.connection(), console, channel, address)
    return render(
        request, "messages/suppression_remove.html", {"s": row, "refusal": None}, console=console
    )


@router.post("/suppressions/remove", response_class=HTMLResponse)
def remove_suppression(
    request: Request,
    console: Messenger,
    session: DbSession,
    channel: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    conn = session.connection()
    row = _listed(conn, console, channel, address)
    if confirm != CONFIRMED:
        context = {"s": row, "refusal": _refusal("not_confirmed")}
        return render(
            request, "messages/suppression_remove.html", context, console=console, status=422
        )
    consent_repo.remove_suppression(conn, console.workspace_id, channel, address)
    return RedirectResponse("/suppressions?notice=suppression_removed", status_code=303)


@router.post("/suppressions/import", response_class=HTMLResponse)
def import_suppressions(
    request: Request,
    console: Messenger,
    channel: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    # Reading and checking the file happens before the write session: on SQLite holding the
    # write turn meanwhile would stall ingest.
    engine = request.app.state.engine
    refusal: dict[str, Any] | None = None
    report: imports.Report | None = None
    if channel not in imports.CHANNELS:
        refusal = _refusal("invalid_channel")
    elif file is None or not file.filename:
        refusal = _refusal("no_file")
    else:
        data = file.file.read(imports.MAX_BYTES + 1)
        try:
            report = imports.parse(data, channel, console.workspace.default_region)
        except imports.FileRefused as exc:
            refusal = _refusal(exc.code)
    if report is not None and report.addresses:
        source = (file.filename or "")[:200] if file else ""
        with session_scope(engine) as session:
            report.added = imports.store(
                session.connection(), console.workspace_id, channel, report, source, utc_now()
            )
    with session_scope(engine, write=False) as session:
        return _suppression_page(
            request,
            console,
            session.connection(),
            channel=channel if report is not None else "",
            refusal=refusal,
            refusal_at="import",
            report=report,
            status=422 if refusal else 200,
        )
