"""Segments in the console: the list, the visual rule builder with a live count, members,
history, static lists and snapshots, and the customer card's "in segments" block.

The builder (Alpine.js, static/segments.js) edits the rule tree as JSON and posts it, unsaved,
to /segments/preview while the marketer works; that endpoint answers JSON (the count, the time
it took, a sample, and validation errors with their path in the tree). Saving is an ordinary
form whose hidden `rules` field holds the tree. Reading is for every role; changing segments
needs manage_messaging (marketers and admins), like templates.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Connection

from otklik.kit.db import session_scope
from otklik.kit.errors import AppError
from otklik.kit.pagination import decode_cursor, encode_cursor
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.segments import repository as repo
from otklik.segments import service
from otklik.segments.validation import InvalidRules, parse
from otklik.web import i18n
from otklik.web.notices import N_
from otklik.web.render import render
from otklik.web.session import Console, Messenger, Viewer

router = APIRouter(include_in_schema=False)

MAX_RULES_CHARS = 64_000
MAX_PEOPLE = 10_000
MEMBERS_PAGE = 50
HISTORY_SHOWN = 100
CARD_STAYS = 1000

STATE_LABELS = {
    "building": N_("Building"),
    "ready": N_("Ready"),
    "stale": N_("Rebuilding"),
    "failed": N_("Build failed"),
}
KIND_LABELS = {"dynamic": N_("Dynamic"), "static": N_("Static")}
# One-line confirmations after a redirect (`?done=code`); only these codes are shown.
DONE = {
    "created": N_("The segment is saved. It is being built; the count appears when it is ready."),
    "saved": N_("The segment is saved."),
    "rules_saved": N_("The rules are saved. The segment is being rebuilt."),
    "unchanged": N_("Nothing changed."),
    "rebuilding": N_("The segment is being rebuilt."),
    "snapshot": N_("This static segment is a snapshot of the members at this moment."),
    "deleted": N_("The segment is deleted."),
}
FIELD_ERRORS = {
    "name_missing": N_("Give the segment a name."),
    "name_too_long": N_("The name may have at most 200 characters."),
    "name_taken": N_("Another segment already has this name."),
    "description_too_long": N_("The description may have at most 2,000 characters."),
    "invalid_json": N_("The rules are not valid JSON."),
    "invalid_rules": N_("The rules have problems; they are marked in the builder."),
    "no_people": N_("Paste at least one email, phone, user id or customer id."),
    "too_many_people": N_("At most 10,000 customers at a time."),
}
# Words the builder shows (static/segments.js reads them translated from the page).
LABELS = {
    "kind.trait": N_("Trait"),
    "kind.attribute": N_("Customer field"),
    "kind.event": N_("Did an event"),
    "kind.sequence": N_("Did one thing but not another"),
    "kind.reachable": N_("Reachable on a channel"),
    "kind.consent": N_("Consent"),
    "kind.identifier": N_("Has an identifier"),
    "kind.segment": N_("In another segment"),
    "kind.rfm": N_("RFM class"),
    "kind.score": N_("Model score"),
    "kind.leaving": N_("Leaving (overdue for an order)"),
    "group.all": N_("All of these"),
    "group.any": N_("Any of these"),
    "group.not": N_("Not this"),
    "op.eq": N_("is"),
    "op.ne": N_("is not"),
    "op.contains": N_("contains"),
    "op.not_contains": N_("does not contain"),
    "op.starts_with": N_("starts with"),
    "op.in": N_("is one of"),
    "op.not_in": N_("is none of"),
    "op.exists": N_("is set"),
    "op.not_exists": N_("is not set"),
    "op.gt": N_("more than"),
    "op.gte": N_("at least"),
    "op.lt": N_("less than"),
    "op.lte": N_("at most"),
    "op.between": N_("between"),
    "op.is_true": N_("is yes"),
    "op.is_false": N_("is no"),
    "op.before": N_("before"),
    "op.after": N_("after"),
    "op.days_ago_more_than": N_("more than N days ago"),
    "op.days_ago_within": N_("within the last N days"),
    "op.days_ahead_within": N_("within the next N days"),
    "op.anniversary_within": N_("anniversary within N days"),
    "type.string": N_("text"),
    "type.number": N_("number"),
    "type.boolean": N_("yes/no"),
    "type.date": N_("date"),
    "type.list": N_("list"),
    "attr.created_at": N_("Created"),
    "attr.first_seen_at": N_("First seen"),
    "attr.last_seen_at": N_("Last seen"),
    "attr.last_order_at": N_("Last order"),
    "attr.events_count": N_("Number of events"),
    "attr.orders_count": N_("Number of orders"),
    "attr.revenue": N_("Revenue"),
    "attr.email": N_("Email"),
    "attr.phone": N_("Phone"),
    "score.p_alive": N_("Probability still active"),
    "score.churn_risk": N_("Churn risk (0–1)"),
    "score.expected_purchases": N_("Expected purchases"),
    "score.clv": N_("Predicted lifetime value"),
    "score.recency_days": N_("Days since the last order"),
    "score.frequency": N_("Purchase days (RFM frequency)"),
    "score.monetary": N_("Total spend (RFM monetary)"),
    "score.r": N_("R score (1–5)"),
    "score.f": N_("F score (1–5)"),
    "score.m": N_("M score (1–5)"),
    "score.usual_gap_days": N_("Usual days between orders"),
    "rfm.champions": N_("Champions"),
    "rfm.loyal": N_("Loyal"),
    "rfm.potential_loyalists": N_("Potential loyalists"),
    "rfm.new_customers": N_("New customers"),
    "rfm.promising": N_("Promising"),
    "rfm.needs_attention": N_("Needs attention"),
    "rfm.at_risk": N_("At risk"),
    "rfm.cant_lose": N_("Can't lose"),
    "rfm.hibernating": N_("Hibernating"),
    "rfm.lost": N_("Lost"),
    "channel.email": N_("Email"),
    "channel.sms": N_("SMS"),
    "channel.telegram": N_("Telegram"),
    "channel.webpush": N_("Web push"),
    "channel.mobile_push": N_("Mobile push"),
    "purpose.marketing": N_("marketing"),
    "purpose.service": N_("service"),
    "status.granted": N_("granted"),
    "status.denied": N_("denied"),
    "status.pending": N_("pending"),
    "status.none": N_("not asked"),
    "took": N_("counted in %(ms)s ms"),
    "problems": N_("The rules have problems; nothing is counted until they are fixed:"),
    "empty": N_("Add a condition to see who matches."),
    "failed": N_("The count is not available right now (%(status)s)."),
    "no_sample": N_("Nobody matches yet."),
    "json_bad": N_("This is not valid JSON."),
    "anyone": N_("(no name)"),
}
CONDITION_KINDS = [(kind, LABELS[f"kind.{kind}"]) for kind in (
    "trait", "attribute", "event", "sequence", "reachable", "consent", "identifier",
    "segment", "rfm", "score", "leaving",
)]  # fmt: skip
IDENTIFIER_KINDS = ("email", "phone", "user_id", "profile_id")
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
PHONE_TEXT = re.compile(r"^\+?[\d\s().-]{7,}$")


# --- helpers ---


def _segment(conn: Connection, console: Console, segment_id: str) -> Any:
    try:
        ref = uuid.UUID(segment_id)
    except ValueError:
        raise service.SegmentNotFound("No segment with that id in this workspace") from None
    return service.get(conn, console.workspace_id, ref)


def _wake(request: Request, tasks: BackgroundTasks) -> None:
    # After the response, so after the commit: the segment loop finds the change at once.
    tasks.add_task(request.app.state.segments.wake)


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.replace("\r\n", "\n") for k, v in form.items() if isinstance(v, str)}


FormValues = Annotated[dict[str, str], Depends(_form_values)]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_RULES_CHARS * 2:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


JsonBody = Annotated[Any, Depends(_json_body)]


def labels_for(locale: str) -> dict[str, Any]:
    translations = i18n.translations(locale)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return translations.ungettext(singular, plural, n)

    labels: dict[str, Any] = {key: translations.ugettext(text) for key, text in LABELS.items()}
    # By the CLDR plural category the browser picks (Intl.PluralRules), with a number of it.
    categories = {"one": 1, "few": 2, "many": 5, "other": 5}
    labels["count"] = {
        category: ngettext("customer matches", "customers match", n)
        for category, n in categories.items()
    }
    return labels


def person_out(found: dict[str, Any]) -> dict[str, Any]:
    return {
        **found,
        "profile_id": str(found["profile_id"]),
        "url": f"/customers/{found['profile_id']}",
    }


def rules_from(text: str) -> tuple[Any, str | None]:
    """The rule tree from the form's JSON field, or the error code."""
    text = text.strip()
    if not text or len(text) > MAX_RULES_CHARS:
        return None, "invalid_json"
    try:
        return json.loads(text), None
    except ValueError:
        return None, "invalid_json"


def same_rules(given: Any, stored: Any) -> bool:
    """Whether two trees mean the same (defaults filled in), so a rename does not rebuild."""
    try:
        return bool(parse(given).model_dump(mode="json") == parse(stored).model_dump(mode="json"))
    except AppError:
        return False


# Pydantic names the member of a union it tried ("value.float", "value.list[float]"); one
# message per place reads better in the builder.
UNION_STEP = re.compile(r"\.(?:float|int|str|bool|list\[\w+\])(?=$|[.\[])")


def tidy(errors: Any) -> list[dict[str, str]]:
    """The engine's validation errors, one per path, without union-member steps."""
    out: dict[str, dict[str, str]] = {}
    for error in errors if isinstance(errors, list) else []:
        path = UNION_STEP.sub("", str(error.get("path", "rules")))
        out.setdefault(path, {**error, "path": path})
    return list(out.values())


def _meta_errors(form: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    name = form.get("name", "").strip()
    if not name:
        errors["name"] = "name_missing"
    elif len(name) > 200:
        errors["name"] = "name_too_long"
    if len(form.get("description", "")) > 2000:
        errors["description"] = "description_too_long"
    return errors


def read_people(text: str, kind: str) -> dict[str, list[str]]:
    """Pasted identifiers (one a line, or separated by commas or semicolons) by their type."""
    wanted: dict[str, list[str]] = {k: [] for k in IDENTIFIER_KINDS}
    for value in re.split(r"[\n,;\t]+", text):
        value = value.strip()
        if not value:
            continue
        if kind in IDENTIFIER_KINDS:
            wanted[kind].append(value)
        elif "@" in value:
            wanted["email"].append(value)
        elif UUID_TEXT.match(value):
            wanted["profile_id"].append(value)
        elif PHONE_TEXT.match(value) and sum(ch.isdigit() for ch in value) >= 10:
            wanted["phone"].append(value)
        else:
            wanted["user_id"].append(value)
    return {k: v for k, v in wanted.items() if v}


def current_segments(
    conn: Connection, workspace_id: uuid.UUID, profile_ids: list[uuid.UUID]
) -> list[Any]:
    """The segments a customer (all profiles of a merged cluster) is in now, newest first."""
    stays = repo.history(
        conn, workspace_id, profile_ids=profile_ids, current=True, limit=CARD_STAYS
    )
    seen: set[uuid.UUID] = set()
    out = []
    for stay in stays:
        if stay.segment_id not in seen:
            seen.add(stay.segment_id)
            out.append(stay)
    return out


# --- pages ---


def _base(console: Console) -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "kind_labels": KIND_LABELS,
        "can_edit": console.can("manage_messaging"),
    }


@router.get("/segments", response_class=HTMLResponse)
def segment_list(
    request: Request, console: Viewer, session: DbSession, done: str = ""
) -> HTMLResponse:
    rows = repo.segments(session.connection(), console.workspace_id)
    context = {**_base(console), "rows": rows, "done": DONE.get(done)}
    if request.headers.get("hx-request") == "true":
        return render(request, "segments/_table.html", context, console=console)
    return render(request, "segments/list.html", context, console=console)


def builder_data(
    conn: Connection, console: Console, row: Any | None, rules: Any, errors: list[Any]
) -> dict[str, Any]:
    """What static/segments.js starts from: the tree, the catalog, words and choices."""
    return {
        "rules": rules,
        "segment_id": str(row.id) if row is not None else None,
        "catalog": service.builder_catalog(conn, console.workspace_id),
        "labels": labels_for(console.locale),
        "errors": errors,
        "editable": console.can("manage_messaging"),
        "ops": {
            "compare": ["gte", "gt", "eq", "ne", "lte", "lt", "between"],
            "property": [
                *("eq", "ne", "contains", "starts_with", "in", "not_in"),
                *("gt", "gte", "lt", "lte", "exists"),
            ],
            "purposes": ["marketing", "service"],
            "statuses": ["granted", "denied", "pending", "none"],
        },
    }


def _editor(
    request: Request,
    console: Console,
    conn: Connection,
    *,
    row: Any | None,
    kind: str,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    rule_errors: list[dict[str, str]] | None = None,
    tab: str = "rules",
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    rules: Any = None
    if kind == "dynamic":
        given = form.get("rules")
        rules = rules_from(given)[0] if given is not None else (row.rules if row else None)
    builder = None
    if kind == "dynamic" and tab == "rules":
        builder = builder_data(conn, console, row, rules, rule_errors or [])
    context = {
        **_base(console),
        "row": row,
        "kind": kind,
        "form": form,
        "errors": errors or {},
        "field_errors": FIELD_ERRORS,
        "rule_errors": rule_errors or [],
        "rules_json": json.dumps(rules, ensure_ascii=False) if rules is not None else "",
        "builder": builder,
        "condition_kinds": CONDITION_KINDS,
        "tab": tab,
        "done": DONE.get(request.query_params.get("done", "")),
        **extra,
    }
    return render(request, "segments/segment.html", context, console=console, status=status)


@router.get("/segments/new", response_class=HTMLResponse)
def new_segment(
    request: Request, console: Messenger, session: DbSession, kind: str = "dynamic"
) -> HTMLResponse:
    kind = kind if kind in KIND_LABELS else "dynamic"
    return _editor(request, console, session.connection(), row=None, kind=kind, form={})


@router.post("/segments/preview")
def preview(request: Request, console: Viewer, body: JsonBody) -> Response:
    """The live count of an unsaved rule tree: JSON for the builder, never an HTML page."""
    if not isinstance(body, dict) or not isinstance(body.get("rules"), dict):
        problem = {"path": "rules", "code": "invalid_shape", "message": "send {rules: {...}}"}
        return JSONResponse({"ok": False, "errors": [problem]}, status_code=422)
    segment_id = None
    if body.get("segment_id"):
        try:
            segment_id = uuid.UUID(str(body["segment_id"]))
        except ValueError:
            segment_id = None
    # A read-only session: a preview on every pause must not queue for the writer.
    with session_scope(request.app.state.engine, write=False) as session:
        try:
            found = service.preview(
                session.connection(), console.workspace_id, body["rules"], utc_now(), segment_id
            )
        except InvalidRules as exc:
            errors = tidy(exc.details)
            return JSONResponse(
                {"ok": False, "message": exc.message, "errors": errors}, status_code=422
            )
        except AppError as exc:
            problem = {"path": "rules", "code": exc.code, "message": exc.message}
            return JSONResponse({"ok": False, "errors": [problem]}, status_code=422)
    return JSONResponse(
        {
            "ok": True,
            "count": found.count,
            "took_ms": found.took_ms,
            "sample": [person_out(p) for p in found.sample],
        }
    )


@router.post("/segments", response_class=HTMLResponse)
def create_segment(
    request: Request,
    console: Messenger,
    session: DbSession,
    form: FormValues,
    tasks: BackgroundTasks,
) -> Response:
    conn = session.connection()
    kind = form.get("kind", "dynamic")
    kind = kind if kind in KIND_LABELS else "dynamic"
    errors = _meta_errors(form)
    rules, problem = rules_from(form.get("rules", "")) if kind == "dynamic" else (None, None)
    if problem:
        errors["rules"] = problem
    rule_errors: list[dict[str, str]] = []
    segment_id = None
    if not errors:
        try:
            segment_id = service.create(
                conn,
                console.workspace_id,
                name=form["name"].strip(),
                description=form.get("description", "").strip(),
                kind=kind,
                rules=rules,
                now=utc_now(),
            )
        except InvalidRules as exc:
            rule_errors = tidy(exc.details)
            errors["rules"] = "invalid_rules"
        except service.SegmentNameTaken:
            errors["name"] = "name_taken"
    if segment_id is None:
        return _editor(
            request,
            console,
            conn,
            row=None,
            kind=kind,
            form=form,
            errors=errors,
            rule_errors=rule_errors,
            status=422,
        )
    _wake(request, tasks)
    return RedirectResponse(f"/segments/{segment_id}?done=created", status_code=303)


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(
    request: Request,
    console: Viewer,
    session: DbSession,
    segment_id: str,
    tab: str = "rules",
    cursor: str | None = None,
) -> HTMLResponse:
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    tab = tab if tab in ("rules", "members", "history") else "rules"
    form = {"name": row.name, "description": row.description}
    extra: dict[str, Any] = {}
    if tab == "members":
        extra["members"] = members_page(conn, row.id, cursor)
    elif tab == "history":
        extra["history"] = history_of(conn, console, row.id)
    return _editor(request, console, conn, row=row, kind=row.kind, form=form, tab=tab, **extra)


def members_page(conn: Connection, segment_id: uuid.UUID, cursor: str | None) -> dict[str, Any]:
    after = decode_cursor(cursor, 1)
    rows = repo.members_page(conn, segment_id, int(after[0]) if after else None, MEMBERS_PAGE + 1)
    more = len(rows) > MEMBERS_PAGE
    rows = rows[:MEMBERS_PAGE]
    items = [{**service.person(row), "entered_at": row.entered_at} for row in rows]
    return {
        "items": items,
        "next_cursor": encode_cursor([rows[-1].id]) if more else None,
        "first": cursor is None,
    }


def history_of(conn: Connection, console: Console, segment_id: uuid.UUID) -> list[dict[str, Any]]:
    """The latest entries and exits, newest first, with who the customer is."""
    stays = repo.history(conn, console.workspace_id, segment_id=segment_id, limit=HISTORY_SHOWN)
    people = {
        p["profile_id"]: p for p in service.repo_profiles(conn, [s.profile_id for s in stays])
    }
    moves = []
    for stay in stays:
        who = people.get(stay.profile_id, {"profile_id": stay.profile_id})
        if stay.exited_at is not None:
            moves.append({"person": who, "at": stay.exited_at, "entered": False})
        moves.append({"person": who, "at": stay.entered_at, "entered": True})
    moves.sort(key=lambda m: m["at"], reverse=True)
    return moves[:HISTORY_SHOWN]


@router.get("/segments/{segment_id}/status", response_class=HTMLResponse)
def segment_status(
    request: Request, console: Viewer, session: DbSession, segment_id: str
) -> HTMLResponse:
    """The state, count and build figures; the page polls it while a build is running."""
    row = _segment(session.connection(), console, segment_id)
    context = {**_base(console), "row": row}
    return render(request, "segments/_status.html", context, console=console)


@router.post("/segments/{segment_id}", response_class=HTMLResponse)
def save_segment(
    request: Request,
    console: Messenger,
    session: DbSession,
    segment_id: str,
    form: FormValues,
    tasks: BackgroundTasks,
) -> Response:
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    errors = _meta_errors(form)
    changes: dict[str, Any] = {}
    if not errors:
        changes = {"name": form["name"].strip(), "description": form.get("description", "").strip()}
    if row.kind == "dynamic":
        rules, problem = rules_from(form.get("rules", ""))
        if problem:
            errors["rules"] = problem
        elif not same_rules(rules, row.rules):
            changes["rules"] = rules
    rule_errors: list[dict[str, str]] = []
    if not errors:
        same = changes["name"] == row.name and changes["description"] == row.description
        if same and "rules" not in changes:
            return RedirectResponse(f"/segments/{row.id}?done=unchanged", status_code=303)
        try:
            service.update(conn, console.workspace_id, row.id, changes, utc_now())
        except InvalidRules as exc:
            rule_errors = tidy(exc.details)
            errors["rules"] = "invalid_rules"
        except service.SegmentNameTaken:
            errors["name"] = "name_taken"
    if errors:
        session.rollback()
        return _editor(
            request,
            console,
            session.connection(),
            row=row,
            kind=row.kind,
            form=form,
            errors=errors,
            rule_errors=rule_errors,
            status=422,
        )
    _wake(request, tasks)
    done = "rules_saved" if "rules" in changes else "saved"
    return RedirectResponse(f"/segments/{row.id}?done={done}", status_code=303)


@router.post("/segments/{segment_id}/rebuild")
def rebuild_segment(
    request: Request,
    console: Messenger,
    session: DbSession,
    segment_id: str,
    tasks: BackgroundTasks,
) -> Response:
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    service.rebuild(conn, console.workspace_id, row.id, utc_now())
    _wake(request, tasks)
    return RedirectResponse(f"/segments/{row.id}?done=rebuilding", status_code=303)


def _refused(
    request: Request, console: Console, session: Any, row: Any, message: str, status: int
) -> HTMLResponse:
    """The segment page again, with why an action was refused (nothing was written)."""
    session.rollback()
    form = {"name": row.name, "description": row.description}
    conn = session.connection()
    return _editor(
        request, console, conn, row=row, kind=row.kind, form=form, refused=message, status=status
    )


@router.post("/segments/{segment_id}/delete")
def delete_segment(
    request: Request, console: Messenger, session: DbSession, segment_id: str
) -> Response:
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    try:
        service.delete(conn, console.workspace_id, row.id)
    except service.SegmentInUse as exc:
        return _refused(request, console, session, row, exc.message, exc.status)
    return RedirectResponse("/segments?done=deleted", status_code=303)


@router.post("/segments/{segment_id}/snapshot")
def snapshot_segment(
    request: Request, console: Messenger, session: DbSession, segment_id: str, form: FormValues
) -> Response:
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    name = form.get("snapshot_name", "").strip()[:200]
    if not name:
        name = f"{row.name} · {utc_now():%Y-%m-%d %H:%M}"[:200]
    try:
        new_id = service.snapshot(conn, console.workspace_id, row.id, name, utc_now())
    except service.SegmentNameTaken as exc:
        return _refused(request, console, session, row, exc.message, exc.status)
    return RedirectResponse(f"/segments/{new_id}?done=snapshot", status_code=303)


@router.post("/segments/{segment_id}/members", response_class=HTMLResponse)
def change_members(
    request: Request, console: Messenger, session: DbSession, segment_id: str, form: FormValues
) -> Response:
    """Add or remove pasted customers of a static segment; shows what matched nobody."""
    conn = session.connection()
    row = _segment(conn, console, segment_id)
    add = form.get("action", "add") != "remove"
    wanted = read_people(form.get("people", ""), form.get("as", "auto"))
    count = sum(len(v) for v in wanted.values())
    page = {"name": row.name, "description": row.description, **form}
    problem = "no_people" if not count else ("too_many_people" if count > MAX_PEOPLE else None)
    if problem:
        return _editor(
            request, console, conn, row=row, kind=row.kind, form=page,
            errors={"people": problem}, status=422,
        )  # fmt: skip
    region = console.workspace.default_region
    ids, missing = service.resolve_people(conn, console.workspace_id, wanted, region)
    changed = service.change_static(conn, console.workspace_id, row.id, ids, utc_now(), add=add)
    row = service.get(conn, console.workspace_id, row.id)
    result = {"add": add, "changed": changed, "found": len(ids), "missing": missing}
    page["people"] = "\n".join(m["value"] for m in missing)
    return _editor(request, console, conn, row=row, kind=row.kind, form=page, result=result)
