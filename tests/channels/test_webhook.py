"""Signed webhooks, against a receiver that verifies signatures as users are told to."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from otklik.channels.base import ChannelKind, Failed, InvalidAddress, OutboundMessage, RetryLater
from otklik.channels.base import Sent as SentResult
from otklik.channels.webhook import SignedWebhookAdapter, WebhookConfig, sign, verify_signature
from tests.channels.support import send_all
from tests.support.fake_webhook_receiver import FakeWebhookReceiver

SECRET = "whsec_0123456789abcdef"
MESSAGE_ID = uuid.UUID("0190c3b2-7a1e-7000-8000-000000000001")


@pytest.fixture
def hook() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(SECRET) as receiver:
        yield receiver


def config(url: str, **overrides: Any) -> WebhookConfig:
    return WebhookConfig(url=url, secret=overrides.pop("secret", SECRET), **overrides)


def message(to: str = "", text: str = "Order 1001 shipped", **data: Any) -> OutboundMessage:
    return OutboundMessage(MESSAGE_ID, ChannelKind.WEBHOOK, to, text, subject="Shipped", data=data)


def send(cfg: WebhookConfig, *messages: OutboundMessage) -> list[Any]:
    return send_all(SignedWebhookAdapter(cfg), *messages)


# Delivery and signature


def test_a_message_reaches_the_receiver_signed_with_the_default_payload(
    hook: FakeWebhookReceiver,
) -> None:
    [result] = send(config(hook.url), message(order="1001"))

    assert isinstance(result, SentResult)
    [call] = hook.calls
    assert call.verified
    assert call.method == "POST" and call.path == "/hook"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["idempotency-key"] == str(MESSAGE_ID)
    assert call.headers["x-otklik-signature"].startswith("sha256=")
    assert abs(int(call.headers["x-otklik-timestamp"]) - time.time()) < 5
    assert call.json() == {
        "message_id": str(MESSAGE_ID),
        "text": "Order 1001 shipped",
        "subject": "Shipped",
        "to": hook.url,
        "data": {"order": "1001"},
    }


def test_a_given_payload_is_sent_as_is(hook: FakeWebhookReceiver) -> None:
    payload = {"event": "order.shipped", "order": {"id": 1001, "items": ["boots"]}, "ru": "да"}

    send(config(hook.url), message(payload=payload))

    assert hook.bodies() == [payload]


def test_the_message_address_overrides_the_configured_url(hook: FakeWebhookReceiver) -> None:
    send(config(hook.base_url + "/default"), message(to=hook.base_url + "/per-message"))

    assert [call.path for call in hook.calls] == ["/per-message"]


def test_extra_headers_and_the_method_come_from_the_config(hook: FakeWebhookReceiver) -> None:
    cfg = config(hook.url, headers={"Authorization": "Bearer t0k"}, method="PUT")

    send(cfg, message())

    [call] = hook.calls
    assert call.method == "PUT" and call.verified
    assert call.headers["authorization"] == "Bearer t0k"


def test_a_receiver_with_another_secret_rejects_the_call(hook: FakeWebhookReceiver) -> None:
    [result] = send(config(hook.url, secret="another-secret-0123456789"), message())

    assert result == Failed("webhook_rejected", "HTTP 401: bad signature")
    assert hook.bodies() == []


def test_verify_signature_accepts_exactly_what_was_signed() -> None:
    now = 1_735_689_600
    body = b'{"text":"hi"}'
    signature = sign(SECRET, str(now), body)

    assert verify_signature(SECRET, str(now), body, signature, now=now)
    assert verify_signature(SECRET, str(now), body, signature.removeprefix("sha256="), now=now)


def test_verify_signature_rejects_a_tampered_body_timestamp_or_secret() -> None:
    now = 1_735_689_600
    body = b'{"amount":100}'
    signature = sign(SECRET, str(now), body)

    assert not verify_signature(SECRET, str(now), b'{"amount":900}', signature, now=now)
    assert not verify_signature(SECRET, str(now + 1), body, signature, now=now)
    assert not verify_signature("not-the-secret-at-all", str(now), body, signature, now=now)
    assert not verify_signature(SECRET, "yesterday", body, signature, now=now)
    assert not verify_signature(SECRET, f"+{now}", body, signature, now=now)
    assert not verify_signature(SECRET, str(now), body, "", now=now)


def test_verify_signature_rejects_a_replay_outside_the_tolerance() -> None:
    sent_at = 1_735_689_600
    body = b"{}"
    signature = sign(SECRET, str(sent_at), body)

    assert verify_signature(SECRET, str(sent_at), body, signature, now=sent_at + 300)
    assert not verify_signature(SECRET, str(sent_at), body, signature, now=sent_at + 301)
    assert not verify_signature(SECRET, str(sent_at), body, signature, now=sent_at - 301)
    assert verify_signature(
        SECRET, str(sent_at), body, signature, tolerance_seconds=3600, now=sent_at + 3000
    )


def test_the_receiver_rejects_a_stale_signature(hook: FakeWebhookReceiver) -> None:
    hook.tolerance_seconds = -1  # every timestamp is now "too old"

    [result] = send(config(hook.url), message())

    assert isinstance(result, Failed)
    assert [call.verified for call in hook.calls] == [False]


# Classification


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (500, None, RetryLater("webhook_server_error", "HTTP 500: injected fault")),
        (502, None, RetryLater("webhook_server_error", "HTTP 502: injected fault")),
        (503, "30", RetryLater("webhook_server_error", "HTTP 503: injected fault", 30.0)),
        (429, "12", RetryLater("webhook_rate_limited", "HTTP 429: injected fault", 12.0)),
        (408, None, RetryLater("webhook_timeout", "HTTP 408: injected fault")),
        (410, None, Failed("webhook_gone", "HTTP 410: injected fault", address_gone=True)),
        (400, None, Failed("webhook_rejected", "HTTP 400: injected fault")),
        (404, None, Failed("webhook_rejected", "HTTP 404: injected fault")),
        (422, None, Failed("webhook_rejected", "HTTP 422: injected fault")),
    ],
)
def test_each_status_is_classified(
    hook: FakeWebhookReceiver, status: int, retry_after: str | None, expected: Any
) -> None:
    hook.fail_next(status, retry_after=retry_after)

    assert send(config(hook.url), message()) == [expected]


def test_retry_after_may_be_an_http_date(hook: FakeWebhookReceiver) -> None:
    hook.fail_next(503, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=60)))

    [result] = send(config(hook.url), message())

    assert isinstance(result, RetryLater) and result.retry_after is not None
    assert 50 <= result.retry_after <= 61


def test_a_redirect_is_not_followed(hook: FakeWebhookReceiver) -> None:
    hook.redirect_next(hook.base_url + "/elsewhere")

    [result] = send(config(hook.url), message())

    assert isinstance(result, Failed) and result.code == "webhook_redirect"
    assert [call.path for call in hook.calls] == ["/hook"]


def test_a_timeout_is_retried_and_the_retry_carries_the_same_idempotency_key(
    hook: FakeWebhookReceiver,
) -> None:
    hook.delay_next(1.0)

    first, second = send(config(hook.url, timeout_seconds=0.3), message(), message())

    assert isinstance(first, RetryLater) and first.code == "webhook_timeout"
    assert isinstance(second, SentResult)
    keys = [call.headers["idempotency-key"] for call in hook.calls]
    assert keys == [str(MESSAGE_ID), str(MESSAGE_ID)]


def test_a_dropped_connection_is_retried(hook: FakeWebhookReceiver) -> None:
    hook.drop_next()

    [result] = send(config(hook.url), message())

    assert isinstance(result, RetryLater) and result.code == "webhook_connection"


def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    [result] = send(config(f"http://127.0.0.1:{port}/hook"), message())

    assert isinstance(result, RetryLater) and result.code == "webhook_connection"


def test_a_body_over_the_limit_fails_without_a_call(hook: FakeWebhookReceiver) -> None:
    [result] = send(config(hook.url, max_body_bytes=100), message(text="x" * 200))

    assert isinstance(result, Failed) and result.code == "webhook_body_too_large"
    assert hook.calls == []


def test_data_that_is_not_json_fails_without_a_call(hook: FakeWebhookReceiver) -> None:
    [result] = send(config(hook.url), message(payload={"when": object()}))

    assert isinstance(result, Failed) and result.code == "webhook_payload_not_json"
    assert hook.calls == []


def test_uuids_and_datetimes_in_data_become_strings(hook: FakeWebhookReceiver) -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)

    send(config(hook.url), message(payload={"id": MESSAGE_ID, "at": when}))

    assert hook.bodies() == [{"id": str(MESSAGE_ID), "at": "2025-01-01T00:00:00+00:00"}]


# Addresses and config


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://Hooks.Example.com/in?x=1", "https://hooks.example.com/in?x=1"),
        ("HTTP://example.com", "http://example.com/"),
        (" http://10.0.0.5:8080/a#frag ", "http://10.0.0.5:8080/a"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ],
)
def test_urls_are_normalised(raw: str, canonical: str) -> None:
    adapter = SignedWebhookAdapter(config("https://example.com/"))

    assert adapter.normalise_address(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    ["", "example.com/hook", "ftp://example.com/x", "http://", "https://user:pw@example.com/",
     "http://exa mple.com/", "http://example.com:99999/", "javascript:alert(1)"],
)  # fmt: skip
def test_other_addresses_are_invalid_urls(raw: str) -> None:
    adapter = SignedWebhookAdapter(config("https://example.com/"))

    with pytest.raises(InvalidAddress) as caught:
        adapter.normalise_address(raw)
    assert caught.value.code == "invalid_url"


def test_an_invalid_per_message_url_fails_the_send() -> None:
    [result] = send(config("https://example.com/"), message(to="ftp://example.com/x"))

    assert isinstance(result, Failed) and result.code == "invalid_url"


@pytest.mark.parametrize(
    "overrides",
    [
        {"url": "ftp://example.com/"},
        {"secret": "short"},
        {"headers": {"X-Otklik-Signature": "forged"}},
        {"headers": {"Idempotency-Key": "fixed"}},
        {"headers": {"Bad\r\nName": "x"}},
        {"method": "GET"},
        {"surprise": True},
    ],
)
def test_the_config_rejects_bad_settings(overrides: dict[str, Any]) -> None:
    raw = {"url": "https://example.com/", "secret": SECRET, **overrides}

    with pytest.raises(ValueError):
        WebhookConfig.model_validate(raw)


def test_repr_masks_the_secret_and_header_values() -> None:
    adapter = SignedWebhookAdapter(
        config("https://example.com/", headers={"Authorization": "Bearer t0k"})
    )

    shown = repr(adapter) + str(adapter.config) + json.dumps(adapter.config.model_dump(mode="json"))
    assert SECRET not in shown and "Bearer t0k" not in shown
    assert "Authorization" in shown


def test_a_rejected_secret_is_not_quoted_in_the_error() -> None:
    with pytest.raises(ValueError) as caught:
        WebhookConfig.model_validate({"url": "https://example.com/", "secret": "tiny-secret"})

    assert "secret" in str(caught.value) and "tiny-secret" not in str(caught.value)


def test_the_adapter_is_the_http_webhook_provider() -> None:
    adapter = SignedWebhookAdapter(config("https://example.com/"))

    assert (adapter.kind, adapter.provider) == (ChannelKind.WEBHOOK, "http")
