"""The contract every channel adapter keeps.

An adapter sends one already-rendered message to one address through one provider and says
what happened in a typed result: sent, retry later, or failed for good. It also parses the
provider's receipts (delivery reports, bounces) into typed `Receipt`s. Adapters know nothing
about profiles, consent or templates; the delivery pipeline does all of that before calling.

Adapters are asynchronous so one worker can keep many pooled connections busy; blocking
client libraries are wrapped with `asyncio.to_thread` inside the adapter.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class ChannelKind(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBPUSH = "webpush"
    MOBILE_PUSH = "mobile_push"
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Capabilities:
    """What a channel can carry; the template editor and the pipeline check against it."""

    html: bool = False
    subject: bool = False
    # Longest body the provider accepts, in characters (None: no practical limit).
    max_body_chars: int | None = None
    max_title_chars: int | None = None
    media: bool = False
    buttons: bool = False
    # Default sending rate per second for one provider config; the config may lower it.
    rate_per_second: float = 50.0


class ChannelConfig(BaseModel):
    """Base of every provider's typed config.

    Secrets are `pydantic.SecretStr` fields, so `repr`, `str` and logs show '**********'.
    Unknown keys are errors: a typo in a provider setting must not be silently ignored.
    """

    # hide_input_in_errors: a rejected value may be a secret; errors name the field only.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # None takes the adapter's `capabilities.rate_per_second`.
    rate_per_second: float | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one address.

    `message_id` is Otklik's message row id: adapters use it as the provider-side reference
    or idempotency key where the protocol has one (email Message-ID, webhook header), so a
    send retried after a crash can be recognised as the same message.
    """

    message_id: uuid.UUID
    kind: ChannelKind
    # email address, E.164 phone, Telegram chat id, web push subscription JSON,
    # FCM/APNs device token, or webhook URL: already validated by `normalise_address`.
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    # Extra protocol headers (email: List-Unsubscribe, List-Unsubscribe-Post, ...).
    headers: Mapping[str, str] = field(default_factory=dict)
    # Kind-specific extras: push {"url", "icon", "data"}, Telegram {"photo", "buttons",
    # "parse_mode"}, webhook {"payload"}; documented in each adapter module.
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    provider_message_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RetryLater:
    """A fault that may pass: timeout, dropped connection, 5xx, 429, greylisting."""

    code: str
    reason: str
    # Seconds the provider asked us to wait (Retry-After); None lets the pipeline back off.
    retry_after: float | None = None


@dataclass(frozen=True)
class Failed:
    """A permanent failure: retrying the same message to the same address cannot help."""

    code: str
    reason: str
    # The address is dead or the person opted out at the provider (hard bounce, Telegram bot
    # blocked, web push subscription gone): the pipeline suppresses or unlinks the address.
    address_gone: bool = False


SendResult = Sent | RetryLater | Failed

ReceiptStatus = Literal["delivered", "failed", "bounced", "complained", "unsubscribed"]


@dataclass(frozen=True)
class Receipt:
    """A provider's report about a message sent earlier."""

    status: ReceiptStatus
    # At least one of the two identifies the message.
    provider_message_id: str | None = None
    message_id: uuid.UUID | None = None
    address: str | None = None
    # For bounced/failed: True for a hard (permanent) failure, which suppresses the address.
    permanent: bool = False
    reason: str = ""
    occurred_at: datetime | None = None


class InvalidAddress(ValueError):
    """An address the channel can never deliver to; `code` is stable for the API."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


ConfigT = TypeVar("ConfigT", bound=ChannelConfig)


class Adapter(ABC, Generic[ConfigT]):
    """One provider for one channel kind. Subclasses set the class attributes."""

    kind: ClassVar[ChannelKind]
    provider: ClassVar[str]
    config_class: ClassVar[type[ChannelConfig]]
    capabilities: ClassVar[Capabilities]

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @property
    def rate_per_second(self) -> float:
        return self.config.rate_per_second or self.capabilities.rate_per_second

    @abstractmethod
    def normalise_address(self, raw: str) -> str:
        """The canonical form of `raw`, or InvalidAddress with the reason."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Send once. Never raises for provider faults: they become RetryLater or Failed."""

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Receipts from a provider callback's raw body; providers without callbacks: none."""
        return []

    async def aclose(self) -> None:
        """Close pooled connections; called when the worker stops or the config changes."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
