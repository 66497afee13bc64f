"""Pydantic shapes of the profiles REST API (money is a decimal string, times are UTC ISO)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page"
    )


class IdentityOut(BaseModel):
    type: str
    value: str
    created_at: datetime


class AggregatesOut(BaseModel):
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    events_count: int
    orders_count: int
    revenue: Decimal
    last_order_at: datetime | None


class ProfileOut(BaseModel):
    id: uuid.UUID = Field(description="The root profile that answers (the person)")
    requested_id: uuid.UUID = Field(description="The id that was asked for")
    merged_into: uuid.UUID | None = Field(
        None, description="Set when the requested profile was merged: the root it lives under"
    )
    merged_ids: list[uuid.UUID] = Field(description="Profiles merged into this one")
    traits: dict[str, Any]
    email: str | None
    phone: str | None
    identities: list[IdentityOut]
    aggregates: AggregatesOut
    erased: bool
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProfileSummary(BaseModel):
    id: uuid.UUID
    traits: dict[str, Any]
    email: str | None
    phone: str | None
    created_at: datetime
    aggregates: AggregatesOut


class EventOut(BaseModel):
    seq: int
    type: str
    name: str | None
    timestamp: datetime
    received_at: datetime
    message_id: str
    profile_id: uuid.UUID | None
    payload: dict[str, Any]


class OrderItemOut(BaseModel):
    sku: str
    name: str | None
    quantity: int
    price: Decimal


class OrderOut(BaseModel):
    id: uuid.UUID
    external_id: str
    profile_id: uuid.UUID
    placed_at: datetime
    total: Decimal
    currency: str
    status: str
    source: str
    message_id: str | None
    items: list[OrderItemOut]


class TraitsPatch(BaseModel):
    """Trait edits, applied like an identify call: set, then set_once, then unset."""

    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(default_factory=dict)
    set_once: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)

    @field_validator("set", "set_once")
    @classmethod
    def _plain_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        # `$`-keys are operators in identify traits ($set_once, $unset); never trait names.
        bad = [key for key in value if not key or key.startswith("$")]
        if bad:
            raise ValueError(f"trait names may not be empty or start with '$': {bad}")
        return value


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    winner_id: uuid.UUID
    loser_id: uuid.UUID


class MergeLogOut(BaseModel):
    id: uuid.UUID
    winner_id: uuid.UUID
    loser_id: uuid.UUID
    reason: str
    created_at: datetime
    undone_at: datetime | None
    event_seq_at_merge: int
    snapshot: dict[str, Any]


class MergeResult(BaseModel):
    merge: MergeLogOut
    winner: ProfileOut
    loser: ProfileOut


class DuplicateProfile(BaseModel):
    id: uuid.UUID
    user_ids: list[str]
    email: str | None
    phone: str | None
    traits: dict[str, Any] = Field(description="A few traits, names and contacts first")
    events_count: int
    created_at: datetime


class DuplicateGroup(BaseModel):
    key: str = Field(description="email or phone")
    value: str
    profiles: list[DuplicateProfile]


class ClusterMember(BaseModel):
    id: uuid.UUID
    merged_into: uuid.UUID | None
    created_at: datetime
    erased_at: datetime | None


class ExportOut(BaseModel):
    exported_at: datetime
    profile: ProfileOut
    profiles: list[ClusterMember]
    events: list[EventOut]
    orders: list[OrderOut]
    merges: list[MergeLogOut]
