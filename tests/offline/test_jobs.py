"""The console's import jobs: a stored file, mapped and run in chunks with its counters kept up
to date in the store; a failed or stalled job runs again safely; a superseded run writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from otklik.kit.db import session_scope, write_tx
from otklik.kit.errors import AppError
from otklik.kit.time import utc_now
from otklik.models import Event, ImportJob
from otklik.models.imports import DONE, FAILED, QUEUED, RUNNING, UPLOADED
from otklik.offline import jobs, jobs_runner
from otklik.offline import jobs_repository as repo
from otklik.offline.columns import apply_mapping, suggest_mapping
from tests.conftest import Tenant
from tests.offline.support import csv_file

HEADER = ("Client ID", "Mail", "Bonus", "Notes")
ROWS = [
    ("a-1", "a1@shop.ru", "10", "vip"),
    ("a-2", "not-an-email", "20", ""),
    ("a-3", "a3@shop.ru", "30", ""),
    ("a-4", "a4@shop.ru", "40", ""),
    ("a-5", "a5@shop.ru", "-50", ""),
]
FILE = csv_file(HEADER, ROWS)
CHOICES = ["external_id", "email", jobs.TRAIT, jobs.IGNORE]


def uploaded(engine: Engine, tenant: Tenant, data: bytes = FILE, name: str = "a.csv") -> uuid.UUID:
    with session_scope(engine) as session:
        job = jobs.prepare_job(
            workspace_id=tenant.id,
            user_id=None,
            kind="customers",
            filename=name,
            data=data,
            max_bytes=1_000_000,
            now=utc_now(),
        )
        return jobs.store_job(session, job).id


def queued(engine: Engine, tenant: Tenant, choices: list[str] = CHOICES) -> uuid.UUID:
    job_id = uploaded(engine, tenant)
    with session_scope(engine) as session:
        jobs.submit_mapping(session, load(session, tenant, job_id), choices, utc_now())
    return job_id


def load(session: Any, tenant: Tenant, job_id: uuid.UUID) -> ImportJob:
    return jobs.get_job(session, tenant.id, str(job_id))


def read(engine: Engine, tenant: Tenant, job_id: uuid.UUID) -> ImportJob:
    with session_scope(engine, write=False) as session:
        job = load(session, tenant, job_id)
        session.expunge(job)
        return job


def content(engine: Engine, job_id: uuid.UUID) -> bytes | None:
    with session_scope(engine, write=False) as session:
        return repo.content(session, job_id)


def traits(engine: Engine, tenant: Tenant) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        payloads = conn.execute(
            select(Event.payload).where(Event.workspace_id == tenant.id)
        ).scalars()
        return {p["userId"]: p["traits"] for p in payloads}


def test_an_upload_is_kept_with_its_columns_first_rows_and_suggested_fields(
    engine: Engine, tenant: Tenant
) -> None:
    job = read(engine, tenant, uploaded(engine, tenant))

    assert (job.status, job.total_rows, job.kind) == (UPLOADED, 5, "customers")
    assert job.report["columns"] == ["client id", "mail", "bonus", "notes"]
    assert job.report["sample"][0] == ["a-1", "a1@shop.ru", "10", "vip"]
    form = jobs.mapping_form(job)
    assert [c.selected for c in form] == ["external_id", "email", jobs.TRAIT, jobs.TRAIT]
    assert form[0].samples[:2] == ["a-1", "a-2"]


def test_a_run_stores_the_mapped_rows_in_chunks_and_reports_the_rest(
    engine: Engine, tenant: Tenant
) -> None:
    job_id = queued(engine, tenant)
    stored: list[int] = []
    seen: list[tuple[int, int, int, int]] = []
    real = repo.update_run

    def spy(conn: Any, jid: uuid.UUID, run: datetime, **values: Any) -> bool:
        ok = real(conn, jid, run, **values)
        row = conn.execute(
            select(
                ImportJob.processed_rows,
                ImportJob.accepted_rows,
                ImportJob.rejected_rows,
                ImportJob.stored_events,
            ).where(ImportJob.id == jid)
        ).one()
        seen.append(tuple(row))
        return ok

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(repo, "update_run", spy)
        assert jobs_runner.run_job(engine, job_id, on_stored=stored.append, chunk=2)

    job = read(engine, tenant, job_id)
    assert job.status == DONE
    assert (job.total_rows, job.processed_rows, job.accepted_rows, job.rejected_rows) == (
        5,
        5,
        4,
        1,
    )
    assert job.stored_events == 4
    assert stored == [2, 2]  # the resolver is told after each chunk
    # The counters grew chunk by chunk, each write its own transaction.
    assert seen[:4] == [(5, 0, 0, 0), (5, 0, 1, 0), (5, 2, 1, 2), (5, 4, 1, 4)]
    assert content(engine, job_id) is None  # the file is not kept once imported
    assert job.started_at is not None and job.finished_at is not None
    report = job.report
    assert (report["rows"], report["accepted"], report["stored"], report["unchanged"]) == (
        5,
        4,
        4,
        0,
    )
    assert report["rejected"] == [
        {
            "row": 2,
            "code": "invalid_email",
            "message": "'not-an-email' is not an email address",
            "field": "email",
            "values": {"client id": "a-2", "mail": "not-an-email", "bonus": "20", "notes": ""},
        }
    ]
    assert report["columns"] == ["client id", "mail", "bonus", "notes"]
    imported = traits(engine, tenant)
    assert imported["a-1"] == {"email": "a1@shop.ru", "bonus": "10"}  # notes were ignored
    assert jobs.progress_of(job, utc_now()) == jobs.Progress(100, "done", True)


def test_a_job_runs_once_however_often_it_is_started(engine: Engine, tenant: Tenant) -> None:
    job_id = queued(engine, tenant)

    assert jobs_runner.run_job(engine, job_id)
    assert not jobs_runner.run_job(engine, job_id)
    assert read(engine, tenant, job_id).stored_events == 4


def test_a_failed_run_keeps_the_file_and_running_it_again_stores_each_row_once(
    engine: Engine, tenant: Tenant
) -> None:
    job_id = queued(engine, tenant)
    real = jobs_runner.store
    calls = 0

    def dies_on_second_chunk(eng: Engine, rows: Any, progress: Any = None) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed mid-import")
        return real(eng, rows, progress)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jobs_runner, "store", dies_on_second_chunk)
        jobs_runner.run_job(engine, job_id, chunk=2)

    job = read(engine, tenant, job_id)
    assert job.status == FAILED
    assert job.error is not None and "RuntimeError" in job.error
    assert "killed" not in job.error  # no internals in what people read
    assert content(engine, job_id) == FILE
    assert jobs.can_rerun(job, utc_now())
    assert len(traits(engine, tenant)) == 2

    with session_scope(engine) as session:
        jobs.requeue(session, load(session, tenant, job_id), utc_now())
    assert jobs_runner.run_job(engine, job_id, chunk=2)

    job = read(engine, tenant, job_id)
    assert job.status == DONE
    assert (job.report["stored"], job.report["unchanged"]) == (2, 2)
    assert set(traits(engine, tenant)) == {"a-1", "a-3", "a-4", "a-5"}


def test_a_stalled_job_is_offered_again_and_its_old_run_can_no_longer_write(
    engine: Engine, tenant: Tenant
) -> None:
    job_id = queued(engine, tenant)
    long_ago = utc_now() - timedelta(hours=1)
    with write_tx(engine) as conn:  # a run whose process died after it claimed the job
        assert repo.claim(conn, job_id, long_ago)
    job = read(engine, tenant, job_id)
    assert job.status == RUNNING
    assert not jobs.is_stale(job, long_ago + timedelta(seconds=30))
    assert jobs.is_stale(job, utc_now())
    assert jobs.progress_of(job, utc_now()).stage == "stale"

    with session_scope(engine) as session:
        jobs.requeue(session, load(session, tenant, job_id), utc_now())
    assert read(engine, tenant, job_id).status == QUEUED
    assert jobs_runner.run_job(engine, job_id)

    with write_tx(engine) as conn:
        assert not repo.update_run(conn, job_id, long_ago, processed_rows=0)
    assert read(engine, tenant, job_id).processed_rows == 5


def test_running_or_finished_jobs_are_not_run_again(engine: Engine, tenant: Tenant) -> None:
    job_id = queued(engine, tenant)
    with session_scope(engine) as session, pytest.raises(AppError) as refused:
        jobs.requeue(session, load(session, tenant, job_id), utc_now())  # just queued
    assert refused.value.code == "import_not_rerunnable"
    jobs_runner.run_job(engine, job_id)
    with session_scope(engine) as session, pytest.raises(AppError):
        jobs.requeue(session, load(session, tenant, job_id), utc_now())


@pytest.mark.parametrize(
    ("choices", "code"),
    [
        (["external_id", "email", "email", jobs.IGNORE], "field_twice"),
        ([jobs.IGNORE, "email", jobs.TRAIT, jobs.IGNORE], "field_missing"),
        (["external_id", "email", "placed_at", jobs.IGNORE], "invalid_mapping"),
        (["external_id"], "invalid_mapping"),
    ],
)
def test_a_mapping_names_each_required_field_once_and_only_known_fields(
    engine: Engine, tenant: Tenant, choices: list[str], code: str
) -> None:
    job_id = uploaded(engine, tenant)
    with session_scope(engine) as session, pytest.raises(AppError) as refused:
        jobs.submit_mapping(session, load(session, tenant, job_id), choices, utc_now())
    assert refused.value.code == code
    assert read(engine, tenant, job_id).status == UPLOADED


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        ("external_id\nА\n".encode("cp1251"), "a.csv", "invalid_encoding"),
        (b"external_id\n", "a.csv", "empty_file"),
        (b"x" * 20, "a.csv", "payload_too_large"),
        (b"[1, 2", "a.json", "invalid_json"),
        (b"a,b\n1,2\n", "a.pdf", "unsupported_format"),
    ],
)
def test_files_that_cannot_be_read_are_refused_before_anything_is_kept(
    engine: Engine, tenant: Tenant, data: bytes, name: str, code: str
) -> None:
    with pytest.raises(AppError) as refused:
        jobs.prepare_job(
            workspace_id=tenant.id,
            user_id=None,
            kind="customers",
            filename=name,
            data=data,
            max_bytes=10 if code == "payload_too_large" else 1000,
            now=utc_now(),
        )
    assert refused.value.code == code


def test_the_rejected_rows_csv_cannot_run_formulas() -> None:
    job = ImportJob(
        kind="customers",
        status=DONE,
        report={
            "columns": ["id", "email"],
            "rejected": [
                {
                    "row": 1,
                    "code": "invalid_email",
                    "field": "email",
                    "message": "bad",
                    "values": {"id": "+1", "email": "=1+1"},
                },
                {"row": 2, "code": "x", "field": None, "message": "@SUM(A1)", "values": {}},
            ],
        },
    )
    text = jobs.rejected_csv(job)
    assert text.startswith("\ufeff")
    lines = text[1:].splitlines()
    assert lines == [
        "row,code,field,message,id,email",
        "1,invalid_email,email,bad,'+1,'=1+1",
        "2,x,,'@SUM(A1),,",
    ]


def test_columns_are_matched_to_fields_by_name_then_by_synonym_each_once() -> None:
    columns = ["ID", "external_id", "E-Mail", "Телефон", "mail", "Extra"]
    assert suggest_mapping("customers", columns) == {
        "ID": None,  # external_id is taken by its exact name
        "external_id": "external_id",
        "E-Mail": "email",
        "Телефон": "phone",
        "mail": None,
        "Extra": None,
    }
    rows: list[dict[str, Any]] = [{"ID": "1", "a": "x", "b": "y"}, {"__invalid__": 3}]
    mapped = list(apply_mapping(rows, {"ID": "external_id", "a": "city", "b": None}))
    assert mapped == [{"external_id": "1", "city": "x"}, {"__invalid__": 3}]


def test_progress_runs_through_checking_then_storing() -> None:
    now = utc_now()
    job = ImportJob(id=uuid.uuid4(), status=RUNNING, total_rows=10, created_at=now, report={})

    def at(**counts: int) -> int:
        return jobs.progress_of(_with(job, **counts), now).percent

    assert at(processed_rows=0, accepted_rows=0, rejected_rows=0) == 0
    assert at(processed_rows=4, accepted_rows=0, rejected_rows=0) == 20
    assert at(processed_rows=10, accepted_rows=0, rejected_rows=2) == 60
    assert at(processed_rows=10, accepted_rows=8, rejected_rows=2) == 99  # 100 only when done
    assert jobs.progress_of(_with(job, processed_rows=4), now).stage == "checking"
    assert jobs.progress_of(_with(job, processed_rows=10), now).stage == "storing"


def _with(job: ImportJob, **counts: int) -> ImportJob:
    for name, value in counts.items():
        setattr(job, name, value)
    return job
