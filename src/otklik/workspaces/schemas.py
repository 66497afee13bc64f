"""REST shapes for workspaces and keys (a key's token appears only in IssuedKeyOut)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    default_region: str
    currency: str
    created_at: datetime


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["write", "secret"]
    # No NUL: PostgreSQL cannot store it in text (it would be a 500, not a 422).
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")


class IssuedKeyOut(KeyOut):
    token: str = Field(description="Shown once; store it now")
