"""Console pages: upload a customers or orders file, map its columns, watch it run, read the report.

Every page and action needs the manage-data permission. A job is queued in the request and
started in a thread after the response (so after the commit); the progress fragment polls the
job's counters, which the runner writes as it goes. Re-running a file is always safe: imports
are idempotent, so a second run stores nothing that is already there.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, Conflict
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.models import ImportJob
from otklik.models.imports import DONE, FAILED, QUEUED, RUNNING, UPLOADED
from otklik.offline import jobs, jobs_runner
from otklik.offline.columns import FIELDS, REQUIRED
from otklik.offline.rows import CUSTOMERS, ORDERS
from otklik.web.notices import N_
from otklik.web.render import SECURITY_HEADERS, render
from otklik.web.session import Console, DataManager

router = APIRouter(include_in_schema=False)

REJECTED_SHOWN = 100

KINDS: dict[str, str] = {CUSTOMERS: N_("Customers"), ORDERS: N_("Orders")}
# (label, badge class) per job status.
STATUSES: dict[str, tuple[str, str]] = {
    UPLOADED: (N_("waiting for mapping"), "warn"),
    QUEUED: (N_("queued"), ""),
    RUNNING: (N_("running"), "warn"),
    DONE: (N_("done"), "ok"),
    FAILED: (N_("failed"), "bad"),
}
STAGES: dict[str, str] = {
    "waiting": N_("Waiting to start…"),
    "checking": N_("Checking the rows…"),
    "storing": N_("Storing events…"),
    "done": N_("Done"),
    "failed": N_("The import failed."),
    "stale": N_("The import stopped: the process running it is gone."),
}
FIELD_LABELS: dict[str, dict[str, str]] = {
    CUSTOMERS: {
        "external_id": N_("Customer id"),
        "email": N_("Email"),
        "phone": N_("Phone"),
        "first_name": N_("First name"),
        "last_name": N_("Last name"),
        "name": N_("Full name"),
        "birthday": N_("Birthday"),
        "gender": N_("Gender"),
        "city": N_("City"),
        "loyalty_card": N_("Loyalty card"),
        "created_at": N_("Registered at"),
    },
    ORDERS: {
        "order_id": N_("Order id"),
        "customer_external_id": N_("Customer id"),
        "placed_at": N_("Order date"),
        "total": N_("Order total"),
        "currency": N_("Currency"),
        "sku": N_("Product SKU"),
        "name": N_("Product name"),
        "quantity": N_("Quantity"),
        "price": N_("Unit price"),
    },
}
# Why a row was rejected, by the importer's code; its own message (with the value) follows.
REASONS: dict[str, str] = {
    "invalid_email": N_("Not an email address"),
    "invalid_phone": N_("Not a phone number"),
    "invalid_date": N_("Not a date"),
    "missing_external_id": N_("No customer id"),
    "too_long": N_("A value is too long"),
    "too_deep": N_("A value is nested too deeply"),
    "invalid_row": N_("Not a row of values"),
    "missing_order_id": N_("No order id"),
    "missing_customer": N_("No customer id"),
    "invalid_amount": N_("Not a valid amount"),
    "invalid_currency": N_("Not a currency code"),
    "invalid_quantity": N_("Not a valid quantity"),
    "inconsistent_order": N_("The rows of one order disagree"),
    "order_rejected": N_("Another row of this order is invalid"),
}
# What people read when a file, a mapping or a re-run is refused, by the error's code.
REFUSALS: dict[str, str] = {
    "no_file": N_("Choose a file to upload."),
    "unknown_import": N_("Choose what the file holds: customers or orders."),
    "unsupported_format": N_("Upload a .csv, .json or .jsonl file."),
    "payload_too_large": N_("The file is larger than the limit of %(limit)s."),
    "invalid_encoding": N_(
        "The file is not UTF-8 text. In Excel choose “Save as → CSV UTF-8”, or convert the file "
        "(for example from Windows-1251) to UTF-8, and upload it again."
    ),
    "invalid_csv": N_("The file cannot be read as CSV."),
    "missing_header": N_("The file has no header row naming its columns."),
    "invalid_json": N_("The file is not valid JSON: a JSON import is an array of objects."),
    "empty_file": N_("The file has no rows to import."),
    "invalid_mapping": N_("Choose a field for every column."),
    "field_twice": N_("Two columns are mapped to “%(field)s”; a field takes one column."),
    "field_missing": N_("Map a column to each required field: %(fields)s."),
    "already_started": N_("This import has already started."),
    "import_not_rerunnable": N_("Only a failed or stopped import can be run again."),
    "content_gone": N_("The file is no longer stored; upload it again."),
}


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def _refusal(exc: AppError) -> dict[str, Any]:
    params = {k: str(v) for k, v in exc.details.items()} if isinstance(exc.details, dict) else {}
    if exc.code == "payload_too_large":
        params = {"limit": human_size(int(exc.details["limit"]))}
    return {
        "code": exc.code,
        "text": REFUSALS.get(exc.code),
        "params": params,
        "detail": exc.message,
    }


def _common() -> dict[str, Any]:
    return {"kinds": KINDS, "statuses": STATUSES}


def _list_page(
    request: Request,
    console: Console,
    session: Session,
    *,
    kind: str = CUSTOMERS,
    refusal: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        **_common(),
        "jobs": jobs.recent_jobs(session, console.workspace_id),
        "kind": kind,
        "refusal": refusal,
        "limit": human_size(request.app.state.settings.import_max_bytes),
    }
    return render(request, "imports/list.html", context, console=console, status=status)


@router.get("/imports", response_class=HTMLResponse)
def import_list(request: Request, console: DataManager, session: DbSession) -> HTMLResponse:
    return _list_page(request, console, session)


@router.post("/imports", response_class=HTMLResponse)
def upload(
    request: Request,
    console: DataManager,
    kind: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    # No request-wide write session here: reading and checking a large file must not hold
    # the store's write turn (on SQLite it would stall ingest); the job is stored after.
    engine = request.app.state.engine
    limit = request.app.state.settings.import_max_bytes
    refusal: dict[str, Any] | None = None
    status = 422
    if file is None or not file.filename:
        refusal = {"code": "no_file", "text": REFUSALS["no_file"], "params": {}, "detail": None}
    else:
        # One byte over the limit is enough to know the file is too large.
        data = file.file.read(limit + 1)
        try:
            job = jobs.prepare_job(
                workspace_id=console.workspace_id,
                user_id=console.user_id,
                kind=kind,
                filename=file.filename,
                data=data,
                max_bytes=limit,
                now=utc_now(),
            )
        except AppError as exc:
            refusal, status = _refusal(exc), exc.status
    if refusal is not None:
        with session_scope(engine, write=False) as session:
            return _list_page(request, console, session, kind=kind, refusal=refusal, status=status)
    with session_scope(engine) as session:
        jobs.store_job(session, job)
    return RedirectResponse(f"/imports/{job.id}/mapping", status_code=303)


def _mapping_page(
    request: Request,
    console: Console,
    job: ImportJob,
    *,
    chosen: list[str] | None = None,
    refusal: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        **_common(),
        "job": job,
        "choices": jobs.mapping_form(job, chosen),
        "fields": FIELDS[job.kind],
        "labels": FIELD_LABELS[job.kind],
        "required": set(REQUIRED[job.kind]),
        "ignore": jobs.IGNORE,
        "trait": jobs.TRAIT,
        "refusal": refusal,
    }
    return render(request, "imports/mapping.html", context, console=console, status=status)


@router.get("/imports/{job_id}/mapping", response_class=HTMLResponse)
def mapping(request: Request, console: DataManager, session: DbSession, job_id: str) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    if job.status != UPLOADED:
        return RedirectResponse(f"/imports/{job.id}", status_code=303)
    return _mapping_page(request, console, job)


def _start(app: FastAPI, job_id: uuid.UUID) -> None:
    state = app.state

    def stored(count: int) -> None:
        state.backlog.add(count)
        state.resolver.wake()

    jobs_runner.start(state.engine, job_id, stored)


@router.post("/imports/{job_id}/mapping", response_class=HTMLResponse)
def submit_mapping(
    request: Request,
    console: DataManager,
    session: DbSession,
    background: BackgroundTasks,
    job_id: str,
    field: Annotated[list[str] | None, Form()] = None,
) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    if job.status != UPLOADED:
        return RedirectResponse(f"/imports/{job.id}", status_code=303)
    chosen = list(field or [])
    try:
        jobs.submit_mapping(session, job, chosen, utc_now())
    except AppError as exc:
        return _mapping_page(
            request, console, job, chosen=chosen, refusal=_refusal(exc), status=exc.status
        )
    # Background tasks run after the response, and so after the request's commit.
    background.add_task(_start, request.app, job.id)
    return RedirectResponse(f"/imports/{job.id}?notice=import_started", status_code=303)


def _job_context(session: Session, job: ImportJob) -> dict[str, Any]:
    now = utc_now()
    report = job.report if job.status == DONE else {}
    rejected = report.get("rejected", [])
    return {
        **_common(),
        "job": job,
        "progress": jobs.progress_of(job, now),
        "stages": STAGES,
        "can_rerun": jobs.can_rerun(job, now),
        "report": report,
        "rejected": rejected[:REJECTED_SHOWN],
        "rejected_kept": len(rejected),
        "reasons": REASONS,
        "labels": FIELD_LABELS[job.kind],
    }


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, console: DataManager, session: DbSession, job_id: str) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    if job.status == UPLOADED:
        return RedirectResponse(f"/imports/{job.id}/mapping", status_code=303)
    context = {**_job_context(session, job), "author": jobs.author(session, job)}
    return render(request, "imports/job.html", context, console=console)


@router.get("/imports/{job_id}/progress", response_class=HTMLResponse)
def progress(request: Request, console: DataManager, session: DbSession, job_id: str) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    context = _job_context(session, job)
    return render(request, "imports/_progress.html", context, console=console)


@router.get("/imports/{job_id}/rejected.csv")
def rejected_csv(
    request: Request, console: DataManager, session: DbSession, job_id: str
) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    if job.status != DONE:
        raise Conflict("The import has not finished yet", code="report_not_ready")
    headers = {
        "Content-Disposition": f'attachment; filename="import-{job.id}-rejected.csv"',
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
    }
    return Response(jobs.rejected_csv(job), media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/imports/{job_id}/rerun", response_class=HTMLResponse)
def rerun(
    request: Request,
    console: DataManager,
    session: DbSession,
    background: BackgroundTasks,
    job_id: str,
) -> Response:
    job = jobs.get_job(session, console.workspace_id, job_id)
    try:
        jobs.requeue(session, job, utc_now())
    except AppError as exc:
        context = {
            **_job_context(session, job),
            "author": jobs.author(session, job),
            "refusal": _refusal(exc),
        }
        return render(request, "imports/job.html", context, console=console, status=exc.status)
    background.add_task(_start, request.app, job.id)
    return RedirectResponse(f"/imports/{job.id}?notice=import_started", status_code=303)
