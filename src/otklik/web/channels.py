"""Channel providers: add, edit, check, delete and test each provider (admins only).

Providers hold secrets, so every page here is for admins, and no page, error or log shows a
stored secret: the form (web/channel_form.py) shows the mask, and a mask posted back keeps the
stored value.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from otklik.channels import registry, webpush
from otklik.channels import service as channels
from otklik.channels.base import Adapter, ChannelKind
from otklik.delivery import service as delivery
from otklik.delivery.telegram_binding import connect_updates
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, Unprocessable
from otklik.kit.web import DbSession
from otklik.profiles import service as profiles
from otklik.templates import repository as templates_repo
from otklik.templates import service as templates
from otklik.web import channel_form as cf
from otklik.web.channel_form import Problem
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Admin, Console

router = APIRouter(include_in_schema=False)

KIND_LABELS: dict[str, str] = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "webpush": N_("Web push"),
    "mobile_push": N_("Mobile push"),
    "telegram": N_("Telegram"),
    "webhook": N_("Webhook"),
}
PROVIDER_LABELS: dict[str, str] = {
    "logging": N_("Logging (sends nothing; for development and tests)"),
    "email/smtp": N_("SMTP server"),
    "sms/smpp": N_("SMPP (SMS centre)"),
    "sms/http": N_("HTTP SMS gateway"),
    "telegram/bot_api": N_("Telegram Bot API"),
    "webhook/http": N_("Signed HTTP request"),
    "webpush/vapid": N_("Web push with VAPID keys"),
    "mobile_push/fcm": N_("Firebase Cloud Messaging (Android, iOS)"),
    "mobile_push/apns": N_("Apple Push Notification service"),
}
ADDRESS_HINTS: dict[str, str] = {
    "email": N_("An email address."),
    "sms": N_("A phone number with the country code, e.g. +7 912 345-67-89."),
    "webpush": N_("A browser's push subscription (the JSON its script sends)."),
    "mobile_push": N_("A device token from the app."),
    "telegram": N_("A chat id; the person must have started the bot."),
    "webhook": N_("The URL to send to."),
}
ERRORS: dict[str, str] = {
    "name_required": N_("Enter a name."),
    "name_too_long": N_("The name may have at most 100 characters."),
    "channel_exists": N_("Another provider of this channel has this name."),
    "template_required": N_("Choose a template."),
    "template_not_found": N_("No such template in this workspace."),
    "template_archived": N_("This template is archived."),
    "wrong_channel": N_("This template is for another channel."),
    "no_recipient": N_("Enter an address to send the test to."),
    "profile_not_found": N_("No customer with that email, phone or id."),
    "profile_erased": N_("This customer was erased on request."),
    "invalid_identifier": N_("Enter the customer's email, phone or id."),
}
# Which field of the test form each refusal belongs beside.
TEST_SLOTS = {
    "template_required": "template",
    "template_not_found": "template",
    "template_archived": "template",
    "wrong_channel": "template",
    "no_recipient": "address",
    "profile_not_found": "customer",
    "invalid_identifier": "customer",
    "unknown_identifier_type": "customer",
    "profile_erased": "customer",
}


def ours(code: str) -> Problem:
    return Problem(ERRORS[code])


def _channel_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise channels.ChannelNotFound("no such channel provider in this workspace") from None


def _kind(value: str) -> str:
    try:
        return ChannelKind(value).value
    except ValueError:
        raise channels.ChannelNotFound("no such channel kind") from None


def provider_label(kind: str, provider: str) -> str:
    return PROVIDER_LABELS.get(f"{kind}/{provider}") or PROVIDER_LABELS.get(provider, provider)


def _takes_receipts(kind: str, provider: str) -> bool:
    try:
        cls = registry.adapter_class(ChannelKind(kind), provider)
    except AppError:
        return False
    return cls.parse_receipts is not Adapter.parse_receipts


async def form_data(request: Request) -> FormData:
    # The config's inputs are named after the provider's fields, so the form is read whole.
    return await request.form()


Posted = Annotated[FormData, Depends(form_data)]


# --- the list ---


@router.get("/settings/channels", response_class=HTMLResponse)
def listing(request: Request, console: Admin, session: DbSession) -> HTMLResponse:
    conn = session.connection()
    rows = channels.listing(conn, console.workspace_id)
    # Providers must reach the address people's links use, when the workspace sets one.
    links = delivery.workspace_links(conn, request.app.state.delivery.links, console.workspace_id)
    groups = [
        {
            "kind": kind.value,
            "providers": registry.providers(kind),
            "rows": [
                {
                    "row": r,
                    "receipts_url": links.receipts(r.id)
                    if _takes_receipts(r.kind, r.provider)
                    else None,
                }
                for r in rows
                if r.kind == kind.value
            ],
        }
        for kind in ChannelKind
    ]
    context = {"groups": groups, "kind_labels": KIND_LABELS, "provider_label": provider_label}
    return render(request, "channels/list.html", context, console=console)


# --- add and edit ---


@dataclass
class FormState:
    kind: str
    provider: str
    row: Any | None
    name: str
    is_default: bool
    enabled: bool
    fields: list[cf.FormField]
    values: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, Problem] = field(default_factory=dict)

    @property
    def stored(self) -> dict[str, Any]:
        return (self.row.config or {}) if self.row is not None else {}

    def scrubbed(self, text: str) -> str:
        secrets = cf.secrets_of(self.fields, self.config), cf.secrets_of(self.fields, self.stored)
        return cf.scrub(text, *secrets)

    def refused(self, exc: AppError | ValidationError) -> None:
        """Put the provider's reasons beside the fields, with any secret they quote blotted."""
        found = cf.problems_of(exc, self.fields)
        self.problems.update(
            {k: Problem(self.scrubbed(p.text), p.translate, p.params) for k, p in found.items()}
        )


def _form(
    request: Request,
    console: Console,
    state: FormState,
    *,
    result: Problem | None = None,
    result_ok: bool = False,
    status: int = 200,
) -> HTMLResponse:
    base = f"/settings/channels/{state.row.id}" if state.row else "/settings/channels/new"
    context = {
        "form": state,
        "result": result,
        "result_ok": result_ok,
        "mask": cf.MASK,
        "kind_label": KIND_LABELS[state.kind],
        "provider_label": provider_label(state.kind, state.provider),
        "base": base,
    }
    return render(request, "channels/form.html", context, console=console, status=status)


@router.get("/settings/channels/new", response_class=HTMLResponse)
def new(
    request: Request, console: Admin, session: DbSession, kind: str = "", provider: str = ""
) -> HTMLResponse:
    kind = _kind(kind)
    fields = cf.fields_of(kind, provider)  # an unknown provider is refused here
    mine = [
        r for r in channels.listing(session.connection(), console.workspace_id) if r.kind == kind
    ]
    name = provider if provider not in {r.name for r in mine} else f"{provider}-{len(mine) + 1}"
    # The first provider of a channel becomes its default unless the admin says otherwise.
    first = not any(r.is_default for r in mine)
    values = cf.initial_values(fields, None)
    state = FormState(kind, provider, None, name, first, True, fields, values)
    return _form(request, console, state)


@router.get("/settings/channels/{channel_id}", response_class=HTMLResponse)
def edit(request: Request, console: Admin, session: DbSession, channel_id: str) -> HTMLResponse:
    row = channels.get(session.connection(), console.workspace_id, _channel_id(channel_id))
    fields = cf.fields_of(row.kind, row.provider)
    values = cf.initial_values(fields, row.config or {})
    state = FormState(
        row.kind, row.provider, row, row.name, row.is_default, row.enabled, fields, values
    )
    return _form(request, console, state)


def submitted(session: Session, console: Console, form: FormData, channel_id: str) -> FormState:
    """What the add or edit form posted; for an edit, masked secrets stand for stored ones."""
    row = None
    if channel_id:
        row = channels.get(session.connection(), console.workspace_id, _channel_id(channel_id))
        kind, provider = row.kind, row.provider
    else:
        kind, provider = _kind(str(form.get("kind", ""))), str(form.get("provider", ""))
    fields = cf.fields_of(kind, provider)
    config, values, problems = cf.read_config(fields, form)
    if row is not None:
        config = channels.keep_secrets(config, row.config or {})
    name = str(form.get("name", "")).strip()
    if not name:
        problems["name"] = ours("name_required")
    elif len(name) > 100:
        problems["name"] = ours("name_too_long")
    is_default, enabled = "is_default" in form, "enabled" in form
    return FormState(
        kind, provider, row, name, is_default, enabled, fields, values, config, problems
    )


def _store(session: Session, console: Console, state: FormState) -> uuid.UUID:
    conn = session.connection()
    if state.row is None:
        return channels.create(
            conn,
            console.workspace_id,
            kind=state.kind,
            provider=state.provider,
            name=state.name,
            config=state.config,
            is_default=state.is_default,
            enabled=state.enabled,
        )
    channels.change(
        conn,
        console.workspace_id,
        state.row.id,
        config=state.config,
        name=state.name,
        is_default=state.is_default,
        enabled=state.enabled,
    )
    return uuid.UUID(str(state.row.id))


def _save(
    request: Request, console: Console, session: Session, form: FormData, channel_id: str
) -> Response:
    state = submitted(session, console, form, channel_id)
    if state.problems:
        return _form(request, console, state, status=422)
    try:
        saved = _store(session, console, state)
    except AppError as exc:
        if exc.code == "channel_exists":
            state.problems["name"] = ours("channel_exists")
        else:
            state.refused(exc)
        return _form(request, console, state, status=exc.status)
    notice = "saved" if state.row is not None else "channel_added"
    return RedirectResponse(f"/settings/channels?notice={notice}#c-{saved}", status_code=303)


@router.post("/settings/channels/new", response_class=HTMLResponse)
def create(request: Request, console: Admin, session: DbSession, form: Posted) -> Response:
    return _save(request, console, session, form, "")


@router.post("/settings/channels/{channel_id}", response_class=HTMLResponse)
def save(
    request: Request, console: Admin, session: DbSession, form: Posted, channel_id: str
) -> Response:
    return _save(request, console, session, form, channel_id)


# --- helpers on the form: check a Telegram bot token, make VAPID keys ---
# They save nothing, and read in a session of their own: no write turn is held while
# Telegram answers.


def _posted(request: Request, console: Console, form: FormData, channel_id: str) -> FormState:
    with session_scope(request.app.state.engine, write=False) as session:
        return submitted(session, console, form, channel_id)


async def _bot_username(adapter: Any) -> str:
    try:
        return str(await adapter.get_me())
    finally:
        await adapter.aclose()


def _check_bot(request: Request, console: Console, form: FormData, channel_id: str) -> Response:
    state = _posted(request, console, form, channel_id)
    if (state.kind, state.provider) != ("telegram", "bot_api"):
        raise channels.ChannelNotFound("only a Telegram bot's token can be checked")
    kind = ChannelKind(state.kind)
    try:
        config = registry.parse_config(kind, state.provider, state.config)
    except ValidationError as exc:
        state.refused(exc)
        return _form(request, console, state, status=422)
    adapter = registry.adapter_class(kind, state.provider)(config)
    try:
        username = asyncio.run(_bot_username(adapter))
    except AppError as exc:
        return _form(request, console, state, result=Problem(state.scrubbed(exc.message), False))
    if not state.values.get("bot_username"):
        state.values["bot_username"] = username
    found = Problem(N_("The token works: the bot is @%(username)s."), params={"username": username})
    return _form(request, console, state, result=found, result_ok=True)


@router.post("/settings/channels/new/check-bot", response_class=HTMLResponse)
def check_new_bot(request: Request, console: Admin, form: Posted) -> Response:
    return _check_bot(request, console, form, "")


@router.post("/settings/channels/{channel_id}/check-bot", response_class=HTMLResponse)
def check_bot(request: Request, console: Admin, form: Posted, channel_id: str) -> Response:
    return _check_bot(request, console, form, channel_id)


@router.post("/settings/channels/{channel_id}/telegram-updates", response_class=HTMLResponse)
def telegram_updates(request: Request, console: Admin, form: Posted, channel_id: str) -> Response:
    """Register the webhook with Telegram (or remove it for polling), with the saved settings."""
    state = _posted(request, console, form, channel_id)
    if (state.kind, state.provider) != ("telegram", "bot_api") or state.row is None:
        raise channels.ChannelNotFound("only a saved Telegram bot has updates to connect")
    adapter = registry.build(ChannelKind.TELEGRAM, "bot_api", state.row.config or {})
    with session_scope(request.app.state.engine, write=False) as session:
        links = delivery.workspace_links(
            session.connection(), request.app.state.delivery.links, console.workspace_id
        )
    hook = links.telegram_hook(state.row.id)
    try:
        mode = asyncio.run(connect_updates(adapter, hook))
    except AppError as exc:
        return _form(request, console, state, result=Problem(state.scrubbed(exc.message), False))
    if mode == "polling":
        done = Problem(N_("Telegram will keep updates for Otklik to fetch (polling)."))
    else:
        done = Problem(N_("Telegram will send updates to %(url)s."), params={"url": hook})
    return _form(request, console, state, result=done, result_ok=True)


def _vapid(request: Request, console: Console, form: FormData, channel_id: str) -> Response:
    state = _posted(request, console, form, channel_id)
    if (state.kind, state.provider) != ("webpush", "vapid"):
        raise channels.ChannelNotFound("only a VAPID web push provider has VAPID keys")
    private, public = webpush.generate_vapid_keys()
    state.values.update(vapid_private_key=private, vapid_public_key=public)
    done = Problem(
        N_(
            "New keys are filled in; save to use them. Browsers subscribed with the old public "
            "key must subscribe again."
        )
    )
    return _form(request, console, state, result=done, result_ok=True)


@router.post("/settings/channels/new/vapid", response_class=HTMLResponse)
def vapid_new(request: Request, console: Admin, form: Posted) -> Response:
    return _vapid(request, console, form, "")


@router.post("/settings/channels/{channel_id}/vapid", response_class=HTMLResponse)
def vapid(request: Request, console: Admin, form: Posted, channel_id: str) -> Response:
    return _vapid(request, console, form, channel_id)


# --- delete ---


@router.get("/settings/channels/{channel_id}/delete", response_class=HTMLResponse)
def confirm_delete(
    request: Request, console: Admin, session: DbSession, channel_id: str
) -> HTMLResponse:
    row = channels.get(session.connection(), console.workspace_id, _channel_id(channel_id))
    context = {
        "row": row,
        "kind_label": KIND_LABELS[row.kind],
        "provider_label": provider_label(row.kind, row.provider),
    }
    return render(request, "channels/delete.html", context, console=console)


@router.post("/settings/channels/{channel_id}/delete")
def delete(request: Request, console: Admin, session: DbSession, channel_id: str) -> Response:
    channels.remove(session.connection(), console.workspace_id, _channel_id(channel_id))
    return RedirectResponse("/settings/channels?notice=channel_deleted", status_code=303)


# --- test send ---


def _test_page(
    request: Request,
    console: Console,
    session: Session,
    row: Any,
    values: dict[str, str],
    problems: dict[str, Problem] | None = None,
    status: int = 200,
) -> HTMLResponse:
    conn = session.connection()
    context = {
        "row": row,
        "templates": templates_repo.list_templates(conn, console.workspace_id, row.kind, False),
        "values": values,
        "problems": problems or {},
        "kind_label": KIND_LABELS[row.kind],
        "provider_label": provider_label(row.kind, row.provider),
        "address_hint": ADDRESS_HINTS[row.kind],
    }
    return render(request, "channels/test.html", context, console=console, status=status)


@router.get("/settings/channels/{channel_id}/test", response_class=HTMLResponse)
def test_form(
    request: Request, console: Admin, session: DbSession, channel_id: str
) -> HTMLResponse:
    row = channels.get(session.connection(), console.workspace_id, _channel_id(channel_id))
    address = console.signed.user.email if row.kind == "email" else ""
    values = {"template": "", "address": address, "customer": ""}
    return _test_page(request, console, session, row, values)


def _customer(request: Request, session: Session, console: Console, given: str) -> uuid.UUID:
    conn = session.connection()
    config = request.app.state.resolver.config_for(conn, console.workspace_id)
    scope = profiles.Scope(conn, console.workspace_id, config)
    try:
        profile_id = uuid.UUID(given)
    except ValueError:
        kind = "email" if "@" in given else "phone"
        return uuid.UUID(str(profiles.lookup(scope, kind, given)["id"]))
    return uuid.UUID(str(profiles.locate(scope, profile_id).root.id))


def _queue_test(
    request: Request, session: Session, console: Console, row: Any, values: dict[str, str]
) -> uuid.UUID:
    conn = session.connection()
    if not values["template"]:
        raise Unprocessable("choose a template", code="template_required")
    chosen = templates.get(conn, console.workspace_id, values["template"])
    if chosen.channel != row.kind:
        raise Unprocessable("the template is for another channel", code="wrong_channel")
    given = values["customer"]
    queued = delivery.queue_test(
        conn,
        console.workspace_id,
        template=str(chosen.id),
        address=values["address"],
        channel_config_id=row.id,
        profile_id=_customer(request, session, console, given) if given else None,
        requested_by=console.signed.user.email,
    )
    return queued.id


@router.post("/settings/channels/{channel_id}/test", response_class=HTMLResponse)
def send_test(
    request: Request,
    console: Admin,
    session: DbSession,
    channel_id: str,
    template: Annotated[str, Form(max_length=200)] = "",
    address: Annotated[str, Form(max_length=4000)] = "",
    customer: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    row = channels.get(session.connection(), console.workspace_id, _channel_id(channel_id))
    values = {"template": template, "address": address.strip(), "customer": customer.strip()}
    try:
        message_id = _queue_test(request, session, console, row, values)
    except AppError as exc:
        problem = ours(exc.code) if exc.code in ERRORS else Problem(exc.message, False)
        slot = TEST_SLOTS.get(exc.code, "_general")
        return _test_page(request, console, session, row, values, {slot: problem}, 422)
    request.app.state.delivery.dispatch_after_commit(session, [message_id])
    # The message's page shows it go from queued to sent, or why it did not.
    return RedirectResponse(f"/messages/{message_id}", status_code=303)
