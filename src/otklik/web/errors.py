"""Errors on console paths answered as pages (or a redirect to sign in), not JSON."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from otklik.web.render import render

# Paths that belong to machines, which want JSON errors.
# Providers call /hooks/: they get JSON errors, like API clients.
MACHINE_PREFIXES = (
    "/api/",
    "/v1/",
    "/hooks/",
    "/health",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/static/",
)


def is_console_path(path: str) -> bool:
    return not path.startswith(MACHINE_PREFIXES)


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    location = "/login" if target == "/" else f"/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx follows HX-Redirect with a full page load instead of swapping in the login form.
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def console_error(request: Request, status: int, code: str, message: str) -> Response | None:
    if not is_console_path(request.url.path):
        return None
    if code == "login_required":
        return login_redirect(request)
    console = getattr(request.state, "console", None)
    return render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        console=console,
        status=status,
    )
