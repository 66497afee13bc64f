"""Send intents, their attempts, and the frequency policy that spaces them out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base

# Message states. A message moves forward only (opened/clicked are reached from sent or
# delivered); skipped and failed are final.
QUEUED = "queued"
DEFERRED = "deferred"  # waiting for quiet hours to end or a frequency cap to free up
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
OPENED = "opened"
CLICKED = "clicked"
FAILED = "failed"
SKIPPED = "skipped"
STATES = (QUEUED, DEFERRED, SENDING, SENT, DELIVERED, OPENED, CLICKED, FAILED, SKIPPED)
PENDING_STATES = (QUEUED, DEFERRED, SENDING)


class Message(Base):
    """One intent to send one message to one person on one channel."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_message_ws_created", "workspace_id", "created_at"),
        Index("ix_message_profile_created", "profile_id", "created_at"),
        Index("ix_message_state_due", "state", "due_at"),
        Index("ix_message_provider_id", "provider_message_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # None for a test send to a typed-in address.
    profile_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    channel: Mapped[str] = mapped_column(String(16))
    channel_config_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    template_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    template_version: Mapped[int | None] = mapped_column(default=None)
    purpose: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64), default="")
    # 0 critical (transactional: no caps, no quiet hours) · 1 high · 2 normal · 3 low
    priority: Mapped[int] = mapped_column(SmallInteger, default=2)
    # transactional_api | campaign | journey | test | system
    source: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(String(200), default="")
    # Chosen when the message is queued (explicit) or at send time (from the profile).
    address: Mapped[str | None] = mapped_column(Text, default=None)
    # Template variables beyond the profile: the triggering event, API-supplied data.
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    # Why it was skipped, deferred or failed: a stable code plus words for people.
    reason_code: Mapped[str] = mapped_column(String(48), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    # When the pipeline should look at it next (first try, retry, end of quiet hours).
    due_at: Mapped[datetime] = mapped_column(default=utc_now)
    # When a task for it was last put on the queue; a due message whose task was lost (the
    # queue or its worker died) is dispatched again once this is older than the lease.
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
    clicked_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)


class DeliveryAttempt(Base):
    """One try at handing a message to its provider."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (UniqueConstraint("message_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    provider: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # sent | retry | failed | interrupted (the worker died while it was in flight)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    code: Mapped[str] = mapped_column(String(48), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class MessageEvent(Base):
    """What happened to a message after sending: receipts, opens, clicks, unsubscribes."""

    __tablename__ = "message_event"
    __table_args__ = (Index("ix_message_event_message", "message_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    # queued | deferred | skipped | sent | delivered | bounced | complained | opened | clicked
    # | unsubscribed | failed | retry
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utc_now)


class FrequencyPolicy(Base):
    """At most `max_messages` per `window_seconds` on a channel (or on all channels)."""

    __tablename__ = "frequency_policy"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # None: every channel counts together.
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    # The purposes it caps; transactional messages are never capped.
    purposes: Mapped[str] = mapped_column(String(64), default="marketing")
    max_messages: Mapped[int] = mapped_column()
    window_seconds: Mapped[int] = mapped_column()
    # defer: send at the next free slot · drop: skip with the reason recorded
    action: Mapped[str] = mapped_column(String(8), default="defer")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
