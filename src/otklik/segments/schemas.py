"""Segments over the API: what comes in and what goes out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otklik.kit.nul import NoNul

Name = Field(min_length=1, max_length=200)


class SegmentIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    description: str = Field("", max_length=2000)
    kind: Literal["dynamic", "static"] = "dynamic"
    rules: dict[str, Any] | None = Field(
        None, description="The rule tree (dynamic segments); see docs/segments.md"
    )


class SegmentPatch(NoNul):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    rules: dict[str, Any] | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    kind: str
    rules: dict[str, Any] | None
    state: Literal["building", "ready", "stale", "failed"]
    version: int
    members_count: int
    built_at: datetime | None
    build_ms: int | None
    build_error: str | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    rules: dict[str, Any]
    segment_id: uuid.UUID | None = Field(
        None, description="The segment being edited, so a reference back to it is a cycle"
    )


class PersonOut(BaseModel):
    profile_id: uuid.UUID
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class PreviewOut(BaseModel):
    count: int
    sample: list[PersonOut]
    took_ms: int


class MembersIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    profile_ids: list[str] = Field(default_factory=list, max_length=100_000)
    emails: list[str] = Field(default_factory=list, max_length=100_000)
    phones: list[str] = Field(default_factory=list, max_length=100_000)
    user_ids: list[str] = Field(default_factory=list, max_length=100_000)


class MembersOut(BaseModel):
    changed: int
    not_found: list[dict[str, str]]


class SnapshotIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    name: str = Name


class MemberOut(BaseModel):
    profile_id: uuid.UUID
    entered_at: datetime
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class StayOut(BaseModel):
    """One stay of a profile in a segment."""

    segment_id: uuid.UUID
    segment_name: str
    profile_id: uuid.UUID
    entered_at: datetime
    exited_at: datetime | None
