"""Pydantic shapes of the customer-value API (money is a decimal string, times are UTC ISO)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CENT = Decimal("0.01")
FitStatus = Literal["ok", "partial", "failed"]


def cents(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(round(float(value), 2))).quantize(CENT)


class RefitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(default=90, ge=1, le=3660, description="Expected purchases over this")
    bins: int = Field(default=5, ge=2, le=10, description="RFM scores run 1..bins (5: quintiles)")
    clv_months: int = Field(default=12, ge=1, le=120, description="Lifetime value over this")
    holdout: bool = Field(default=True, description="Also check the forecast on the latest period")


class FitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    fitted_at: datetime = Field(description="The time the scores are as of")
    status: FitStatus = Field(
        description="ok; partial: purchases fitted, spend not (no CLV); failed: no model, "
        "RFM scores only"
    )
    customers: int
    error: str | None = Field(None, description="Why a model could not be fitted")
    duration_ms: int
    params: dict[str, Any] = Field(
        description="bgnbd (r, alpha, a, b), gamma_gamma (p, q, v), rfm edges, horizon, unit"
    )
    quality: dict[str, Any] = Field(
        description="Log-likelihoods, convergence, customers, repeat buyers, spend/frequency "
        "correlation, fit times and the holdout check"
    )


class RefitOut(FitOut):
    scored: int = Field(description="Score rows written")
    changed: int = Field(description="Customers whose RFM class or leaving flag changed")

    @field_validator("changed", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return len(value) if isinstance(value, list) else value


class CellOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    r: int
    f: int
    customers: int
    revenue: Decimal
    segment: str = Field(description="The named class this cell belongs to")

    _money = field_validator("revenue", mode="before")(cents)


class ClassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    customers: int
    revenue: Decimal
    leaving: int = Field(description="Of them, away longer than twice their usual gap")

    _money = field_validator("revenue", mode="before")(cents)


class RfmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    bins: int
    fitted_at: datetime | None
    customers: int
    revenue: Decimal
    cells: list[CellOut] = Field(description="Every (R, F) pair: R from high to low, F rising")
    classes: list[ClassOut]

    _money = field_validator("revenue", mode="before")(cents)


class ScoresOut(BaseModel):
    profile_id: uuid.UUID = Field(description="The person (root profile) the scores are of")
    requested_id: uuid.UUID
    recency_days: float = Field(description="Days since the last purchase day")
    frequency: int = Field(description="Purchase days (orders on one day count once)")
    monetary: Decimal = Field(description="Total spend")
    r: int
    f: int
    m: int
    rfm_class: str
    p_alive: float | None = Field(description="BG/NBD probability the customer is still active")
    expected_purchases: float | None = Field(description="Over the fit's horizon_days")
    clv: Decimal | None = Field(description="Discounted value of the fit's clv_months")
    usual_gap_days: float | None = Field(description="Median days between purchase days")
    leaving: bool = Field(description="Away longer than twice their usual gap")
    scored_at: datetime

    _money = field_validator("monetary", "clv", mode="before")(cents)
