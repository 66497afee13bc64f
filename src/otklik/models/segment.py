"""Segments: their rules, who is in them (with history), and the work that keeps them current."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base, BigIntPK, JSONType


class Segment(Base):
    __tablename__ = "segment"
    __table_args__ = (Index("ix_segment_ws_name", "workspace_id", "name", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # dynamic: kept current from its rules; static: an uploaded list or a snapshot.
    kind: Mapped[str] = mapped_column(String(16), default="dynamic")
    rules: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # What can change membership: "event:<name>", "trait:<key>", "order", "reach", "score", ...
    topics: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Ids of the segments its rules refer to (they are built first; cycles are refused).
    depends_on: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # What validation learned: trait types to read the JSON as, time-relative, calendar.
    analysis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Bumped by every edit; incremental evaluation reloads rules when it moves.
    version: Mapped[int] = mapped_column(default=1)
    # building (first build not done: readers see no members) | ready | failed
    state: Mapped[str] = mapped_column(String(16), default="building")
    members_count: Mapped[int] = mapped_column(default=0)
    built_at: Mapped[datetime | None] = mapped_column(default=None)
    build_ms: Mapped[int | None] = mapped_column(default=None)
    build_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Segments with calendar conditions (birthdays) are swept once a day for the day's flips.
    next_sweep_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class SegmentMembership(Base):
    """One stay of a profile in a segment; exited_at is null while it lasts."""

    __tablename__ = "segment_membership"
    __table_args__ = (
        Index(
            "ix_segment_membership_current",
            "segment_id",
            "profile_id",
            unique=True,
            sqlite_where=text("exited_at IS NULL"),
            postgresql_where=text("exited_at IS NULL"),
        ),
        Index("ix_segment_membership_profile", "profile_id", "segment_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    segment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"))
    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    entered_at: Mapped[datetime] = mapped_column()
    exited_at: Mapped[datetime | None] = mapped_column(default=None)


class SegmentDirty(Base):
    """A profile that changed, and what about it changed; drained by the segment loop."""

    __tablename__ = "segment_dirty"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The topics that changed, one per line ("event:Order Completed", "trait:city", "*").
    topics: Mapped[str] = mapped_column(Text)


class SegmentDue(Base):
    """When a time-relative condition of a segment can next flip for one profile."""

    __tablename__ = "segment_due"
    __table_args__ = (Index("ix_segment_due_at", "due_at"),)

    segment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    due_at: Mapped[datetime] = mapped_column()


class SegmentState(Base):
    """One row: how far the segment loop has got (for the console's health figures)."""

    __tablename__ = "segment_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    evaluated: Mapped[int] = mapped_column(BigInteger, default=0)
