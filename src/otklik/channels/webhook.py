"""Signed HTTP webhooks to any URL (provider `http`).

`OutboundMessage.to` is the destination URL; an empty `to` uses the config's `url`. The body
is JSON: `data["payload"]` when given, else `{"message_id", "text", "subject", "to", "data"}`.

For receivers: every call carries
    X-Otklik-Timestamp: <unix seconds>
    X-Otklik-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>
    Idempotency-Key: <Otklik message id>
Verify with `verify_signature(secret, timestamp, body, signature)` (or its three lines in any
language): compute the HMAC over the raw bytes before parsing the JSON, compare in constant
time, and reject timestamps more than five minutes from your clock. The timestamp is inside
the signed string, so a captured request cannot be replayed later with a fresh timestamp.
Otklik retries a call that timed out or got 408, 429 or 5xx, so the same message can arrive
twice (say, the receiver processed it but the answer was lost): deduplicate on
Idempotency-Key. Answer 2xx when done; 410 Gone tells Otklik to stop sending to this URL.

Redirects are not followed, and a 3xx fails the message: following one would send the
signed body to a host nobody configured, and would let a receiver point Otklik's requests at
internal addresses (SSRF). Change the configured URL instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ConfigDict, Field, SecretStr, field_validator

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
from otklik.channels.http import retry_after
from otklik.kit.time import utc_now

TIMESTAMP_HEADER = "X-Otklik-Timestamp"
SIGNATURE_HEADER = "X-Otklik-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Headers the adapter owns; extra headers from the config may not replace them.
RESERVED = {
    "content-type",
    "content-length",
    "host",
    "idempotency-key",
    "x-otklik-timestamp",
    "x-otklik-signature",
}
RETRYABLE = {408, 425, 429}


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The X-Otklik-Signature value for `body` sent at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """True when `signature` is Otklik's for this raw `body` and the timestamp is fresh.

    `timestamp` and `signature` are the X-Otklik-Timestamp and X-Otklik-Signature headers.
    """
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).removeprefix("sha256=")
    given = signature.strip().removeprefix("sha256=")
    return hmac.compare_digest(expected.encode(), given.encode())


def _url(raw: str) -> str:
    """The canonical form of an http(s) URL, or InvalidAddress."""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidAddress("invalid_url", f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https"):
        raise InvalidAddress("invalid_url", "a webhook URL must start with http:// or https://")
    if not host or any(c.isspace() for c in raw.strip()):
        raise InvalidAddress("invalid_url", "a webhook URL needs a host and no spaces")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL end up in logs; put them in the config's headers instead.
        raise InvalidAddress("invalid_url", "put credentials in headers, not in the URL")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class WebhookConfig(ChannelConfig):
    # Validation errors would otherwise quote the rejected input: a secret, here.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str
    # The HMAC-SHA256 key; the receiver holds the same one.
    secret: SecretStr = Field(min_length=16)
    # Extra request headers (an Authorization token, say); values are secrets too.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    max_body_bytes: int = Field(default=1_000_000, gt=0)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            return _url(value)
        except InvalidAddress as exc:
            raise ValueError(exc.reason) from None

    @field_validator("headers")
    @classmethod
    def _own_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if name.lower() in RESERVED:
                raise ValueError(f"the {name} header is set by Otklik")
            if not name or any(c in name for c in " :\r\n"):
                raise ValueError(f"not a header name: {name!r}")
        return value


class SignedWebhookAdapter(Adapter[WebhookConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.WEBHOOK
    provider: ClassVar[str] = "http"
    config_class: ClassVar[type[ChannelConfig]] = WebhookConfig
    capabilities: ClassVar[Capabilities] = Capabilities(rate_per_second=50)

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config)
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False)

    def normalise_address(self, raw: str) -> str:
        return _url(raw)

    def body(self, message: OutboundMessage) -> bytes:
        """The JSON sent for `message`; TypeError when data holds something JSON cannot."""
        if "payload" in message.data:
            payload = message.data["payload"]
        else:
            payload = {
                "message_id": str(message.message_id),
                "text": message.text,
                "subject": message.subject,
                "to": message.to or self.config.url,
                "data": dict(message.data),
            }
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), default=_json_default
        ).encode()

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            url = _url(message.to) if message.to else self.config.url
        except InvalidAddress as exc:
            return Failed(exc.code, exc.reason)
        try:
            body = self.body(message)
        except (TypeError, ValueError) as exc:
            return Failed("webhook_payload_not_json", str(exc))
        if len(body) > self.config.max_body_bytes:
            return Failed(
                "webhook_body_too_large",
                f"{len(body)} bytes is over the limit of {self.config.max_body_bytes}",
            )
        timestamp = str(int(utc_now().timestamp()))
        headers = {name: value.get_secret_value() for name, value in self.config.headers.items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "User-Agent": "Otklik-Webhook/1",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.config.secret.get_secret_value(), timestamp, body),
                IDEMPOTENCY_HEADER: str(message.message_id),
            }
        )
        try:
            response = await self._client.request(
                self.config.method, url, content=body, headers=headers
            )
        except httpx.TimeoutException:
            return RetryLater("webhook_timeout", f"no answer within {self.config.timeout_seconds}s")
        except httpx.TransportError as exc:
            return RetryLater("webhook_connection", f"{type(exc).__name__}: {exc}")
        return _classify(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def _classify(response: httpx.Response) -> SendResult:
    status = response.status_code
    said = f"HTTP {status}"
    snippet = response.text[:200].strip()
    if snippet:
        said += f": {snippet}"
    if 200 <= status < 300:
        return Sent(provider_message_id=response.headers.get("x-request-id"), detail=f"{status}")
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        return Failed("webhook_redirect", f"HTTP {status} to {where}; redirects are not followed")
    after = retry_after(response.headers.get("retry-after"))
    if status == 429:
        return RetryLater("webhook_rate_limited", said, after)
    if status in RETRYABLE:
        return RetryLater("webhook_timeout" if status == 408 else "webhook_retry", said, after)
    if status >= 500:
        return RetryLater("webhook_server_error", said, after)
    if status == 410:
        return Failed("webhook_gone", said, address_gone=True)
    return Failed("webhook_rejected", said)
