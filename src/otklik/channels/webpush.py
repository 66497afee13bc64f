"""Web push through the browsers' push services: VAPID (RFC 8292) and aes128gcm (RFC 8291).

The address is the PushSubscription JSON the site's script posts when a visitor subscribes:
`{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}`. The service worker receives
`{"title", "body", "url", "icon", "data", "message_id"}` (keys without a value are left out),
built from the message's subject, text and `data` ("url" opened on click, "icon", "data" any
extra JSON).

The cryptography is pywebpush's own building blocks: `http_ece.encrypt` (what
`pywebpush.WebPusher.encode` calls) and `py_vapid.Vapid02` for the JWT. pywebpush itself is not
imported: it sends with requests or aiohttp and importing it costs ~0.4 s of aiohttp start-up
in every process that loads the adapter registry. The request goes through one pooled
httpx.AsyncClient instead, so sending is asynchronous.

The HTTP helpers (`retry_after`, `LoopClient`, `transport_failure`) live in channels/http.py and are
shared with the FCM and APNs adapters.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import http_ece
import httpx
import py_vapid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, SecretStr, field_validator, model_validator

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

# Push services accept 4096 bytes of encrypted body; aes128gcm adds an 86-byte header (salt,
# record size, the 65-byte sender key), a 16-byte tag and a 1-byte delimiter (RFC 8291 §4).
MAX_PLAINTEXT_BYTES = 4096 - 86 - 16 - 1
MAX_SUBSCRIPTION_CHARS = 4096
# RFC 8292 §2: "exp" at most 24 hours ahead. A token is reused for one push service origin
# until an hour before it expires, so signing is once per origin per ~11 hours.
VAPID_LIFETIME_SECONDS = 12 * 3600
VAPID_RENEW_BEFORE_SECONDS = 3600
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def b64url_decode(value: str) -> bytes:
    """Base64url with or without padding; the standard alphabet is accepted too."""
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def load_vapid_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key from PEM, base64url raw (32 bytes, as web-push tools print it) or DER."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        key: object = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = b64url_decode(text)
        if len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the VAPID key must be an EC P-256 private key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key as base64url raw, public key as base64url).

    Both are one-line strings, so the console can show them in a text field; the public key
    is the `applicationServerKey` the site's script passes to `PushManager.subscribe`.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    private_raw = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url_encode(private_raw), public_key_b64(key)


class WebPushConfig(ChannelConfig):
    vapid_private_key: SecretStr
    vapid_public_key: str
    # Who the push service contacts about abuse: "mailto:ops@shop.example" or an https URL.
    vapid_subject: str
    # How long the push service keeps the message for an offline browser (max 4 weeks).
    ttl_seconds: int = Field(default=86_400, ge=0, le=2_419_200)
    urgency: Literal["very-low", "low", "normal", "high"] = "normal"

    @field_validator("vapid_public_key")
    @classmethod
    def _public_key_is_a_p256_point(cls, value: str) -> str:
        try:
            raw = b64url_decode(value)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except (ValueError, binascii.Error):
            raise ValueError("vapid_public_key must be a base64url P-256 public key") from None
        return b64url_encode(raw)

    @model_validator(mode="after")
    def _keys_match_and_subject_is_accepted(self) -> WebPushConfig:
        try:
            key = load_vapid_private_key(self.vapid_private_key.get_secret_value())
        except (ValueError, TypeError, binascii.Error):
            raise ValueError(
                "vapid_private_key must be a P-256 key in PEM or base64url form"
            ) from None
        if public_key_b64(key) != self.vapid_public_key:
            raise ValueError("vapid_public_key does not belong to vapid_private_key")
        try:  # py_vapid is the judge of what it will sign at send time.
            py_vapid.Vapid02(key).sign({"sub": self.vapid_subject, "aud": "https://push.test"})
        except py_vapid.VapidException:
            raise ValueError(
                "vapid_subject must be mailto:someone@your.domain or an https:// URL"
            ) from None
        return self


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: bytes
    auth: bytes

    @property
    def origin(self) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def canonical(self) -> str:
        keys = {"p256dh": b64url_encode(self.p256dh), "auth": b64url_encode(self.auth)}
        return json.dumps({"endpoint": self.endpoint, "keys": keys}, separators=(",", ":"))


def parse_subscription(raw: str) -> Subscription:
    """The subscription in `raw`, or InvalidAddress saying what is wrong with it."""
    if not raw.strip():
        raise InvalidAddress("empty_address", "the subscription is empty")
    if len(raw) > MAX_SUBSCRIPTION_CHARS:
        raise InvalidAddress("subscription_too_long", "the subscription JSON is too long")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise InvalidAddress("invalid_subscription_json", "the subscription is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidAddress("invalid_subscription_json", "the subscription is not an object")
    endpoint = doc.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidAddress("missing_endpoint", "the subscription has no endpoint")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        raise InvalidAddress("invalid_endpoint", "the endpoint is not a URL")
    # Push services are https only; plain http is allowed for a service on this machine so
    # the local fakes and development setups work.
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOCAL_HOSTS):
        raise InvalidAddress("insecure_endpoint", "the endpoint must be an https URL")
    keys = doc.get("keys")
    if not isinstance(keys, dict) or "p256dh" not in keys or "auth" not in keys:
        raise InvalidAddress("missing_keys", "the subscription needs keys.p256dh and keys.auth")
    p256dh = _decoded_key(keys["p256dh"], 65, "invalid_p256dh_key", "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise InvalidAddress("invalid_p256dh_key", "keys.p256dh is not a P-256 point") from None
    auth = _decoded_key(keys["auth"], 16, "invalid_auth_secret", "keys.auth")
    return Subscription(endpoint=endpoint, p256dh=p256dh, auth=auth)


def _decoded_key(value: object, size: int, code: str, name: str) -> bytes:
    try:
        raw = b64url_decode(value) if isinstance(value, str) else b""
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != size:
        raise InvalidAddress(code, f"{name} must be base64url of {size} bytes")
    return raw


class VapidWebPushAdapter(Adapter[WebPushConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.WEBPUSH
    provider: ClassVar[str] = "vapid"
    config_class: ClassVar[type[ChannelConfig]] = WebPushConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        subject=True, max_title_chars=100, max_body_chars=1000, rate_per_second=200
    )

    def __init__(self, config: WebPushConfig) -> None:
        super().__init__(config)
        key = load_vapid_private_key(config.vapid_private_key.get_secret_value())
        self._vapid = py_vapid.Vapid02(key)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._http = LoopClient(
            lambda: httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds))
        )

    def normalise_address(self, raw: str) -> str:
        return parse_subscription(raw).canonical()

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            subscription = parse_subscription(message.to)
        except InvalidAddress as exc:
            return Failed(exc.code, exc.reason, address_gone=True)
        payload = self.payload(message)
        if len(payload) > MAX_PLAINTEXT_BYTES:
            return Failed(
                "payload_too_large",
                f"the push payload is {len(payload)} bytes; at most {MAX_PLAINTEXT_BYTES} fit",
            )
        body: bytes = http_ece.encrypt(
            payload,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=subscription.p256dh,
            auth_secret=subscription.auth,
            version="aes128gcm",
        )
        headers = {
            "TTL": str(self.config.ttl_seconds),
            "Urgency": self.config.urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self._authorization(subscription.origin),
        }
        try:
            response = await self._http.get().post(
                subscription.endpoint, content=body, headers=headers
            )
        except httpx.TransportError as exc:
            return transport_failure(exc)
        return classify_push_response(response)

    @staticmethod
    def payload(message: OutboundMessage) -> bytes:
        doc = {
            "title": message.subject,
            "body": message.text,
            "url": message.data.get("url"),
            "icon": message.data.get("icon"),
            "data": message.data.get("data"),
            "message_id": str(message.message_id),
        }
        compact = {k: v for k, v in doc.items() if v is not None}
        return json.dumps(compact, ensure_ascii=False, separators=(",", ":")).encode()

    def _authorization(self, audience: str) -> str:
        now = time.time()
        cached = self._tokens.get(audience)
        if cached and cached[1] > now:
            return cached[0]
        claims = {
            "aud": audience,
            "sub": self.config.vapid_subject,
            "exp": int(now) + VAPID_LIFETIME_SECONDS,
        }
        header = str(self._vapid.sign(claims)["Authorization"])
        renew_at = now + VAPID_LIFETIME_SECONDS - VAPID_RENEW_BEFORE_SECONDS
        self._tokens[audience] = (header, renew_at)
        return header

    async def aclose(self) -> None:
        await self._http.aclose()


def classify_push_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        return Sent(provider_message_id=response.headers.get("location"), detail=str(status))
    detail = f"push service answered {status}: {response.text[:200]}"
    wait = retry_after(response.headers.get("retry-after"))
    if status in (404, 410):
        return Failed("subscription_gone", detail, address_gone=True)
    if status == 413:
        return Failed("payload_too_large", detail)
    if status == 429:
        return RetryLater("rate_limited", detail, wait)
    if status >= 500:
        return RetryLater("provider_unavailable", detail, wait)
    if status in (401, 403):
        # The VAPID key differs from the applicationServerKey the browser subscribed with, or
        # the token was refused: a configuration fault, not a dead subscription.
        return Failed("vapid_rejected", detail)
    return Failed("rejected", detail)


# --- HTTP plumbing shared by the push adapters ------------------------------------------------
