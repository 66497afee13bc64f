"""SMS through a configurable HTTP gateway (httpx), with delivery receipts by HTTP callback.

Most SMS gateways, Russian and international, take one request per message with the number,
the text, a sender name and a client reference, and answer with an id: the config names the
fields, the body format (JSON, form, or query string for GET), the auth and where the id sits
in the answer, so one adapter talks to most of them without code.

Classification: a status in `success_statuses` is Sent (unless `ok_path` names a field whose
value is not in `ok_values`: gateways that answer 200 with an error inside are Failed
"gateway_rejected"); 429 and 503 are RetryLater with the Retry-After seconds when given; 408,
other 5xx, timeouts and connection errors are RetryLater; any other status is Failed. The
Otklik message id goes in `reference_field` so a gateway that dedupes on it makes a retry
after a lost answer harmless.

Receipts: the gateway's callback body (JSON object, JSON list, or form) is read with the
configured field names and its status mapped through `receipt_statuses` (unknown or
intermediate statuses are skipped). The lead wires a callback endpoint that hands the raw body
to `parse_receipts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl

import httpx
from pydantic import Field, SecretStr, model_validator

from otklik.channels.base import (
    Adapter,
    Capabilities,
    ChannelConfig,
    ChannelKind,
    Failed,
    OutboundMessage,
    Receipt,
    RetryLater,
    SendResult,
    Sent,
)
from otklik.channels.http import retry_after
from otklik.channels.sms_parts import normalise_phone

DEFAULT_RECEIPT_STATUSES: dict[str, Literal["delivered", "failed"]] = {
    "delivered": "delivered",
    "delivrd": "delivered",
    "failed": "failed",
    "undeliv": "failed",
    "undelivered": "failed",
    "rejectd": "failed",
    "rejected": "failed",
    "expired": "failed",
}


class HttpSmsConfig(ChannelConfig):
    url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "GET"] = "POST"
    body_format: Literal["json", "form"] = "json"
    auth: Literal["none", "bearer", "basic"] = "none"
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Fields every request carries: plain ones and secret ones (api_id, login/psw, …).
    extra_fields: dict[str, str] = Field(default_factory=dict)
    secret_fields: dict[str, SecretStr] = Field(default_factory=dict)
    to_field: str = "to"
    text_field: str = "text"
    sender_field: str | None = "from"
    reference_field: str | None = "reference"
    sender: str | None = None
    # 'e164' sends '+79123456789'; 'digits' sends '79123456789' as many gateways want.
    phone_format: Literal["e164", "digits"] = "e164"
    # Dotted path to the provider id in a JSON answer: 'id', 'data.message_id', 'sms.0.id'.
    message_id_path: str | None = "id"
    ok_path: str | None = None
    ok_values: list[str] = Field(default_factory=lambda: ["ok", "OK", "success", "true"])
    success_statuses: list[int] = Field(default_factory=lambda: [200, 201, 202])
    default_region: str = Field(default="RU", min_length=2, max_length=2)
    receipt_format: Literal["json", "form"] = "json"
    receipt_id_field: str = "id"
    receipt_status_field: str = "status"
    receipt_reason_field: str | None = "error"
    # Matched case-insensitively; keys are the gateway's values, values Otklik's statuses.
    receipt_statuses: dict[str, Literal["delivered", "failed"]] = Field(
        default_factory=lambda: dict(DEFAULT_RECEIPT_STATUSES)
    )
    # Failed statuses that mean the number is dead, so the pipeline suppresses it.
    permanent_statuses: list[str] = Field(
        default_factory=lambda: ["undeliv", "undelivered", "rejectd", "rejected"]
    )

    @model_validator(mode="after")
    def _auth_has_secret(self) -> HttpSmsConfig:
        if self.auth == "bearer" and self.token is None:
            raise ValueError("auth 'bearer' needs a token")
        if self.auth == "basic" and (self.username is None or self.password is None):
            raise ValueError("auth 'basic' needs a username and a password")
        return self


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path ('a.b.0.c') in parsed JSON, or None."""
    current = data
    for key in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(key)
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return None
    return current


class HttpSmsAdapter(Adapter[HttpSmsConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.SMS
    provider: ClassVar[str] = "http"
    config_class: ClassVar[type[ChannelConfig]] = HttpSmsConfig
    capabilities: ClassVar[Capabilities] = Capabilities(max_body_chars=1530, rate_per_second=50)

    def __init__(self, config: HttpSmsConfig) -> None:
        super().__init__(config)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def normalise_address(self, raw: str) -> str:
        return normalise_phone(raw, self.config.default_region)

    def _http(self) -> httpx.AsyncClient:
        # A pool belongs to the loop that opened its connections; a worker that runs a new
        # loop gets a new pool rather than a broken one.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            auth: httpx.Auth | None = None
            headers = {"Accept": "application/json"}
            config = self.config
            if config.auth == "basic" and config.username and config.password:
                auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
            elif config.auth == "bearer" and config.token:
                headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(config.timeout_seconds),
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
                auth=auth,
                headers=headers,
            )
            self._client_loop = loop
        return self._client

    def _fields(self, message: OutboundMessage) -> dict[str, str]:
        config = self.config
        to = message.to.lstrip("+") if config.phone_format == "digits" else message.to
        fields = dict(config.extra_fields)
        fields.update({k: v.get_secret_value() for k, v in config.secret_fields.items()})
        fields[config.to_field] = to
        fields[config.text_field] = message.text
        if config.sender_field and config.sender:
            fields[config.sender_field] = config.sender
        if config.reference_field:
            fields[config.reference_field] = str(message.message_id)
        return fields

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.text:
            return Failed("empty_message", "an SMS needs text")
        config = self.config
        fields = self._fields(message)
        try:
            if config.method == "GET":
                response = await self._http().get(config.url, params=fields)
            elif config.body_format == "json":
                response = await self._http().post(config.url, json=fields)
            else:
                response = await self._http().post(config.url, data=fields)
        except httpx.TimeoutException as exc:
            return RetryLater("timeout", f"the gateway did not answer in time: {exc!r}")
        except httpx.TransportError as exc:
            return RetryLater("connection_error", f"cannot talk to the gateway: {exc!r}")
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        snippet = response.text[:200]
        if status in self.config.success_statuses:
            return self._accepted(response)
        wait = retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RetryLater("rate_limited", f"HTTP 429: {snippet}", wait)
        if status >= 500 or status == 408:
            return RetryLater("server_error", f"HTTP {status}: {snippet}", wait)
        return Failed("rejected", f"HTTP {status}: {snippet}")

    def _accepted(self, response: httpx.Response) -> SendResult:
        config = self.config
        if not (config.message_id_path or config.ok_path):
            return Sent(detail=f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            if config.ok_path:
                return Failed("gateway_rejected", f"not JSON: {response.text[:200]}")
            return Sent(detail=f"HTTP {response.status_code}, no JSON id")
        if config.ok_path:
            flag = lookup(data, config.ok_path)
            if str(flag).lower() not in {v.lower() for v in config.ok_values}:
                return Failed(
                    "gateway_rejected", f"{config.ok_path}={flag!r}: {response.text[:200]}"
                )
        provider_id = lookup(data, config.message_id_path) if config.message_id_path else None
        return Sent(
            provider_message_id=None if provider_id is None else str(provider_id),
            detail=f"HTTP {response.status_code}",
        )

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Receipts from the gateway's callback; items it cannot read are skipped."""
        items: list[Any]
        if self.config.receipt_format == "form":
            items = [dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))]
        else:
            try:
                data = json.loads(body or b"null")
            except ValueError:
                return []
            items = data if isinstance(data, list) else [data]
        receipts = []
        for item in items:
            receipt = self._receipt(item)
            if receipt is not None:
                receipts.append(receipt)
        return receipts

    def _receipt(self, item: Any) -> Receipt | None:
        config = self.config
        provider_id = lookup(item, config.receipt_id_field)
        raw_status = lookup(item, config.receipt_status_field)
        if provider_id is None or raw_status is None:
            return None
        statuses = {k.lower(): v for k, v in config.receipt_statuses.items()}
        key = str(raw_status).strip().lower()
        status = statuses.get(key)
        if status is None:
            return None
        reason = lookup(item, config.receipt_reason_field) if config.receipt_reason_field else None
        permanent = key in {s.lower() for s in config.permanent_statuses}
        return Receipt(
            status=status,
            provider_message_id=str(provider_id),
            permanent=status == "failed" and permanent,
            reason=str(raw_status) if reason in (None, "") else f"{raw_status}: {reason}",
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # RuntimeError: opened on a loop that has since closed; its sockets went with it.
            with contextlib.suppress(RuntimeError):
                await client.aclose()
