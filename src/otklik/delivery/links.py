"""Signed links in messages: open pixel, click redirect, unsubscribe, preferences, confirm.

Click tokens carry the target URL inside the signature, so a redirect needs no lookup and
nobody can turn our domain into an open redirect by editing the link. UTM and every other
query parameter of the target survive untouched.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from otklik.kit.signing import BadToken, Signer

OPEN, CLICK, UNSUBSCRIBE, PREFERENCES, CONFIRM, TELEGRAM, RECEIPTS = (
    "open",
    "click",
    "unsubscribe",
    "preferences",
    "confirm",
    "telegram",
    "receipts",
)
CHANNEL_CODES = ("email", "sms", "webpush", "mobile_push", "telegram")
TELEGRAM_HOOK = "telegram-hook"


@dataclass(frozen=True)
class Click:
    message_id: uuid.UUID
    url: str


class Links:
    def __init__(self, signer: Signer, base_url: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")

    def with_base(self, base_url: str) -> Links:
        return Links(self.signer, base_url) if base_url else self

    def open_pixel(self, message_id: uuid.UUID) -> str:
        return f"{self.base}/t/o/{self.signer.sign(OPEN, message_id.bytes)}.gif"

    def click(self, message_id: uuid.UUID, url: str) -> str:
        token = self.signer.sign(CLICK, message_id.bytes + url.encode())
        return f"{self.base}/t/c/{token}"

    def unsubscribe(self, message_id: uuid.UUID) -> str:
        return f"{self.base}/u/{self.signer.sign(UNSUBSCRIBE, message_id.bytes)}"

    def preferences(self, profile_id: uuid.UUID) -> str:
        return f"{self.base}/p/{self.signer.sign(PREFERENCES, profile_id.bytes)}"

    def confirm(self, profile_id: uuid.UUID, channel: str, issued: int) -> str:
        payload = profile_id.bytes + struct.pack(">BI", CHANNEL_CODES.index(channel), issued)
        return f"{self.base}/c/{self.signer.sign(CONFIRM, payload)}"

    def receipts(self, channel_id: uuid.UUID) -> str:
        """Where a provider posts delivery reports and bounces for one configured channel."""
        return f"{self.base}/hooks/receipts/{self.signer.sign(RECEIPTS, channel_id.bytes)}"

    def telegram_start(self, profile_id: uuid.UUID) -> str:
        """The /start payload binding a chat to a profile: 38 characters of [A-Za-z0-9_-]."""
        return self.signer.sign(TELEGRAM, profile_id.bytes)

    def telegram_hook(self, channel_id: uuid.UUID) -> str:
        """The webhook URL to register with Telegram for one configured bot."""
        return f"{self.base}/hooks/telegram/{self.signer.sign(TELEGRAM_HOOK, channel_id.bytes)}"

    # -- reading tokens back; each raises BadToken

    def read_message(self, purpose: str, token: str) -> uuid.UUID:
        payload = self.signer.unsign(purpose, token)
        if len(payload) != 16:
            raise BadToken("the link is malformed")
        return uuid.UUID(bytes=payload)

    def read_click(self, token: str) -> Click:
        payload = self.signer.unsign(CLICK, token)
        if len(payload) <= 16:
            raise BadToken("the link is malformed")
        return Click(uuid.UUID(bytes=payload[:16]), payload[16:].decode())

    def read_profile(self, purpose: str, token: str) -> uuid.UUID:
        return self.read_message(purpose, token)

    def read_confirm(self, token: str) -> tuple[uuid.UUID, str, int]:
        payload = self.signer.unsign(CONFIRM, token)
        if len(payload) != 21:
            raise BadToken("the link is malformed")
        code, issued = struct.unpack(">BI", payload[16:])
        if code >= len(CHANNEL_CODES):
            raise BadToken("the link is malformed")
        return uuid.UUID(bytes=payload[:16]), CHANNEL_CODES[code], issued
