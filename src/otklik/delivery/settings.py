"""A workspace's delivery settings, kept as JSON on the workspace row."""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otklik.kit.nul import NoNul

TOPIC_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=500)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not TOPIC_KEY.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (up to 64)")
        return value


class QuietHours(BaseModel):
    """Marketing messages due between `start` and `end` (local time) wait for `end`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(9, 0)


class DeliverySettings(NoNul):
    model_config = ConfigDict(extra="forbid")

    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    # opt_in: marketing needs a recorded "granted" (Russian advertising law, GDPR).
    # opt_out: marketing goes unless the person said no (allowed in some markets).
    marketing_consent: Literal["opt_in", "opt_out"] = "opt_in"
    # Ask new email subscribers to confirm by clicking a link before marketing starts.
    double_opt_in: bool = True
    topics: list[Topic] = Field(default_factory=list)
    # The public base URL people's links point at (tracking, unsubscribe, preferences).
    public_url: str = ""
    max_attempts: int = Field(default=8, ge=1, le=20)

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> DeliverySettings:
        return cls.model_validate(raw or {})
