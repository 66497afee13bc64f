"""Live events: the debugger that shows a workspace's events and rejected input as they arrive.

The page polls with htmx (`every 2s`) rather than holding a server-sent events stream open:
a poll is a short read that any proxy, load balancer or worker timeout passes unchanged, needs
no connection per open tab on the server, and a lost poll is simply retried by the next one.
Each poll sends a cursor (the high-water mark of the last answer, see
ingest/debug_repository.py) and gets back only the rows above it, prepended to the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from otklik.ingest import debug_repository as debug
from otklik.ingest.wire import TYPES
from otklik.kit.errors import NotFound
from otklik.kit.web import DbSession
from otklik.models.event import FAILED, PENDING, PROCESSED, UNATTRIBUTED
from otklik.web.notices import N_
from otklik.web.render import pretty_json, render
from otklik.web.session import Viewer

router = APIRouter(include_in_schema=False)

# Rows the page keeps; static/events.js trims older rows as new ones arrive.
MAX_ROWS = 200
CURSOR_HEADER = "X-Live-Cursor"

# (label, badge class) per event status.
STATUSES: dict[int, tuple[str, str]] = {
    PENDING: (N_("pending"), "warn"),
    PROCESSED: (N_("processed"), "ok"),
    UNATTRIBUTED: (N_("unattributed"), ""),
    FAILED: (N_("failed"), "bad"),
}

FilterText = Annotated[str, Query(max_length=200)]
Cursor = Annotated[int, Query(ge=0)]


@dataclass(frozen=True)
class Filters:
    type: str = ""
    name: str = ""
    q: str = ""

    def query(self) -> debug.EventFilter:
        kind = self.type if self.type in TYPES else None
        return debug.EventFilter(kind, self.name.strip() or None, self.q.strip() or None)


def _context(filters: Filters, **extra: Any) -> dict[str, Any]:
    return {
        "filters": filters,
        "types": TYPES,
        "statuses": STATUSES,
        "processed": PROCESSED,
        **extra,
    }


@router.get("/events/live", response_class=HTMLResponse)
def live_page(
    request: Request,
    console: Viewer,
    session: DbSession,
    type: FilterText = "",
    name: FilterText = "",
    q: FilterText = "",
) -> HTMLResponse:
    conn = session.connection()
    filters = Filters(type, name, q)
    # Marks first: a row stored between the mark and the list is left to the next poll.
    event_mark = debug.event_mark(conn)
    rejected_mark = debug.rejected_mark(conn)
    events = debug.newest_events(conn, console.workspace_id, event_mark, filters.query(), MAX_ROWS)
    rejected = debug.newest_rejected(conn, console.workspace_id, rejected_mark, MAX_ROWS)
    context = _context(
        filters,
        events=events,
        rejected=[(row, pretty_json(row.payload)) for row in rejected],
        event_mark=event_mark,
        rejected_mark=rejected_mark,
        max_rows=MAX_ROWS,
        filter_window=debug.FILTER_WINDOW,
    )
    return render(request, "events/live.html", context, console=console)


@router.get("/events/live/rows", response_class=HTMLResponse)
def live_rows(
    request: Request,
    console: Viewer,
    session: DbSession,
    after: Cursor = 0,
    type: FilterText = "",
    name: FilterText = "",
    q: FilterText = "",
) -> HTMLResponse:
    conn = session.connection()
    filters = Filters(type, name, q)
    mark = debug.event_mark(conn)
    rows = []
    if mark > after:
        rows = debug.events_between(
            conn, console.workspace_id, after, mark, filters.query(), MAX_ROWS
        )
    return render(
        request,
        "events/_event_rows.html",
        _context(filters, events=rows, fresh=True),
        console=console,
        headers={CURSOR_HEADER: str(max(mark, after))},
    )


@router.get("/events/live/rejected", response_class=HTMLResponse)
def live_rejected(
    request: Request, console: Viewer, session: DbSession, after: Cursor = 0
) -> HTMLResponse:
    conn = session.connection()
    mark = debug.rejected_mark(conn)
    rows = []
    if mark > after:
        rows = debug.rejected_between(conn, console.workspace_id, after, mark, MAX_ROWS)
    return render(
        request,
        "events/_rejected_rows.html",
        {"rejected": [(row, pretty_json(row.payload)) for row in rows], "fresh": True},
        console=console,
        headers={CURSOR_HEADER: str(max(mark, after))},
    )


@router.get("/events/{seq}", response_class=HTMLResponse)
def event_detail(request: Request, console: Viewer, session: DbSession, seq: int) -> HTMLResponse:
    row = debug.get_event(session.connection(), console.workspace_id, seq)
    if row is None:
        raise NotFound(N_("No such event in this workspace."), code="event_not_found")
    context = {
        "event": row,
        "payload": pretty_json(row.payload),
        "statuses": STATUSES,
        "processed": PROCESSED,
    }
    return render(request, "events/detail.html", context, console=console)
