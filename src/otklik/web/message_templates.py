"""Message templates: list, edit with live preview, versions and test sends.

The editor is one ordinary form (saving works without JavaScript); htmx posts the same form,
unsaved, to /templates/preview while the person types, and swaps in the rendered result with
SMS parts and length counts. Every save is a new version, checked first: a broken template
comes back (422) with the error at its field and line. The whole area needs manage_messaging.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from otklik.delivery import service as delivery
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, Unprocessable
from otklik.kit.web import DbSession
from otklik.profiles import service as profiles
from otklik.templates import preview as previews
from otklik.templates import repository as repo
from otklik.templates import service
from otklik.templates.content import ALLOWED, CHANNELS
from otklik.templates.rendering import TemplateError
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Console, Messenger

router = APIRouter(include_in_schema=False)

CHANNEL_LABELS = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "telegram": N_("Telegram"),
    "webpush": N_("Web push"),
    "mobile_push": N_("Mobile push"),
    "webhook": N_("Webhook"),
}
PURPOSE_LABELS = {
    "marketing": N_("Marketing"),
    "service": N_("Service"),
    "transactional": N_("Transactional"),
}
# The editor's field order; each channel shows the ones content.ALLOWED gives it.
FIELD_ORDER = (
    *("subject", "title", "preheader", "body_format", "body"),
    *("text", "photo", "url", "icon", "buttons"),
)
MAX_FIELD_CHARS = 200_000
MAX_JSON_CHARS = 32_000

MESSAGES = {
    "missing_field": N_("This field is required."),
    "unknown_field": N_("This channel has no such field."),
    "invalid_field": N_("This value is not valid."),
    "invalid_key": N_("Use lower-case letters, digits, '.', '-' and '_' (up to 100)."),
    "template_exists": N_("A template with this key exists already."),
    "invalid_purpose": N_("Choose a purpose from the list."),
    "invalid_topic": N_("Choose a topic from the list."),
    "name_too_long": N_("The name may have at most 200 characters."),
    "too_long": N_("This field is too long."),
    "template_error": N_("The template cannot be read."),
    "template_unsafe": N_("This is not allowed in templates."),
    "template_render_failed": N_("The template failed while rendering."),
    "invalid_buttons": N_("Write one row of buttons a line: text | https://link (|| between)."),
    "invalid_json": N_('Enter a JSON object, such as {"order_id": 42}.'),
    "customer_not_found": N_("No customer with this email, phone, user id or id."),
    "no_recipient": N_("Enter an address to send the test to."),
}


@dataclass(frozen=True)
class FieldError:
    text: str  # marked for translation; shown with `_()`
    line: int | None = None
    detail: str = ""  # the template engine's own words (not translated)


Errors = dict[str, FieldError]


async def _form_values(request: Request) -> dict[str, str]:
    # Read in the event loop (the CSRF check has parsed it already); the endpoint is sync.
    form = await request.form()
    return {k: v.replace("\r\n", "\n") for k, v in form.items() if isinstance(v, str)}


FormValues = Annotated[dict[str, str], Depends(_form_values)]


def fields_of(channel: str) -> list[str]:
    return [name for name in FIELD_ORDER if name in ALLOWED[channel]]


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise Unprocessable("Choose one of the channels in the list", code="invalid_channel")
    return channel


def _template(conn: Connection, console: Console, template_id: str) -> Any:
    try:
        ref = str(uuid.UUID(template_id))
    except ValueError:
        raise service.TemplateNotFound("No template with that id in this workspace") from None
    return service.get(conn, console.workspace_id, ref)


# --- form <-> content ---


def buttons_from_text(source: str) -> list[list[dict[str, str]]]:
    """Rows of buttons from lines like `Open | https://… || Help | https://…`."""
    rows: list[list[dict[str, str]]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        if not line.strip():
            continue
        row = []
        for piece in line.split("||"):
            text, bar, url = piece.rpartition("|")
            if not bar or not text.strip() or not url.strip():
                raise TemplateError(
                    "a button is `text | url`",
                    code="invalid_buttons",
                    details={"field": "buttons", "line": number, "message": line.strip()},
                )
            row.append({"text": text.strip(), "url": url.strip()})
        rows.append(row)
    return rows


def buttons_to_text(buttons: Any) -> str:
    if not isinstance(buttons, list):
        return ""
    lines = [
        " || ".join(f"{b.get('text', '')} | {b.get('url', '')}" for b in row) for row in buttons
    ]
    return "\n".join(lines)


def content_from(channel: str, form: dict[str, str]) -> dict[str, Any]:
    """The content dict from the editor's fields; empty optional fields are left out."""
    content: dict[str, Any] = {}
    for name in fields_of(channel):
        value = form.get(name, "")
        if len(value) > MAX_FIELD_CHARS:
            raise TemplateError("too long", code="too_long", details={"field": name})
        if name == "body_format":
            content[name] = value or "html"
        elif name == "buttons":
            if value.strip():
                content[name] = buttons_from_text(value)
        elif value.strip():
            content[name] = value
    return content


def values_of(channel: str, content: dict[str, Any]) -> dict[str, str]:
    """The editor's field values for stored content."""
    values = {name: str(content.get(name) or "") for name in fields_of(channel)}
    if "buttons" in values:
        values["buttons"] = buttons_to_text(content.get("buttons"))
    if "body_format" in values:
        values["body_format"] = values["body_format"] or "html"
    return values


def errors_of(exc: AppError) -> Errors:
    details = exc.details if isinstance(exc.details, dict) else {}
    where = {"template_exists": "key", "invalid_key": "key", "invalid_purpose": "purpose"}
    field = str(details.get("field") or where.get(exc.code) or "_form")
    text = MESSAGES.get(exc.code, MESSAGES["invalid_field"])
    detail = str(details.get("message") or "") if isinstance(exc, TemplateError) else ""
    if isinstance(exc, TemplateError) and exc.code not in MESSAGES:
        detail = detail or exc.message
    line = details.get("line")
    return {field: FieldError(text, line if isinstance(line, int) else None, detail)}


def _json_object(form: dict[str, str], name: str, errors: Errors) -> dict[str, Any] | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw) if len(raw) <= MAX_JSON_CHARS else None
    except ValueError as exc:
        errors[name] = FieldError(MESSAGES["invalid_json"], detail=str(exc))
        return None
    if not isinstance(value, dict):
        errors[name] = FieldError(MESSAGES["invalid_json"])
        return None
    return value


def _customer(
    request: Request, conn: Connection, console: Console, ref: str, errors: Errors, field: str
) -> Any | None:
    """A real customer's (root) profile row by email, phone, user id or profile id."""
    ref = ref.strip()
    if not ref:
        return None
    config = request.app.state.resolver.config_for(conn, console.workspace_id)
    scope = profiles.Scope(conn, console.workspace_id, config)
    try:
        return profiles.locate(scope, uuid.UUID(ref)).root
    except (ValueError, profiles.ProfileNotFound):
        pass
    kinds = ("email",) if "@" in ref else ("user_id", "phone")
    for kind in kinds:
        try:
            found = profiles.lookup(scope, kind, ref)
        except AppError:
            continue
        return profiles.locate(scope, found["id"]).root
    errors[field] = FieldError(MESSAGES["customer_not_found"])
    return None


def preview_context(
    request: Request, conn: Connection, console: Console, channel: str, form: dict[str, str]
) -> dict[str, Any]:
    """What the preview fragment shows for the editor's current (unsaved) fields."""
    errors: Errors = {}
    person = _customer(
        request, conn, console, form.get("preview_customer", ""), errors, "preview_customer"
    )
    data = _json_object(form, "preview_data", errors)
    event = _json_object(form, "preview_event", errors)
    out: dict[str, Any] = {"channel": channel, "input_errors": errors, "real_customer": person}
    if person is None:
        person = previews.sample_person(console.workspace.default_region)
    try:
        content = content_from(channel, form)
        out["preview"] = previews.render(
            conn, console.workspace_id, channel, content, profile=person, data=data, event=event
        )
    except TemplateError as exc:
        out["template_errors"] = errors_of(exc)
    out["person"] = person
    return out


# --- pages ---


@router.get("/templates", response_class=HTMLResponse)
def template_list(
    request: Request, console: Messenger, session: DbSession, channel: str = ""
) -> HTMLResponse:
    chosen = channel if channel in CHANNELS else ""
    rows = repo.list_templates(session.connection(), console.workspace_id, chosen or None, False)
    context = {"rows": rows, "channel": chosen, **_labels()}
    return render(request, "message_templates/list.html", context, console=console)


def _labels() -> dict[str, Any]:
    return {"channels": CHANNEL_LABELS, "purposes": PURPOSE_LABELS}


def _editor(
    request: Request,
    console: Console,
    conn: Connection,
    *,
    channel: str,
    form: dict[str, str],
    row: Any | None = None,
    errors: Errors | None = None,
    test_errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    topics = previews.workspace_info(conn, console.workspace_id).settings.topics
    context = {
        **_labels(),
        "row": row,
        "channel": channel,
        "fields": fields_of(channel),
        "form": form,
        "errors": errors or {},
        "test_errors": test_errors or {},
        "topics": [(t.key, t.name) for t in topics],
        "versions": repo.versions(conn, row.id) if row is not None else [],
        **preview_context(request, conn, console, channel, form),
    }
    name = "message_templates/editor.html"
    return render(request, name, context, console=console, status=status)


def _form_of(row: Any, content: dict[str, Any]) -> dict[str, str]:
    meta = {"name": row.name, "key": row.key, "purpose": row.purpose, "topic": row.topic}
    return {**meta, **values_of(row.channel, content)}


@router.get("/templates/new", response_class=HTMLResponse)
def new_template(
    request: Request, console: Messenger, session: DbSession, channel: str = "email"
) -> HTMLResponse:
    channel = _check_channel(channel)
    purpose = "transactional" if channel == "webhook" else "marketing"
    form = {"purpose": purpose, **values_of(channel, {})}
    return _editor(request, console, session.connection(), channel=channel, form=form)


@router.post("/templates/preview", response_class=HTMLResponse)
def preview_fragment(request: Request, console: Messenger, form: FormValues) -> HTMLResponse:
    channel = _check_channel(form.get("channel", ""))
    # A read-only session: a preview on every pause in typing must not queue for the writer.
    with session_scope(request.app.state.engine, write=False) as session:
        context = preview_context(request, session.connection(), console, channel, form)
        return render(request, "message_templates/_preview.html", context, console=console)


def _meta_errors(form: dict[str, str], topics: list[str]) -> Errors:
    errors: Errors = {}
    if len(form.get("name", "")) > 200:
        errors["name"] = FieldError(MESSAGES["name_too_long"])
    if form.get("topic") and form["topic"] not in topics:
        errors["topic"] = FieldError(MESSAGES["invalid_topic"])
    return errors


def _topic_keys(conn: Connection, console: Console, current: str = "") -> list[str]:
    topics = previews.workspace_info(conn, console.workspace_id).settings.topics
    return [t.key for t in topics] + ([current] if current else [])


@router.post("/templates", response_class=HTMLResponse)
def create_template(
    request: Request, console: Messenger, session: DbSession, form: FormValues
) -> Response:
    conn = session.connection()
    channel = _check_channel(form.get("channel", ""))
    errors = _meta_errors(form, _topic_keys(conn, console))
    template_id: uuid.UUID | None = None
    try:
        data = service.TemplateIn(
            key=form.get("key", "").strip(),
            name=form.get("name", "").strip(),
            channel=channel,
            purpose=form.get("purpose", ""),
            topic=form.get("topic", ""),
            content=content_from(channel, form),
        )
        if not errors:
            author = console.signed.user.email
            template_id = service.create(conn, console.workspace_id, data, author)
    except AppError as exc:
        errors.update(errors_of(exc))
    if template_id is None:
        return _editor(
            request, console, conn, channel=channel, form=form, errors=errors, status=422
        )
    return RedirectResponse(f"/templates/{template_id}?notice=template_created", status_code=303)


@router.get("/templates/{template_id}", response_class=HTMLResponse)
def edit_template(
    request: Request, console: Messenger, session: DbSession, template_id: str
) -> HTMLResponse:
    conn = session.connection()
    row = _template(conn, console, template_id)
    form = _form_of(row, service.content_of(conn, row))
    return _editor(request, console, conn, channel=row.channel, form=form, row=row)


@router.post("/templates/{template_id}", response_class=HTMLResponse)
def save_template(
    request: Request, console: Messenger, session: DbSession, template_id: str, form: FormValues
) -> Response:
    conn = session.connection()
    row = _template(conn, console, template_id)
    errors = _meta_errors(form, _topic_keys(conn, console, row.topic))
    form = {**form, "key": row.key}
    try:
        content = content_from(row.channel, form)
    except TemplateError as exc:
        errors.update(errors_of(exc))
    if not errors:
        meta = {
            "name": form.get("name", "").strip() or row.name,
            "purpose": form.get("purpose", row.purpose),
            "topic": form.get("topic", ""),
        }
        same_meta = all(getattr(row, k) == v for k, v in meta.items())
        if same_meta and content == service.content_of(conn, row):
            return RedirectResponse(f"/templates/{row.id}?notice=template_unchanged", 303)
        try:
            author = console.signed.user.email
            service.save_version(conn, console.workspace_id, str(row.id), content, author, **meta)
        except AppError as exc:
            errors.update(errors_of(exc))
    if errors:
        return _editor(
            request,
            console,
            conn,
            channel=row.channel,
            form=form,
            row=row,
            errors=errors,
            status=422,
        )
    return RedirectResponse(f"/templates/{row.id}?notice=template_saved", status_code=303)


@router.get("/templates/{template_id}/versions/{number}", response_class=HTMLResponse)
def version_page(
    request: Request, console: Messenger, session: DbSession, template_id: str, number: int
) -> HTMLResponse:
    conn = session.connection()
    row = _template(conn, console, template_id)
    content = _version_content(conn, row, number)
    found = next((v for v in repo.versions(conn, row.id) if v.version == number), None)
    form = values_of(row.channel, content)
    context = {
        **_labels(),
        "row": row,
        "number": number,
        "version": found,
        "fields": fields_of(row.channel),
        "form": form,
        **preview_context(request, conn, console, row.channel, form),
    }
    return render(request, "message_templates/version.html", context, console=console)


@router.post("/templates/{template_id}/versions/{number}/restore")
def restore_version(
    request: Request, console: Messenger, session: DbSession, template_id: str, number: int
) -> Response:
    conn = session.connection()
    row = _template(conn, console, template_id)
    content = _version_content(conn, row, number)
    service.save_version(
        conn, console.workspace_id, str(row.id), content, console.signed.user.email
    )
    return RedirectResponse(f"/templates/{row.id}?notice=template_restored", status_code=303)


@router.post("/templates/{template_id}/test", response_class=HTMLResponse)
def test_send(
    request: Request, console: Messenger, session: DbSession, template_id: str, form: FormValues
) -> Response:
    conn = session.connection()
    row = _template(conn, console, template_id)
    errors: Errors = {}
    address = form.get("test_address", "").strip()
    person = _customer(
        request, conn, console, form.get("test_customer", ""), errors, "test_customer"
    )
    if not address:
        errors["test_address"] = FieldError(MESSAGES["no_recipient"])
    if errors:
        return _test_failed(request, console, session, row, form, errors)
    queued = delivery.queue_test(
        conn,
        console.workspace_id,
        template=str(row.id),
        address=address[:320],
        profile_id=person.id if person is not None else None,
        version=row.current_version,
        requested_by=console.signed.user.email,
    )
    request.app.state.delivery.dispatch_after_commit(session, [queued.id])
    return RedirectResponse(f"/messages/{queued.id}", status_code=303)


def _version_content(conn: Connection, row: Any, number: int) -> dict[str, Any]:
    if number < 1:  # content_of reads 0 as "the current one"
        raise service.TemplateNotFound("This template has no such version")
    return service.content_of(conn, row, number)


def _test_failed(
    request: Request,
    console: Console,
    session: Session,
    row: Any,
    given: dict[str, str],
    errors: Errors,
) -> HTMLResponse:
    conn = session.connection()
    form = {**_form_of(row, service.content_of(conn, row)), **_pick(given, "test_")}
    return _editor(
        request,
        console,
        conn,
        channel=row.channel,
        form=form,
        row=row,
        test_errors=errors,
        status=422,
    )


def _pick(form: dict[str, str], prefix: str) -> dict[str, str]:
    return {k: v for k, v in form.items() if k.startswith(prefix)}
