"""An uploaded file being imported from the console: its mapping, progress and report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base

UPLOADED = "uploaded"  # waiting for the column mapping
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


class ImportJob(Base):
    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_ws_created", "workspace_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # customers | orders
    filename: Mapped[str] = mapped_column(String(255))
    # Kept in the store, not on a local disk, so any API or worker process can run the job;
    # emptied once the job finishes.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # Source column -> field name the importer knows (email, phone, order_id, ...).
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=UPLOADED)
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    accepted_rows: Mapped[int] = mapped_column(default=0)
    rejected_rows: Mapped[int] = mapped_column(default=0)
    stored_events: Mapped[int] = mapped_column(default=0)
    # The rejected rows with their reasons (capped), and an error if the whole job failed.
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
