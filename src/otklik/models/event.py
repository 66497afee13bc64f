"""The append-only event log (the source of truth) and the record of rejected input."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.time import utc_now
from otklik.models.base import Base, BigIntPK

PENDING = 0
PROCESSED = 1
UNATTRIBUTED = 2  # no usable identifier: kept in the log, on no profile
FAILED = 3  # could not be resolved (recorded in rejected_event as resolve_failed)


def is_pending(status: Any) -> ColumnElement[bool]:
    """`status = 0` with the 0 written into the SQL, not bound.

    A plan made for any value of a parameter (PostgreSQL's generic plan for a prepared
    statement) cannot use the partial index `ix_event_pending`, and would scan the whole log.
    """
    return status == literal_column(str(PENDING))


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id"),
        Index(
            "ix_event_pending",
            "seq",
            sqlite_where=text("status = 0"),
            postgresql_where=text("status = 0"),
        ),
        Index("ix_event_profile_ts", "profile_id", "timestamp", "seq"),
        Index("ix_event_ws_received", "workspace_id", "received_at"),
        # Behaviour conditions of segments ("did X in the last D days") read only this index.
        Index("ix_event_ws_name_ts", "workspace_id", "name", "timestamp", "profile_id"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    user_id: Mapped[str | None] = mapped_column(String(256), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(256), default=None)
    timestamp: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    payload: Mapped[dict[str, Any]] = mapped_column()
    profile_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    status: Mapped[int] = mapped_column(SmallInteger, default=PENDING)
    # False for events the resolver can place from userId/anonymousId alone (see identity.py).
    needs_payload: Mapped[bool] = mapped_column(default=True)


class RejectedEvent(Base):
    """Input that was refused, kept for the debugger: what came, when, and why."""

    __tablename__ = "rejected_event"
    __table_args__ = (Index("ix_rejected_ws_received", "workspace_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class IngestSpoolProgress(Base):
    """How far one ingest journal (ingest/spool.py) has been moved into `event`.

    Saved in the same transaction as the rows it covers, so a restart resumes exactly there.
    """

    __tablename__ = "ingest_spool_progress"

    slot: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[int] = mapped_column(BigInteger)
    byte_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
