"""The home page: the workspace's counts and a chart of events per hour for the last week."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from otklik.analytics import service as analytics
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.web.render import render
from otklik.web.session import Viewer

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, console: Viewer, session: DbSession) -> HTMLResponse:
    stats = analytics.dashboard(session.connection(), console.workspace_id, console.tz, utc_now())
    chart = {
        "hours": [hour.strftime("%d.%m %H:00") for hour in stats.hours],
        "counts": stats.counts,
    }
    return render(request, "dashboard.html", {"stats": stats, "chart": chart}, console=console)
