"""Runs one queued console import: converts the stored file, stores its events, keeps score.

The job's counters are written as it goes, each update its own short transaction, so the
console's progress bar reads them from any process. A run is identified by the `started_at`
it claimed the job with: if the job is re-queued and claimed again while an old run is still
alive, the old run's next write matches nothing and it stops. Imports are idempotent
(messageIds derive from row content), so running a job again after a crash is always safe.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine

from otklik.kit.db import write_tx
from otklik.kit.errors import AppError, Unprocessable
from otklik.kit.time import utc_now
from otklik.models.imports import DONE, FAILED
from otklik.offline import jobs_repository as repo
from otklik.offline.rows import FileError, read_rows
from otklik.offline.service import CHUNK, ImportReport, convert_file, event_rows, store

log = logging.getLogger(__name__)

# Rejected rows kept in the report (and so in the downloadable CSV), with their values.
REPORT_LIMIT = 5000
MAX_CELL = 300
MAX_COLUMNS = 100
# A queued or running job that this long has written no progress, and that no thread of this
# process runs, has lost its process: the console offers to run it again. Every chunk of
# CHUNK rows writes progress, which takes seconds, not minutes.
STALE_AFTER = timedelta(minutes=2)
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

OnStored = Callable[[int], None]
Clock = Callable[[], datetime]

_active: set[uuid.UUID] = set()
_active_guard = threading.Lock()


def file_format(filename: str) -> str | None:
    """csv, json or jsonl by the file's extension; None for any other file."""
    dot = filename.rfind(".")
    return FORMATS.get(filename[dot:].lower()) if dot >= 0 else None


def is_active(job_id: uuid.UUID) -> bool:
    """Whether a thread of this process is running the job now."""
    with _active_guard:
        return job_id in _active


class Superseded(Exception):
    """The job was claimed again by a newer run; this one must stop without writing."""


def start(engine: Engine, job_id: uuid.UUID, on_stored: OnStored | None = None) -> threading.Thread:
    """Runs the job in a thread of its own; call only after the queuing is committed."""
    thread = threading.Thread(
        target=run_job,
        args=(engine, job_id),
        kwargs={"on_stored": on_stored},
        name=f"import-{job_id}",
        daemon=True,
    )
    thread.start()
    return thread


def run_job(
    engine: Engine,
    job_id: uuid.UUID,
    *,
    on_stored: OnStored | None = None,
    clock: Clock = utc_now,
    chunk: int = CHUNK,
) -> bool:
    """Claims and runs a queued job; false if it was not queued (another runner has it)."""
    run = clock()
    with write_tx(engine) as conn:
        if not repo.claim(conn, job_id, run):
            return False
        job = repo.run_input(conn, job_id)
    with _active_guard:
        _active.add(job_id)
    tracker = _Tracker(engine, job_id, run, clock)
    try:
        outcome = _execute(engine, job, run, tracker, on_stored, chunk)
    except Superseded:
        return False
    except AppError as exc:
        tracker.finish(status=FAILED, error=exc.message[:500], report={"code": exc.code})
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        message = f"The import stopped on an unexpected {type(exc).__name__}; run it again."
        tracker.finish(status=FAILED, error=message, report={"code": "internal_error"})
    else:
        tracker.finish(status=DONE, content=None, **outcome)
    finally:
        with _active_guard:
            _active.discard(job_id)
    return True


class _Tracker:
    def __init__(self, engine: Engine, job_id: uuid.UUID, run: datetime, clock: Clock) -> None:
        self.engine, self.job_id, self.run, self.clock = engine, job_id, run, clock
        self.checked_rows = 0

    def checked(self, count: int) -> None:
        self.checked_rows += count
        self.update(processed_rows=self.checked_rows)

    def update(self, **values: Any) -> None:
        beat = {"heartbeat": self.clock().isoformat()}
        with write_tx(self.engine) as conn:
            if not repo.update_run(conn, self.job_id, self.run, report=beat, **values):
                raise Superseded

    def finish(self, **values: Any) -> None:
        with write_tx(self.engine) as conn:
            # False: a newer run owns the job now, and its outcome is the one to keep.
            repo.update_run(conn, self.job_id, self.run, finished_at=self.clock(), **values)


def _execute(
    engine: Engine,
    job: repo.RunInput,
    run: datetime,
    tracker: _Tracker,
    on_stored: OnStored | None,
    chunk: int,
) -> dict[str, Any]:
    if job.content is None:
        raise Unprocessable("The file is no longer stored; upload it again", code="content_gone")
    fmt = file_format(job.filename) or "csv"
    converted = convert_file(
        job.kind,
        job.content,
        fmt,
        region=job.region,
        currency=job.currency,
        now=run,
        mapping=job.mapping,
        checked=tracker.checked,
    )
    rows = event_rows(job.workspace_id, converted.messages, run)
    total, rejected = converted.rows, len(converted.errors)
    valid = total - rejected
    tracker.update(total_rows=total, processed_rows=total, rejected_rows=rejected)
    new = 0
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        added = store(engine, part)
        new += added
        if added and on_stored is not None:
            on_stored(added)
        # Rows behind the events written so far; an order's rows are counted proportionally.
        tracker.update(accepted_rows=valid * (start + len(part)) // len(rows), stored_events=new)
    report = ImportReport(
        kind=job.kind,
        rows=total,
        accepted=len(rows),
        stored=new,
        unchanged=len(rows) - new,
        rejected=sorted(converted.errors, key=lambda error: error.row),
    )
    body = report.as_dict(limit=REPORT_LIMIT)
    values = rejected_values(job.content, fmt, {item["row"] for item in body["rejected"]})
    columns: list[str] = []
    for item in body["rejected"]:
        item["values"] = values.get(item["row"], {})
        columns.extend(key for key in item["values"] if key not in columns)
    body["columns"] = columns
    return {
        "total_rows": total,
        "processed_rows": total,
        "accepted_rows": valid,
        "rejected_rows": rejected,
        "stored_events": new,
        "report": body,
    }


def rejected_values(data: bytes, fmt: str, numbers: set[int]) -> dict[int, dict[str, str]]:
    """The rows with these numbers as the file has them (before any column mapping)."""
    found: dict[int, dict[str, str]] = {}
    if not numbers:
        return found
    try:
        for number, row in enumerate(read_rows(data, fmt), 1):
            if number in numbers:
                if "__invalid__" in row:
                    found[number] = {"value": cell(row["__invalid__"])}
                else:
                    items = list(row.items())[:MAX_COLUMNS]
                    found[number] = {str(key): cell(value) for key, value in items}
                if len(found) == len(numbers):
                    break
    except FileError:  # the file read once already; nothing more to show if it cannot now
        pass
    return found


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """A value as text for a table or CSV cell, cut to a readable length."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=str).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson goes
            text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
