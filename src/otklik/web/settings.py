"""Workspace settings for admins: name, time zone, region, currency; API keys; users.

A new key's token is on the one page that answers its creation and nowhere else: only a hash
is stored, and every other page shows the key's prefix.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Annotated, Any

from babel import Locale
from babel.numbers import get_currency_name
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.kit.errors import AppError
from otklik.kit.web import DbSession
from otklik.users import passwords
from otklik.users import service as users
from otklik.users.roles import ROLES
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Admin, Console
from otklik.workspaces import service as workspaces
from otklik.workspaces.keys import KINDS, WRITE

router = APIRouter(include_in_schema=False)

PLACEHOLDER_KEY = "<WRITE_KEY>"

FIELD_ERRORS = {
    "name_required": N_("Enter a name."),
    "name_too_long": N_("The name may have at most 200 characters."),
    "unknown_timezone": N_(
        "Choose a time zone from the list (an IANA name such as Europe/Moscow)."
    ),
    "unknown_region": N_("Choose a region from the list (a two-letter code such as RU)."),
    "unknown_currency": N_("Choose a currency from the list (an ISO 4217 code such as RUB)."),
}

USER_ERRORS = {
    users.LastAdmin.code: N_(
        "A workspace must keep at least one admin. Make another member an admin first."
    ),
    users.UserExists.code: N_("This person is already a member of this workspace."),
    users.InvalidEmail.code: N_("This is not a valid email address."),
    users.UserNotFound.code: N_("No such user in this workspace."),
    users.UnknownRole.code: N_("Choose one of the roles in the list."),
    passwords.WeakPassword.code: N_(
        "A new account needs a password of at least 10 characters that is not too simple."
    ),
}

KEY_ERRORS = {
    "invalid_key_kind": N_("Choose a write key or a secret key."),
    "key_not_found": N_("No active key with that id in this workspace."),
}


# --- choices for the selects, named in the reader's language ---


@cache
def region_choices(locale: str) -> list[tuple[str, str]]:
    names = Locale.parse(locale).territories
    return sorted(
        ((code, f"{names.get(code, code)} ({code})") for code in workspaces.regions()),
        key=lambda choice: choice[1],
    )


@cache
def currency_choices(locale: str) -> list[tuple[str, str]]:
    return [
        (code, f"{code} · {get_currency_name(code, locale=locale)}")
        for code in workspaces.currencies()
    ]


def sdk_context(request: Request) -> dict[str, str]:
    """Where SDKs should send events, as this request reached the server (proxies included)."""
    base = str(request.base_url).rstrip("/")
    scheme, _, rest = base.partition("://")
    return {"base_url": base, "api_host": f"{rest}/v1", "protocol": scheme}


# --- general settings ---


def _general(
    request: Request,
    console: Console,
    values: workspaces.WorkspaceSettings,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "values": values,
        "errors": errors or {},
        "timezones": workspaces.timezones(),
        "regions": region_choices(console.locale),
        "currencies": currency_choices(console.locale),
        "sdk": sdk_context(request),
        "sdk_key": PLACEHOLDER_KEY,
    }
    return render(request, "settings/general.html", context, console=console, status=status)


@router.get("/settings", response_class=HTMLResponse)
def general(request: Request, console: Admin, session: DbSession) -> HTMLResponse:
    ws = workspaces.get_workspace(session, console.workspace_id)
    values = workspaces.WorkspaceSettings(ws.name, ws.timezone, ws.default_region, ws.currency)
    return _general(request, console, values)


@router.post("/settings", response_class=HTMLResponse)
def save_general(
    request: Request,
    console: Admin,
    session: DbSession,
    name: Annotated[str, Form(max_length=1000)] = "",
    timezone: Annotated[str, Form(max_length=100)] = "",
    default_region: Annotated[str, Form(max_length=100)] = "",
    currency: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    given = workspaces.WorkspaceSettings(name, timezone, default_region, currency)
    try:
        workspaces.update_settings(session, console.workspace_id, given)
    except workspaces.InvalidSettings as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        errors = {str(field): FIELD_ERRORS.get(code, str(code)) for field, code in details.items()}
        return _general(request, console, given, errors, status=422)
    return RedirectResponse("/settings?notice=saved", status_code=303)


# --- API keys ---


def _keys_page(
    request: Request,
    console: Console,
    session: DbSession,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    keys = workspaces.list_keys(session, console.workspace_id)
    context = {"keys": keys, "kinds": KINDS, "error": error}
    return render(request, "settings/keys.html", context, console=console, status=status)


@router.get("/settings/keys", response_class=HTMLResponse)
def keys(request: Request, console: Admin, session: DbSession) -> HTMLResponse:
    return _keys_page(request, console, session)


@router.post("/settings/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    console: Admin,
    session: DbSession,
    kind: Annotated[str, Form(max_length=16)] = WRITE,
    name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    try:
        issued = workspaces.issue_key(session, console.workspace_id, kind, name=name.strip())
    except AppError as exc:
        message = KEY_ERRORS.get(exc.code, exc.message)
        return _keys_page(request, console, session, error=message, status=exc.status)
    context: dict[str, Any] = {
        "key": issued.key,
        "token": issued.token,
        "is_write": issued.key.kind == WRITE,
        "sdk": sdk_context(request),
        "sdk_key": issued.token,
    }
    # The only response that ever carries the token: render() marks it no-store.
    return render(request, "settings/key_created.html", context, console=console, status=201)


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(request: Request, console: Admin, session: DbSession, key_id: uuid.UUID) -> Response:
    try:
        workspaces.revoke_key(session, console.workspace_id, key_id)
    except AppError as exc:
        message = KEY_ERRORS.get(exc.code, exc.message)
        return _keys_page(request, console, session, error=message, status=exc.status)
    request.app.state.authenticator.forget_after_commit(session)
    return RedirectResponse("/settings/keys?notice=key_revoked", status_code=303)


# --- users ---


def _users_page(
    request: Request,
    console: Console,
    session: DbSession,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    members = [
        {"id": user.id, "email": user.email, "name": user.name, "role": role}
        for user, role in users.members(session, console.workspace_id)
    ]
    context = {
        "members": members,
        "roles": ROLES,
        "error": error,
        "form": form or {"email": "", "name": "", "role": "viewer"},
    }
    return render(request, "settings/users.html", context, console=console, status=status)


def _user_error(exc: AppError) -> str:
    return USER_ERRORS.get(exc.code, exc.message)


@router.get("/settings/users", response_class=HTMLResponse)
def users_page(request: Request, console: Admin, session: DbSession) -> HTMLResponse:
    return _users_page(request, console, session)


@router.post("/settings/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    console: Admin,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=16)] = "viewer",
    password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        users.add_member(
            session,
            console.workspace_id,
            email=email,
            role=role,
            password=password or None,
            name=name,
        )
    except AppError as exc:
        form = {"email": email, "name": name, "role": role}
        return _users_page(
            request, console, session, error=_user_error(exc), form=form, status=exc.status
        )
    return RedirectResponse("/settings/users?notice=user_added", status_code=303)


@router.post("/settings/users/{user_id}/role", response_class=HTMLResponse)
def change_role(
    request: Request,
    console: Admin,
    session: DbSession,
    user_id: uuid.UUID,
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    try:
        users.set_role(session, console.workspace_id, user_id, role)
    except AppError as exc:
        return _users_page(request, console, session, error=_user_error(exc), status=exc.status)
    return RedirectResponse("/settings/users?notice=role_changed", status_code=303)


@router.post("/settings/users/{user_id}/remove", response_class=HTMLResponse)
def remove_user(
    request: Request, console: Admin, session: DbSession, user_id: uuid.UUID
) -> Response:
    try:
        users.remove_member(session, console.workspace_id, user_id)
    except AppError as exc:
        return _users_page(request, console, session, error=_user_error(exc), status=exc.status)
    return RedirectResponse("/settings/users?notice=user_removed", status_code=303)
