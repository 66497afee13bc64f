"""Sign in, sign out, the workspace switcher, the language picker and one's own account."""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.kit.errors import AppError
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.users import passwords
from otklik.users import service as users
from otklik.users.throttle import LoginThrottle
from otklik.web import i18n
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import (
    CSRF_FIELD,
    LANG_COOKIE,
    SESSION_COOKIE,
    Viewer,
)

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "otklik_login_csrf"


def new_throttle() -> LoginThrottle:
    # Ten wrong guesses per account, a hundred per client address, in a quarter of an hour.
    return LoginThrottle(limit=10, window=900.0, limits={"ip": 100})


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.settings.console_secure_cookies)


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        max_age=int(users.SESSION_TTL.total_seconds()),
    )


def _login_page(
    request: Request, *, error: str | None = None, email: str = "", status: int = 200
) -> HTMLResponse:
    # Login CSRF: a form token paired with a cookie (double submit), as there is no session yet.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context = {
        "error": error,
        "email": email,
        "csrf": token,
        "next": safe_next(request.query_params.get("next")),
    }
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        max_age=3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    lang = i18n.supported(request.query_params.get("lang"))
    if not lang:
        return _login_page(request)
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(
        "/login" if target == "/" else f"/login?next={quote(target, safe='')}", status_code=303
    )
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return _login_page(
            request, error=N_("The form has expired; please try again."), email=email, status=403
        )
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{email.strip().lower()}", f"ip:{client}")
    try:
        throttle.check(*keys)
        user = users.authenticate(session, email, password, utc_now())
        token, _ = users.start_session(
            session, user, utc_now(), user_agent=request.headers.get("user-agent", "")
        )
    except users.InvalidCredentials:
        throttle.failed(*keys)
        return _login_page(request, error=N_("Wrong email or password."), email=email, status=401)
    except AppError as exc:
        return _login_page(request, error=exc.message, email=email, status=exc.status)
    throttle.succeeded(keys[0])
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(response, request, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(console: Viewer, session: DbSession) -> Response:
    users.end_session(session, console.token)
    response = RedirectResponse("/login?notice=signed_out", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/workspace")
def switch_workspace(
    console: Viewer, session: DbSession, workspace_id: Annotated[uuid.UUID, Form()]
) -> Response:
    users.switch_workspace(session, console.token, workspace_id)
    return RedirectResponse("/?notice=workspace_switched", status_code=303)


@router.post("/language")
def choose_language(
    console: Viewer,
    session: DbSession,
    locale: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    chosen = i18n.supported(locale)
    users.set_locale(session, console.user_id, chosen)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, console: Viewer) -> HTMLResponse:
    return render(request, "account.html", {"error": None}, console=console)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    console: Viewer,
    session: DbSession,
    current: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    new: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
    repeat: Annotated[str, Form(max_length=passwords.MAX_LENGTH)] = "",
) -> Response:
    error = None
    if new != repeat:
        error = N_("The new passwords do not match.")
    else:
        try:
            user = users.change_password(session, console.user_id, current, new)
        except AppError as exc:
            error = exc.message
    if error:
        return render(request, "account.html", {"error": error}, console=console, status=422)
    token, _ = users.start_session(
        session, user, utc_now(), user_agent=request.headers.get("user-agent", "")
    )
    response = RedirectResponse("/account?notice=password_changed", status_code=303)
    set_session_cookie(response, request, token)
    return response
