"""Console page "Customer value": the latest model fit in words, the RFM grid and the classes.

Every role reads it; refitting on demand needs the manage-data permission. The fit runs in
the request (`insights.tasks.run_refit`: computed in a read transaction, saved in a short
write), then the page is shown again with the new fit.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from otklik.insights import service, tasks
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import DataManager, Viewer

router = APIRouter(include_in_schema=False)

CLASSES: dict[str, tuple[str, str]] = {
    "champions": (N_("Champions"), N_("Bought recently and often")),
    "loyal": (N_("Loyal"), N_("Buy often, lately a little less recently")),
    "potential_loyalists": (N_("Potential loyalists"), N_("Recent, with a few purchases")),
    "new_customers": (N_("New customers"), N_("Their first purchase was recent")),
    "promising": (N_("Promising"), N_("Fairly recent, one purchase so far")),
    "needs_attention": (N_("Needs attention"), N_("Neither recent nor frequent: a nudge helps")),
    "at_risk": (N_("At risk"), N_("Bought several times, but long ago")),
    "cant_lose": (N_("Can't lose them"), N_("Bought most often, but not for a long time")),
    "hibernating": (N_("Hibernating"), N_("Few purchases, long ago")),
    "lost": (N_("Lost"), N_("One purchase, long ago")),
}
STATUSES: dict[str, tuple[str, str]] = {
    "ok": (N_("Fitted"), "ok"),
    "partial": (N_("Fitted without the spend model"), "warn"),
    "failed": (N_("Not fitted"), "bad"),
}
# Why a model could not be fitted, by the reason code the fit records.
REASONS: dict[str, str] = {
    "too_few_customers": N_("too few customers have ordered yet"),
    "no_repeat_buyers": N_("nobody has bought on a second day yet"),
    "too_few_repeat_buyers": N_("fewer than 3 customers have paid on a second day"),
    "spend_correlated": N_(
        "customers who buy more often also spend more per order, which the model assumes "
        "they do not; lifetime value is not predicted"
    ),
    "fit_failed": N_("the fit did not find a usable answer"),
    "short_history": N_("the order history is too short to hold back a period"),
}


@router.get("/insights", response_class=HTMLResponse)
def insights_page(request: Request, console: Viewer, session: DbSession) -> HTMLResponse:
    conn = session.connection()
    fit = service.latest_fit_or_none(conn, console.workspace_id)
    grid = service.rfm_grid(conn, console.workspace_id)
    top = max((c.customers for c in grid.cells), default=0)
    context = {
        "fit": fit,
        "grid": grid,
        "top": top,
        "classes": CLASSES,
        "statuses": STATUSES,
        "reasons": REASONS,
        "refit_hours": request.app.state.settings.insight_refit_hours,
        "refitted": request.query_params.get("refitted") in STATUSES,
    }
    return render(request, "insights/page.html", context, console=console)


@router.post("/insights/refit")
def refit_now(request: Request, console: DataManager) -> RedirectResponse:
    result = tasks.run_refit(request.app.state.engine, console.workspace_id, utc_now())
    return RedirectResponse(f"/insights?refitted={result.status}", status_code=303)
