"""Request and response bodies of the delivery API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otklik.kit.nul import NoNul

Priority = Literal["critical", "high", "normal", "low"]


class Recipient(NoNul):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID | None = None
    user_id: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class SendIn(NoNul):
    """Send one template to one person now (or at `send_at`)."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(description="Template key or id", min_length=1, max_length=100)
    to: Recipient = Field(description="Who: a profile id or any identifier of theirs")
    address: str | None = Field(
        default=None,
        max_length=4096,
        description="Send to this address instead of the profile's (e.g. a new email to confirm)",
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Available as {{ data.* }}")
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="The same key never sends twice; also read from the Idempotency-Key header",
    )
    priority: Priority | None = None
    channel_config_id: uuid.UUID | None = None
    send_at: datetime | None = None


class SendOut(BaseModel):
    id: uuid.UUID
    state: str
    created: bool = Field(description="False when the idempotency key was used before")


class AttemptOut(BaseModel):
    number: int
    provider: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    code: str
    detail: str


class MessageEventOut(BaseModel):
    kind: str
    detail: dict[str, Any]
    occurred_at: datetime


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    idempotency_key: str
    profile_id: uuid.UUID | None
    channel: str
    template_id: uuid.UUID | None
    template_version: int | None
    purpose: str
    topic: str
    priority: int
    source: str
    source_ref: str
    address: str | None
    state: str
    reason_code: str
    reason: str
    due_at: datetime
    attempts: int
    provider_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    failed_at: datetime | None


class MessageDetail(MessageOut):
    history: list[AttemptOut]
    events: list[MessageEventOut]


class TemplateIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=200)
    channel: Literal["email", "sms", "telegram", "webpush", "mobile_push", "webhook"]
    purpose: Literal["marketing", "service", "transactional"] = "marketing"
    topic: str = Field(default="", max_length=64)
    content: dict[str, Any]


class TemplateVersionIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any]
    name: str | None = Field(default=None, max_length=200)
    purpose: Literal["marketing", "service", "transactional"] | None = None
    topic: str | None = Field(default=None, max_length=64)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    channel: str
    purpose: str
    topic: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    content: dict[str, Any] | None = None


class PreviewIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    version: int | None = None
    content: dict[str, Any] | None = Field(
        default=None, description="Preview unsaved content instead of a stored version"
    )


class PreviewOut(BaseModel):
    subject: str | None
    text: str
    html: str | None
    data: dict[str, Any]
    sms: dict[str, Any] | None = None


class ChannelIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["email", "sms", "telegram", "webpush", "mobile_push", "webhook"]
    provider: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    is_default: bool = True
    enabled: bool = True


class ChannelOut(BaseModel):
    id: uuid.UUID
    kind: str
    provider: str
    name: str
    config: dict[str, Any] = Field(description="Secrets are shown as '**********'")
    is_default: bool
    enabled: bool
    receipts_url: str
    created_at: datetime
    updated_at: datetime


class ConsentIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "webpush", "mobile_push", "telegram"]
    purpose: Literal["marketing", "service"] = "marketing"
    topic: str = Field(default="", max_length=64)
    status: Literal["granted", "denied", "pending"]
    source: str = Field(default="api", min_length=1, max_length=32)
    confirm: bool = Field(
        default=False,
        description="Email marketing only: record 'pending' and send a confirmation link "
        "(double opt-in) instead of granting now",
    )


class ConsentOut(BaseModel):
    channel: str
    purpose: str
    topic: str
    status: str
    source: str
    updated_at: datetime


class SuppressionIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    # Push addresses are not suppressed: a dead subscription or token is removed instead.
    channel: Literal["email", "sms", "telegram"]
    address: str = Field(min_length=1, max_length=512)
    reason: Literal["hard_bounce", "complaint", "unsubscribed", "manual", "imported", "invalid"] = (
        "manual"
    )
    detail: str = Field(default="", max_length=1000)


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    address: str
    reason: str
    detail: str
    created_at: datetime


class PolicyIn(NoNul):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Literal["email", "sms", "telegram", "webpush", "mobile_push"] | None = None
    purposes: list[Literal["marketing", "service"]] = Field(default=["marketing"])
    max_messages: int = Field(ge=1, le=10_000)
    window_seconds: int = Field(ge=60, le=90 * 86400)
    action: Literal["defer", "drop"] = "defer"
    enabled: bool = True


class PolicyOut(PolicyIn):
    id: uuid.UUID
