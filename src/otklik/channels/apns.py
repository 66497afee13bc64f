"""Mobile push through Apple Push Notification service, token-based (.p8 key) auth, over httpx.

The provider token is an ES256 JWT `{iss: team_id, iat}` with the key id in its header. APNs
rejects a token older than an hour (403 ExpiredProviderToken) and one replaced more often than
every 20 minutes (429 TooManyProviderTokenUpdates), so one token is reused for 50 minutes and
then re-signed; an ExpiredProviderToken answer (clock skew, a token kept across a suspend)
drops it at once and asks for a retry.

The address is the device token in hex. `apns-id` is Otklik's message id: APNs takes any
canonical UUID and echoes it back, so it identifies a retried send as the same message.
OutboundMessage.data: "url", "icon" and "data" (a mapping) become custom keys beside "aps",
with "message_id" always added.
"""

from __future__ import annotations

import importlib.util
import json
import string
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, SecretStr, field_validator

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
from otklik.channels.http import LoopClient, retry_after, transport_failure

API_BASES = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
TOKEN_REUSE_SECONDS = 50 * 60
MAX_PAYLOAD_BYTES = 4096
# Device tokens are 32 bytes today; Apple says they may grow, so only the floor is strict.
MIN_TOKEN_HEX, MAX_TOKEN_HEX = 64, 400
_HEX = frozenset(string.hexdigits)


class ApnsConfig(ChannelConfig):
    team_id: str = Field(pattern=r"^[A-Z0-9]{10}$")
    key_id: str = Field(pattern=r"^[A-Z0-9]{10}$")
    # The AuthKey_<key_id>.p8 file's content (an EC P-256 private key in PEM).
    auth_key: SecretStr
    # The app's bundle id.
    topic: str = Field(min_length=1, max_length=255)
    environment: Literal["production", "sandbox"] = "production"
    # Overrides the environment's host (tests point it at a local fake).
    api_base: str | None = None
    push_type: Literal["alert", "background"] = "alert"
    # How long APNs keeps trying an offline device; 0 means one attempt only.
    ttl_seconds: int = Field(default=86_400, ge=0, le=2_419_200)

    @field_validator("auth_key")
    @classmethod
    def _is_an_es256_key(cls, value: SecretStr) -> SecretStr:
        load_auth_key(value.get_secret_value())
        return value


def load_auth_key(pem: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("auth_key must be the PEM content of the .p8 key file") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("auth_key must be an EC P-256 key (.p8 from Apple)")
    return key


def _http2_available() -> bool:
    return importlib.util.find_spec("h2") is not None


class ApnsPushAdapter(Adapter[ApnsConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.MOBILE_PUSH
    provider: ClassVar[str] = "apns"
    config_class: ClassVar[type[ChannelConfig]] = ApnsConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        subject=True, max_title_chars=100, max_body_chars=1000, rate_per_second=500
    )

    def __init__(self, config: ApnsConfig, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config)
        self._key = load_auth_key(config.auth_key.get_secret_value())
        self._clock = clock
        self._base = (config.api_base or API_BASES[config.environment]).rstrip("/")
        # Real APNs speaks HTTP/2 only. httpx needs the optional `h2` package for it; without it
        # (and for plain-http bases such as the local test fake, which speaks HTTP/1.1) the
        # client uses HTTP/1.1.
        http2 = self._base.startswith("https://") and _http2_available()
        self._http = LoopClient(
            lambda: httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds), http2=http2)
        )
        self._token: str | None = None
        self._token_issued_at = 0.0

    def normalise_address(self, raw: str) -> str:
        return normalise_apns_token(raw)

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            device = normalise_apns_token(message.to)
        except InvalidAddress as exc:
            return Failed(exc.code, exc.reason, address_gone=True)
        payload = self.payload(message)
        if len(payload) > MAX_PAYLOAD_BYTES:
            return Failed(
                "payload_too_large",
                f"the payload is {len(payload)} bytes; APNs takes at most {MAX_PAYLOAD_BYTES}",
            )
        background = self.config.push_type == "background"
        expiration = int(self._clock()) + self.config.ttl_seconds if self.config.ttl_seconds else 0
        headers = {
            "authorization": f"bearer {self._provider_token()}",
            "apns-topic": self.config.topic,
            "apns-push-type": self.config.push_type,
            "apns-id": str(message.message_id),
            "apns-expiration": str(expiration),
            # Apple requires priority 5 for background pushes; 10 delivers alerts at once.
            "apns-priority": "5" if background else "10",
            "content-type": "application/json",
        }
        try:
            response = await self._http.get().post(
                f"{self._base}/3/device/{device}", content=payload, headers=headers
            )
        except httpx.TransportError as exc:
            return transport_failure(exc)
        result = classify_apns_response(response)
        if isinstance(result, RetryLater) and result.code == "expired_provider_token":
            self._token = None
        return result

    def payload(self, message: OutboundMessage) -> bytes:
        aps: dict[str, Any]
        if self.config.push_type == "background":
            aps = {"content-available": 1}
        else:
            alert = {"body": message.text}
            if message.subject:
                alert["title"] = message.subject
            aps = {"alert": alert}
        doc: dict[str, Any] = {}
        extra = message.data.get("data")
        if isinstance(extra, Mapping):
            doc.update({str(k): v for k, v in extra.items()})
        for key in ("url", "icon"):
            if message.data.get(key) is not None:
                doc[key] = message.data[key]
        doc["message_id"] = str(message.message_id)
        doc["aps"] = aps
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def _provider_token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._token_issued_at >= TOKEN_REUSE_SECONDS:
            self._token = jwt.encode(
                {"iss": self.config.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self.config.key_id},
            )
            self._token_issued_at = now
        return self._token

    async def aclose(self) -> None:
        await self._http.aclose()


def normalise_apns_token(raw: str) -> str:
    # Tokens copied from logs often keep the NSData description's brackets and spaces.
    value = raw.strip().strip("<>").replace(" ", "").lower()
    if not value:
        raise InvalidAddress("empty_address", "the device token is empty")
    if any(c not in _HEX for c in value):
        raise InvalidAddress("invalid_device_token", "an APNs device token is hexadecimal")
    if not MIN_TOKEN_HEX <= len(value) <= MAX_TOKEN_HEX:
        raise InvalidAddress(
            "invalid_device_token_length",
            f"an APNs device token has at least {MIN_TOKEN_HEX} hex digits",
        )
    return value


def classify_apns_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    if status == 200:
        return Sent(provider_message_id=response.headers.get("apns-id"))
    reason = _reason(response)
    code = _snake(reason) if reason else f"http_{status}"
    detail = f"APNs answered {status} {reason}".strip()
    wait = retry_after(response.headers.get("retry-after"))
    if status == 410:  # Unregistered / ExpiredToken: the app was removed or the token replaced.
        return Failed(code, detail, address_gone=True)
    if reason == "BadDeviceToken":
        # Also what a sandbox token sent to production gets; a wrong `environment` setting
        # shows up as every address going dead at once.
        return Failed(code, detail, address_gone=True)
    if reason == "ExpiredProviderToken":
        return RetryLater(code, detail, wait)
    if status == 429 or status >= 500:
        return RetryLater(code, detail, wait)
    return Failed(code, detail)


def _reason(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return ""
    return str(doc.get("reason") or "") if isinstance(doc, dict) else ""


def _snake(reason: str) -> str:
    out: list[str] = []
    for i, c in enumerate(reason):
        if c.isupper() and i and not reason[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)
