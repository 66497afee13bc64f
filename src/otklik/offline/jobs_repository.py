"""SQL for console import jobs: the request side works through the session, the runner in short
transactions of its own, each guarded by the run's start time so a superseded run writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session, defer

from otklik.models import ImportJob, User, Workspace
from otklik.models.imports import QUEUED, RUNNING


def add(session: Session, job: ImportJob) -> None:
    session.add(job)
    session.flush()


def get(session: Session, workspace_id: uuid.UUID, job_id: uuid.UUID) -> ImportJob | None:
    """The job without its file: pages never need the bytes, only the runner and the preview."""
    stmt = (
        select(ImportJob)
        .options(defer(ImportJob.content))
        .where(ImportJob.id == job_id, ImportJob.workspace_id == workspace_id)
    )
    return session.execute(stmt).scalar_one_or_none()


def content(session: Session, job_id: uuid.UUID) -> bytes | None:
    data = session.execute(select(ImportJob.content).where(ImportJob.id == job_id)).scalar()
    return None if data is None else bytes(data)


def author_email(session: Session, user_id: uuid.UUID | None) -> str | None:
    if user_id is None:
        return None
    return session.execute(select(User.email).where(User.id == user_id)).scalar()


def recent(session: Session, workspace_id: uuid.UUID, limit: int) -> Sequence[Any]:
    """The newest jobs with their author's email; neither file nor report is read."""
    stmt = (
        select(
            ImportJob.id,
            ImportJob.kind,
            ImportJob.filename,
            ImportJob.status,
            ImportJob.total_rows,
            ImportJob.accepted_rows,
            ImportJob.rejected_rows,
            ImportJob.stored_events,
            ImportJob.created_at,
            ImportJob.finished_at,
            User.email,
        )
        .outerjoin(User, User.id == ImportJob.user_id)
        .where(ImportJob.workspace_id == workspace_id)
        .order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
        .limit(limit)
    )
    return session.execute(stmt).all()


@dataclass(frozen=True)
class RunInput:
    workspace_id: uuid.UUID
    kind: str
    filename: str
    content: bytes | None
    mapping: dict[str, Any]
    region: str
    currency: str


def claim(conn: Connection, job_id: uuid.UUID, run: datetime) -> bool:
    """Queued -> running, with counters reset; false if another runner took it first."""
    stmt = (
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == QUEUED)
        .values(
            status=RUNNING,
            started_at=run,
            finished_at=None,
            processed_rows=0,
            accepted_rows=0,
            rejected_rows=0,
            stored_events=0,
            error=None,
            report={"heartbeat": run.isoformat()},
        )
    )
    return conn.execute(stmt).rowcount == 1


def run_input(conn: Connection, job_id: uuid.UUID) -> RunInput:
    row = conn.execute(
        select(
            ImportJob.workspace_id,
            ImportJob.kind,
            ImportJob.filename,
            ImportJob.content,
            ImportJob.mapping,
            Workspace.default_region,
            Workspace.currency,
        )
        .join(Workspace, Workspace.id == ImportJob.workspace_id)
        .where(ImportJob.id == job_id)
    ).one()
    return RunInput(
        row.workspace_id,
        row.kind,
        row.filename,
        None if row.content is None else bytes(row.content),
        dict(row.mapping or {}),
        row.default_region,
        row.currency,
    )


def update_run(conn: Connection, job_id: uuid.UUID, run: datetime, **values: Any) -> bool:
    """Writes the run's progress or outcome; false when a newer run has taken the job over."""
    stmt = (
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.status == RUNNING,
            ImportJob.started_at == run,
        )
        .values(**values)
    )
    return conn.execute(stmt).rowcount == 1
