"""Mobile push through Firebase Cloud Messaging, HTTP v1 API, over httpx.

Authentication is the OAuth 2.0 service-account flow Google's SDKs use: an RS256 JWT signed
with the service account's key is exchanged at its `token_uri` for an access token, which is
cached until five minutes before it expires. A 401 from FCM drops the token and the send is
tried once more with a fresh one.

The address is the app's registration token. OutboundMessage.data: "url", "icon" and "data"
(a flat mapping) go into FCM's `data` map, whose values must be strings, so non-string values
are sent as JSON; "message_id" is always added so the app can report opens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google issues hour-long tokens; renewing a little early keeps a send from racing the expiry.
RENEW_BEFORE_SECONDS = 300
MAX_TOKEN_CHARS = 4096


class FcmConfig(ChannelConfig):
    project_id: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9\-]*$")
    # The JSON file Firebase console → Project settings → Service accounts downloads.
    service_account_json: SecretStr
    api_base: str = "https://fcm.googleapis.com"
    # Overrides the service account's own token_uri (tests point it at a local fake).
    token_uri: str | None = None

    @field_validator("service_account_json")
    @classmethod
    def _is_a_service_account(cls, value: SecretStr) -> SecretStr:
        ServiceAccount.parse(value.get_secret_value())
        return value


class ServiceAccount:
    def __init__(
        self, client_email: str, key: rsa.RSAPrivateKey, key_id: str | None, token_uri: str
    ) -> None:
        self.client_email = client_email
        self.key = key
        self.key_id = key_id
        self.token_uri = token_uri

    @classmethod
    def parse(cls, text: str) -> ServiceAccount:
        try:
            doc: Any = json.loads(text)
        except ValueError:
            raise ValueError("service_account_json is not JSON") from None
        if not isinstance(doc, dict):
            raise ValueError("service_account_json is not a JSON object")
        email, pem = doc.get("client_email"), doc.get("private_key")
        if not isinstance(email, str) or not email or not isinstance(pem, str):
            raise ValueError("service_account_json needs client_email and private_key")
        try:
            # The consistency check costs ~0.1 s per load; the key is the operator's own and is
            # only used to sign, where a broken key shows up as invalid_grant anyway.
            key = serialization.load_pem_private_key(
                pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError):
            raise ValueError("service_account_json private_key is not a PEM key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("service_account_json private_key must be an RSA key")
        key_id = doc.get("private_key_id")
        token_uri = doc.get("token_uri") or GOOGLE_TOKEN_URI
        return cls(email, key, key_id if isinstance(key_id, str) else None, str(token_uri))


class FcmPushAdapter(Adapter[FcmConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.MOBILE_PUSH
    provider: ClassVar[str] = "fcm"
    config_class: ClassVar[type[ChannelConfig]] = FcmConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        subject=True, max_title_chars=100, max_body_chars=1000, rate_per_second=500
    )

    def __init__(self, config: FcmConfig) -> None:
        super().__init__(config)
        self._account = ServiceAccount.parse(config.service_account_json.get_secret_value())
        self._token_uri = config.token_uri or self._account.token_uri
        self._send_url = (
            f"{config.api_base.rstrip('/')}/v1/projects/{config.project_id}/messages:send"
        )
        self._token: str | None = None
        self._token_good_until = 0.0
        self._http = LoopClient(
            lambda: httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds))
        )

    def normalise_address(self, raw: str) -> str:
        return normalise_fcm_token(raw)

    async def send(self, message: OutboundMessage) -> SendResult:
        body = {"message": self.fcm_message(message)}
        for attempt in (1, 2):
            token = await self._access_token()
            if not isinstance(token, str):
                return token
            try:
                response = await self._http.get().post(
                    self._send_url, json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TransportError as exc:
                return transport_failure(exc)
            if response.status_code == 401 and attempt == 1:
                # Revoked or expired early: one fresh token, then leave it to the retry policy.
                self._token = None
                continue
            return classify_fcm_response(response)
        raise AssertionError("unreachable")

    @staticmethod
    def fcm_message(message: OutboundMessage) -> dict[str, Any]:
        data: dict[str, str] = {"message_id": str(message.message_id)}
        extra = message.data.get("data")
        if isinstance(extra, Mapping):
            data.update({str(k): _as_string(v) for k, v in extra.items()})
        for key in ("url", "icon"):
            if message.data.get(key) is not None:
                data[key] = _as_string(message.data[key])
        notification = {"body": message.text}
        if message.subject:
            notification["title"] = message.subject
        return {"token": message.to, "notification": notification, "data": data}

    async def _access_token(self) -> str | SendResult:
        if self._token and time.time() < self._token_good_until:
            return self._token
        # One token request at a time: a burst of sends after expiry shares the new token.
        async with self._http.lock:
            if self._token and time.time() < self._token_good_until:
                return self._token
            return await self._fetch_token()

    async def _fetch_token(self) -> str | SendResult:
        now = int(time.time())
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        headers = {"kid": self._account.key_id} if self._account.key_id else None
        assertion = jwt.encode(claims, self._account.key, algorithm="RS256", headers=headers)
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        try:
            response = await self._http.get().post(self._token_uri, data=form)
        except httpx.TransportError as exc:
            return transport_failure(exc)
        if response.status_code == 429 or response.status_code >= 500:
            return RetryLater(
                "token_unavailable",
                f"the token endpoint answered {response.status_code}",
                retry_after(response.headers.get("retry-after")),
            )
        doc = _json(response)
        token, lifetime = doc.get("access_token"), doc.get("expires_in", 3600)
        if response.status_code != 200 or not isinstance(token, str) or not token:
            # invalid_grant and friends: the service account is wrong, disabled or deleted.
            return Failed(
                "auth_rejected",
                f"the token endpoint answered {response.status_code}: {response.text[:200]}",
            )
        if not isinstance(lifetime, int | float):
            lifetime = 3600
        self._token = token
        self._token_good_until = time.time() + max(0.0, lifetime - RENEW_BEFORE_SECONDS)
        return token

    async def aclose(self) -> None:
        await self._http.aclose()


def normalise_fcm_token(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise InvalidAddress("empty_address", "the registration token is empty")
    if len(value) > MAX_TOKEN_CHARS:
        raise InvalidAddress("device_token_too_long", "the registration token is too long")
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidAddress(
            "invalid_device_token", "the registration token has characters FCM never uses"
        )
    return value


def classify_fcm_response(response: httpx.Response) -> SendResult:
    status = response.status_code
    if status == 200:
        name = _json(response).get("name")
        return Sent(provider_message_id=str(name) if name else None)
    error_status, error_code, text = _fcm_error(response)
    detail = f"FCM answered {status} {error_code or error_status}: {text}"
    wait = retry_after(response.headers.get("retry-after"))
    if error_code == "UNREGISTERED" or status == 404:
        return Failed("unregistered", detail, address_gone=True)
    if status == 401:
        return RetryLater("unauthenticated", detail, wait)
    if status == 429 or status >= 500:
        code = (error_code or error_status or "unavailable").lower()
        return RetryLater(code, detail, wait)
    return Failed((error_code or error_status or "rejected").lower(), detail)


def _fcm_error(response: httpx.Response) -> tuple[str, str, str]:
    """(status like INVALID_ARGUMENT, FcmError errorCode like UNREGISTERED, message)."""
    error = _json(response).get("error")
    if not isinstance(error, dict):
        return "", "", response.text[:200]
    code = ""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = str(detail["errorCode"])
            break
    return str(error.get("status") or ""), code, str(error.get("message") or "")[:200]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _as_string(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
