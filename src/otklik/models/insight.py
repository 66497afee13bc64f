"""Customer model fits per workspace and the scores they give each profile."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base


class InsightFit(Base):
    """One fitting run: the parameters (BG/NBD, Gamma-Gamma, RFM edges) and how good they are."""

    __tablename__ = "insight_fit"
    __table_args__ = (Index("ix_insight_fit_ws_fitted", "workspace_id", "fitted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    fitted_at: Mapped[datetime] = mapped_column(default=utc_now)
    # ok | failed (too few customers, no repeat buyers, ...): the error says why.
    status: Mapped[str] = mapped_column(String(16), default="ok")
    customers: Mapped[int] = mapped_column(default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(default=0)


class ProfileScore(Base):
    """A profile's RFM scores, churn signals and predicted value, from the latest fit."""

    __tablename__ = "profile_score"
    __table_args__ = (Index("ix_profile_score_ws_class", "workspace_id", "rfm_class"),)

    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    recency_days: Mapped[float | None] = mapped_column(default=None)
    frequency: Mapped[int] = mapped_column(default=0)
    monetary: Mapped[float] = mapped_column(default=0.0)
    r: Mapped[int | None] = mapped_column(default=None)
    f: Mapped[int | None] = mapped_column(default=None)
    m: Mapped[int | None] = mapped_column(default=None)
    rfm_class: Mapped[str | None] = mapped_column(String(24), default=None)
    p_alive: Mapped[float | None] = mapped_column(default=None)
    expected_purchases: Mapped[float | None] = mapped_column(default=None)
    clv: Mapped[float | None] = mapped_column(default=None)
    usual_gap_days: Mapped[float | None] = mapped_column(default=None)
    leaving: Mapped[bool] = mapped_column(default=False)
    scored_at: Mapped[datetime] = mapped_column(default=utc_now)
