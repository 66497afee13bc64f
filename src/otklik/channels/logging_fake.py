"""The `logging` provider for every channel kind: the default in development and the demo.

It writes each message to the log and keeps the most recent ones in memory (the console's
"sent by the logging provider" view and the tests read them). Addresses listed in the config
fail or ask for a retry, so the whole pipeline can be exercised without any provider.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import ClassVar

from pydantic import Field

from otklik.channels.base import (
    Adapter,
    Capabilities,
    ChannelConfig,
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    RetryLater,
    SendResult,
    Sent,
)

log = logging.getLogger("otklik.channels.logging")

KEEP = 1000


class LoggingConfig(ChannelConfig):
    fail_addresses: list[str] = Field(default_factory=list)
    gone_addresses: list[str] = Field(default_factory=list)
    retry_addresses: list[str] = Field(default_factory=list)


class LoggingOutbox:
    """The last KEEP messages sent through any logging adapter in this process."""

    def __init__(self) -> None:
        self._items: deque[OutboundMessage] = deque(maxlen=KEEP)
        self._lock = threading.Lock()

    def add(self, message: OutboundMessage) -> None:
        with self._lock:
            self._items.append(message)

    def items(self) -> list[OutboundMessage]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


OUTBOX = LoggingOutbox()


class LoggingAdapter(Adapter[LoggingConfig]):
    provider: ClassVar[str] = "logging"
    config_class: ClassVar[type[ChannelConfig]] = LoggingConfig

    def normalise_address(self, raw: str) -> str:
        value = raw.strip()
        if not value:
            raise InvalidAddress("empty_address", "the address is empty")
        return value

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.to in self.config.retry_addresses:
            return RetryLater("fake_retry", f"{message.to} is configured to ask for a retry")
        if message.to in self.config.gone_addresses:
            return Failed("fake_gone", f"{message.to} is configured as gone", address_gone=True)
        if message.to in self.config.fail_addresses:
            return Failed("fake_failed", f"{message.to} is configured to fail")
        OUTBOX.add(message)
        log.info(
            "%s to %s: %s", message.kind.value, message.to, message.subject or message.text[:80]
        )
        return Sent(provider_message_id=f"log-{message.message_id}")


def _logging_for(kind: ChannelKind, caps: Capabilities) -> type[LoggingAdapter]:
    return type(
        f"Logging{kind.name.title().replace('_', '')}Adapter",
        (LoggingAdapter,),
        {"kind": kind, "capabilities": caps, "__module__": __name__},
    )


LoggingEmail = _logging_for(ChannelKind.EMAIL, Capabilities(html=True, subject=True))
LoggingSms = _logging_for(ChannelKind.SMS, Capabilities(max_body_chars=1530))
LoggingWebPush = _logging_for(
    ChannelKind.WEBPUSH, Capabilities(max_body_chars=1000, max_title_chars=100, subject=True)
)
LoggingMobilePush = _logging_for(
    ChannelKind.MOBILE_PUSH, Capabilities(max_body_chars=1000, max_title_chars=100, subject=True)
)
LoggingTelegram = _logging_for(
    ChannelKind.TELEGRAM, Capabilities(max_body_chars=4096, media=True, buttons=True)
)
LoggingWebhook = _logging_for(ChannelKind.WEBHOOK, Capabilities())
