"""Who is using the console: the session cookie, the role checks and CSRF protection.

Every console route takes exactly one of the role aliases at the end of this module; the alias
checks the sign-in, the permission and, for anything but GET, the CSRF token.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, Forbidden
from otklik.kit.time import utc_now
from otklik.users import service as users
from otklik.users.roles import Permission, allows
from otklik.web import i18n

SESSION_COOKIE = "otklik_session"
LANG_COOKIE = i18n.LANG_COOKIE
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(AppError):
    status = 401
    code = "login_required"


class PermissionDenied(Forbidden):
    code = "permission_denied"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True)
class Console:
    signed: users.SignedIn
    token: str
    locale: str
    workspaces: Sequence[tuple[users.WorkspaceInfo, str]] = field(default_factory=list)

    @property
    def workspace(self) -> users.WorkspaceInfo:
        return self.signed.workspace

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.signed.workspace.id

    @property
    def user_id(self) -> uuid.UUID:
        return self.signed.user.id

    @property
    def role(self) -> str:
        return self.signed.role

    @property
    def csrf_token(self) -> str:
        return self.signed.csrf_token

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.signed.workspace.timezone)
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def can(self, permission: Permission | str) -> bool:
        return allows(self.role, Permission(permission))


def current_console(request: Request) -> Console:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("Please sign in")
    now = utc_now()
    engine = request.app.state.engine
    # Its own short read: the endpoint's write session (and on SQLite the write turn) is
    # taken only by endpoints that write, and only once the sign-in is known to be good.
    with session_scope(engine, write=False) as session:
        signed = users.signed_in(session, token, now)
        if signed is None:
            raise LoginRequired("Your session has ended; please sign in again")
        spaces = users.workspaces_of(session, signed.user.id)
    if users.needs_touch(signed.last_seen_at, now):
        # Sliding expiry in its own short write, so reading pages stays read-only.
        with session_scope(engine) as writer:
            users.touch(writer, signed.session_id, now)
    locale = i18n.choose(
        signed.user.locale,
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )
    console = Console(signed, token, locale, spaces)
    # Error pages raised later in this request show the signed-in navigation.
    request.state.console = console
    return console


async def check_csrf(request: Request, console: Console) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, console.csrf_token):
        raise CsrfFailed("The form has expired or did not come from this site; reload and retry")


def require(permission: Permission) -> Callable[..., Awaitable[Console]]:
    async def dependency(request: Request, console: Console = Depends(current_console)) -> Console:
        await check_csrf(request, console)
        if not console.can(permission):
            raise PermissionDenied("Your role does not allow this")
        return console

    return dependency


Viewer = Annotated[Console, Depends(require(Permission.VIEW))]
Editor = Annotated[Console, Depends(require(Permission.EDIT_CUSTOMERS))]
DataManager = Annotated[Console, Depends(require(Permission.MANAGE_DATA))]
Admin = Annotated[Console, Depends(require(Permission.MANAGE_WORKSPACE))]
Messenger = Annotated[Console, Depends(require(Permission.MANAGE_MESSAGING))]
