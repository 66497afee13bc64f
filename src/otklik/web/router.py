"""The console's routes, its static files and its error pages, mounted on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from otklik.web import (
    auth,
    channels,
    customers,
    dashboard,
    events,
    imports,
    insights,
    merges,
    message_templates,
    messages,
    public,
    segments,
    settings,
)
from otklik.web.errors import console_error

STATIC = Path(__file__).parent / "static"

# Each console area adds its router here.
ROUTERS: list[APIRouter] = [
    auth.router,
    dashboard.router,
    customers.router,
    insights.router,
    segments.router,
    events.router,
    imports.router,
    merges.router,
    settings.router,
    channels.router,
    message_templates.router,
    messages.router,
    public.router,
]


def mount_console(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.login_throttle = auth.new_throttle()
    hooks = list(getattr(app.state, "error_hooks", []))
    app.state.error_hooks = [*hooks, console_error]
