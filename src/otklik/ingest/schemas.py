"""OpenAPI descriptions of the tracking calls (validation itself lives in wire.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["identify", "track", "page", "screen", "group", "alias"] | None = None
    userId: str | None = None
    anonymousId: str | None = None
    messageId: str | None = Field(default=None, max_length=128)
    event: str | None = Field(default=None, description="track: the action's name")
    name: str | None = None
    groupId: str | None = None
    previousId: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    writeKey: str | None = None


class Batch(BaseModel):
    model_config = ConfigDict(extra="allow")

    batch: list[Message]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sentAt: str | None = None
    writeKey: str | None = None


class IngestResult(BaseModel):
    success: bool
    accepted: int
    rejected: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None
