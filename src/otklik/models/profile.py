"""A person, the identifiers that point at them, and the log of merges between profiles."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base


class Profile(Base):
    __tablename__ = "profile"
    __table_args__ = (
        Index("ix_profile_ws_email", "workspace_id", "email"),
        Index("ix_profile_ws_phone", "workspace_id", "phone"),
        Index("ix_profile_ws_created", "workspace_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Normalised contact points copied from traits, so duplicates and search use an index.
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    # Set when this profile was merged into another; the row stays so a merge can be undone.
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    first_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    events_count: Mapped[int] = mapped_column(default=0)
    orders_count: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"))
    last_order_at: Mapped[datetime | None] = mapped_column(default=None)


class Identity(Base):
    """One normalised identifier value; unique per workspace, so it names one profile."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("workspace_id", "type", "value"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(512))
    profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("profile.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class MergeLog(Base):
    __tablename__ = "merge_log"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    winner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    loser_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reason: Mapped[str] = mapped_column(String(32))
    # What undo needs: identities moved, both trait sets before, re-pointed earlier losers.
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Events with a higher seq arrived after the merge; undo re-homes those that were the loser's.
    event_seq_at_merge: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


class ResolverState(Base):
    """One row: a version every writer of profiles and identities bumps.

    The resolver prepares a batch from reads taken without the write lock, then writes it
    only if the version is still the one it read; otherwise it redoes the batch under the lock.
    """

    __tablename__ = "resolver_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
