"""Console import jobs: accept a file, map its columns, queue it, show progress and the report.

The rules live here; jobs_runner.py runs a queued job and jobs_repository.py holds the SQL.
Nothing here commits: the request wrapper does, and only then is the runner started.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from otklik.kit.errors import AppError, Conflict, NotFound, Unprocessable
from otklik.models import ImportJob
from otklik.models.imports import DONE, FAILED, QUEUED, RUNNING, UPLOADED
from otklik.offline import columns as cols
from otklik.offline import jobs_repository as repo
from otklik.offline import rows as convert
from otklik.offline.jobs_runner import STALE_AFTER, cell, file_format, is_active

IGNORE = "__ignore__"
TRAIT = "__trait__"  # a customer column kept as a trait under its own name
SAMPLE_ROWS = 5
SAMPLE_CELL = 120
RECENT = 30
# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportRefused(Unprocessable):
    code = "import_refused"


class FileTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class ImportNotFound(NotFound):
    code = "import_not_found"


class MappingInvalid(Unprocessable):
    code = "invalid_mapping"


class NotRerunnable(Conflict):
    code = "import_not_rerunnable"


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ImportNotFound("No such import in this workspace") from None


def get_job(session: Session, workspace_id: uuid.UUID, job_id: str) -> ImportJob:
    job = repo.get(session, workspace_id, parse_id(job_id))
    if job is None:
        raise ImportNotFound("No such import in this workspace")
    return job


def recent_jobs(session: Session, workspace_id: uuid.UUID, limit: int = RECENT) -> Sequence[Any]:
    return repo.recent(session, workspace_id, limit)


def author(session: Session, job: ImportJob) -> str | None:
    return repo.author_email(session, job.user_id)


def store_job(session: Session, job: ImportJob) -> ImportJob:
    repo.add(session, job)
    return job


def prepare_job(
    *,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID | None,
    kind: str,
    filename: str,
    data: bytes,
    max_bytes: int,
    now: datetime,
) -> ImportJob:
    """Checks the file reads as a whole; the job keeps it, with its columns and first rows.

    Not stored yet (see store_job): reading a large file needs no store, nor its write lock.
    """
    # Some browsers send the full local path; only the name means anything here.
    filename = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    if kind not in convert.KINDS:
        raise ImportRefused("Choose customers or orders", code="unknown_import")
    fmt = file_format(filename)
    if fmt is None:
        raise ImportRefused("Upload a .csv, .json or .jsonl file", code="unsupported_format")
    if len(data) > max_bytes:
        raise FileTooLarge(f"The file exceeds {max_bytes} bytes", details={"limit": max_bytes})
    if not data.strip():
        raise ImportRefused("The file is empty", code="empty_file")
    try:
        shape = cols.inspect_file(data, fmt, sample=SAMPLE_ROWS)
    except convert.FileError as exc:
        raise ImportRefused(exc.message, code=exc.code) from exc
    if not shape.rows:
        raise ImportRefused("The file has no rows after its header", code="empty_file")
    if not shape.columns:
        raise ImportRefused("The file has no columns to import", code="missing_header")
    sample = [
        [cell(row.get(column), SAMPLE_CELL) for column in shape.columns] for row in shape.sample
    ]
    job = ImportJob(
        workspace_id=workspace_id,
        user_id=user_id,
        kind=kind,
        filename=filename[-255:],
        content=data,
        status=UPLOADED,
        total_rows=shape.rows,
        # Until the job runs, the report holds what the mapping page shows.
        report={"columns": shape.columns, "sample": sample},
        created_at=now,
    )
    return job


@dataclass(frozen=True)
class ColumnChoice:
    column: str
    samples: list[str]
    selected: str  # a field name, IGNORE or TRAIT
    trait_allowed: bool


def mapping_form(job: ImportJob, chosen: Sequence[str] | None = None) -> list[ColumnChoice]:
    """Each column with its first values and the field it feeds: as chosen, else as guessed."""
    columns: list[str] = list(job.report.get("columns", []))
    sample: list[list[str]] = list(job.report.get("sample", []))
    guessed = cols.suggest_mapping(job.kind, columns)
    customers = job.kind == convert.CUSTOMERS
    out = []
    for index, column in enumerate(columns):
        if chosen is not None and index < len(chosen):
            selected = chosen[index]
        else:
            selected = guessed[column] or (TRAIT if customers else IGNORE)
        trait = customers and cols.normalise_header(column) not in cols.FIELDS[job.kind]
        values = [row[index] for row in sample if index < len(row)]
        out.append(ColumnChoice(column, values, selected, trait))
    return out


def submit_mapping(session: Session, job: ImportJob, choices: Sequence[str], now: datetime) -> None:
    """Saves the column mapping and queues the job; the caller starts it after commit."""
    if job.status != UPLOADED:
        raise NotRerunnable("This import has already started", code="already_started")
    job.mapping = build_mapping(job.kind, list(job.report.get("columns", [])), choices)
    job.status = QUEUED
    job.report = {"heartbeat": now.isoformat()}


def build_mapping(kind: str, columns: Sequence[str], choices: Sequence[str]) -> cols.Mapping:
    if len(choices) != len(columns):
        raise MappingInvalid("Choose a field for every column", code="invalid_mapping")
    fields = cols.FIELDS[kind]
    mapping: cols.Mapping = {}
    used: dict[str, str] = {}
    for column, choice in zip(columns, choices, strict=True):
        if choice == IGNORE:
            mapping[column] = None
            continue
        if choice == TRAIT and kind == convert.CUSTOMERS:
            target = column
        elif choice in fields:
            target = choice
        else:
            raise MappingInvalid(f"{choice!r} is not a field of {kind}", code="invalid_mapping")
        if target in fields and target in used:
            raise MappingInvalid(
                f"Both {used[target]!r} and {column!r} are mapped to {target}",
                code="field_twice",
                details={"field": target},
            )
        used[target] = column
        mapping[column] = target
    missing = [name for name in cols.REQUIRED[kind] if name not in used]
    if missing:
        raise MappingInvalid(
            f"Map a column to {', '.join(missing)}",
            code="field_missing",
            details={"fields": ", ".join(missing)},
        )
    return mapping


def is_stale(job: ImportJob, now: datetime) -> bool:
    """Queued or running, yet nobody has moved it on for a while: its process has gone."""
    if job.status not in (QUEUED, RUNNING) or is_active(job.id):
        return False
    beat = job.report.get("heartbeat") if isinstance(job.report, dict) else None
    try:
        last = datetime.fromisoformat(beat) if beat else None
    except ValueError:
        last = None
    last = last or job.started_at or job.created_at
    return now - last > STALE_AFTER


def can_rerun(job: ImportJob, now: datetime) -> bool:
    return job.status == FAILED or is_stale(job, now)


def requeue(session: Session, job: ImportJob, now: datetime) -> None:
    """Queues a failed or stalled job again; the caller starts it after commit.

    Safe whatever the last run wrote: messageIds come from row content, so events stored
    before the failure are recognised and not stored twice.
    """
    if not can_rerun(job, now):
        raise NotRerunnable("Only a failed or stalled import can be run again")
    if repo.content(session, job.id) is None:
        raise NotRerunnable("The file is no longer stored; upload it again", code="content_gone")
    job.status = QUEUED
    job.error = None
    job.report = {"heartbeat": now.isoformat()}


@dataclass(frozen=True)
class Progress:
    percent: int
    stage: str  # waiting | checking | storing | done | failed | stale
    finished: bool


def progress_of(job: ImportJob, now: datetime) -> Progress:
    """Checking the rows is the first half of the bar, storing their events the second."""
    if job.status == DONE:
        return Progress(100, "done", True)
    if job.status == FAILED:
        return Progress(0, "failed", True)
    if is_stale(job, now):
        return Progress(0, "stale", True)
    if job.status != RUNNING:
        return Progress(0, "waiting", False)
    total = max(job.total_rows, 1)
    settled = job.accepted_rows + job.rejected_rows
    percent = min(99, (min(job.processed_rows, total) + min(settled, total)) * 50 // total)
    stage = "storing" if job.processed_rows >= job.total_rows else "checking"
    return Progress(percent, stage, False)


def rejected_csv(job: ImportJob) -> str:
    """The rejected rows with their reasons and values, safe to open in a spreadsheet.

    Starts with a byte-order mark so Excel reads it as UTF-8 (Cyrillic names stay legible).
    """
    report = job.report if job.status == DONE else {}
    columns: list[str] = list(report.get("columns", []))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in ["row", "code", "field", "message", *columns]])
    for item in report.get("rejected", []):
        values = item.get("values", {})
        line = [item["row"], item["code"], item.get("field") or "", item["message"]]
        line += [values.get(column, "") for column in columns]
        writer.writerow([safe_cell(value) for value in line])
    return "\ufeff" + buffer.getvalue()


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
