"""APNs with token-based auth: provider tokens, request headers and how APNs answers are read."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from otklik.channels.apns import ApnsConfig, ApnsPushAdapter
from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    RetryLater,
    SendResult,
    Sent,
)
from tests.channels.support import send_all
from tests.support.fake_push import FakeApns, Fault, apns_error

DEVICE = "0f" * 32


@pytest.fixture(scope="module")
def apns() -> Iterator[FakeApns]:
    with FakeApns() as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh(apns: FakeApns) -> None:
    apns.requests.clear()


def adapter(
    apns: FakeApns, clock: Callable[[], float] = time.time, **overrides: Any
) -> ApnsPushAdapter:
    fields: dict[str, Any] = {
        "team_id": apns.team_id,
        "key_id": apns.key_id,
        "auth_key": apns.auth_key_pem,
        "topic": apns.topic,
        "api_base": apns.url,
        **overrides,
    }
    return ApnsPushAdapter(ApnsConfig(**fields), clock=clock)


def push(to: str = DEVICE, **data: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid.uuid4(),
        kind=ChannelKind.MOBILE_PUSH,
        to=to,
        subject="Бонусы начислены",
        text="+500 баллов за заказ",
        data=data,
    )


def send(sender: ApnsPushAdapter, *messages: OutboundMessage) -> list[SendResult]:
    return send_all(sender, *messages)


def test_an_alert_reaches_apns_with_a_verified_provider_token(apns: FakeApns) -> None:
    message = push(url="https://shop.example/bonus", data={"order": 42})
    before = int(time.time())

    [result] = send(adapter(apns), message)

    assert result == Sent(provider_message_id=str(message.message_id))
    [request] = apns.delivered()
    assert request.path == f"/3/device/{DEVICE}"
    assert request.payload == {
        "aps": {"alert": {"title": "Бонусы начислены", "body": "+500 баллов за заказ"}},
        "url": "https://shop.example/bonus",
        "order": 42,
        "message_id": str(message.message_id),
    }
    assert request.claims is not None and request.claims["iss"] == apns.team_id
    token = request.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": apns.key_id, "typ": "JWT"}
    assert request.headers["apns-topic"] == apns.topic
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-id"] == str(message.message_id)
    assert 0 <= int(request.headers["apns-expiration"]) - before - 86_400 <= 5


def test_a_background_push_is_silent_and_low_priority(apns: FakeApns) -> None:
    [result] = send(adapter(apns, push_type="background"), push())

    assert isinstance(result, Sent)
    [request] = apns.delivered()
    assert request.payload["aps"] == {"content-available": 1}
    assert (request.headers["apns-push-type"], request.headers["apns-priority"]) == (
        "background",
        "5",
    )


def test_one_provider_token_serves_many_sends(apns: FakeApns) -> None:
    results = send(adapter(apns), *(push() for _ in range(5)))

    assert all(isinstance(r, Sent) for r in results)
    assert len(apns.provider_tokens()) == 1


def test_the_provider_token_is_re_signed_after_fifty_minutes_not_before(apns: FakeApns) -> None:
    start = time.time() - 51 * 60  # APNs still accepts a token this old
    now = [start]
    sender = adapter(apns, clock=lambda: now[0])

    async def run() -> list[SendResult]:
        try:
            results = [await sender.send(push())]
            now[0] = start + 40 * 60
            results.append(await sender.send(push()))
            assert len(apns.provider_tokens()) == 1
            now[0] = start + 51 * 60
            results.append(await sender.send(push()))
            return results
        finally:
            await sender.aclose()

    assert all(isinstance(r, Sent) for r in asyncio.run(run()))
    assert len(apns.provider_tokens()) == 2


def test_a_token_apns_calls_expired_is_replaced_and_the_send_retried(apns: FakeApns) -> None:
    now = [time.time() - 70 * 60]  # a clock an hour behind: APNs refuses the token
    sender = adapter(apns, clock=lambda: now[0])

    async def run() -> list[SendResult]:
        try:
            first = await sender.send(push())
            now[0] = time.time()
            return [first, await sender.send(push())]
        finally:
            await sender.aclose()

    first, second = asyncio.run(run())
    assert isinstance(first, RetryLater)
    assert first.code == "expired_provider_token"
    assert isinstance(second, Sent)
    assert len(apns.provider_tokens()) == 2


def test_an_expired_provider_token_answer_drops_even_a_young_token(apns: FakeApns) -> None:
    apns.inject(apns_error(403, "ExpiredProviderToken"))

    first, second = send(adapter(apns), push(), push())

    assert isinstance(first, RetryLater)
    assert isinstance(second, Sent)
    assert len(apns.provider_tokens()) == 2


def test_an_uninstalled_app_is_reported_gone(apns: FakeApns) -> None:
    gone = "ab" * 32
    apns.unregister(gone)

    [result] = send(adapter(apns), push(gone))

    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("unregistered", True)


def test_a_token_apns_calls_bad_is_reported_gone(apns: FakeApns) -> None:
    longer = "ab" * 40  # well-formed for us, unknown to APNs

    [result] = send(adapter(apns), push(longer))

    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("bad_device_token", True)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (apns_error(429, "TooManyRequests", {"Retry-After": "10"}),
         RetryLater("too_many_requests", "", 10.0)),
        (apns_error(500, "InternalServerError"), RetryLater("internal_server_error", "")),
        (apns_error(503, "ServiceUnavailable"), RetryLater("service_unavailable", "")),
        (Fault(502), RetryLater("http_502", "")),
        (apns_error(400, "BadCollapseId"), Failed("bad_collapse_id", "")),
        (apns_error(403, "Forbidden"), Failed("forbidden", "")),
        (Fault(drop=True), RetryLater("connection_error", "")),
        (Fault(delay=1.0), RetryLater("timeout", "")),
    ],
    ids=["429", "500", "503", "502-no-body", "400", "403", "dropped", "timeout"],
)  # fmt: skip
def test_apns_faults_are_classified(apns: FakeApns, fault: Fault, expected: SendResult) -> None:
    apns.inject(fault)

    [result] = send(adapter(apns, timeout_seconds=0.3), push())

    assert type(result) is type(expected)
    assert result.code == expected.code  # type: ignore[union-attr]
    if isinstance(expected, RetryLater):
        assert result.retry_after == expected.retry_after  # type: ignore[union-attr]
    if isinstance(expected, Failed):
        assert not result.address_gone  # type: ignore[union-attr]


def test_a_device_token_for_another_app_is_a_permanent_failure(apns: FakeApns) -> None:
    [result] = send(adapter(apns, topic="com.example.other"), push())

    assert isinstance(result, Failed)
    assert result.code == "device_token_not_for_topic"


def test_a_key_apns_does_not_know_is_a_permanent_failure(apns: FakeApns) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    [result] = send(adapter(apns, auth_key=other.decode()), push())

    assert isinstance(result, Failed)
    assert result.code == "invalid_provider_token"


def test_a_payload_over_four_kilobytes_fails_without_a_request(apns: FakeApns) -> None:
    [result] = send(adapter(apns), push(data={"blob": "x" * 4100}))

    assert isinstance(result, Failed)
    assert result.code == "payload_too_large"
    assert apns.requests == []


def test_device_tokens_are_normalised_to_lower_case_hex(apns: FakeApns) -> None:
    raw = "<" + " ".join(["0F0F0F0F"] * 8) + ">"
    assert adapter(apns).normalise_address(raw) == DEVICE


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "empty_address"),
        ("<>", "empty_address"),
        ("zz" * 32, "invalid_device_token"),
        ("0f" * 31, "invalid_device_token_length"),
        ("0f" * 201, "invalid_device_token_length"),
    ],
)
def test_bad_device_tokens_are_rejected_with_a_code(apns: FakeApns, raw: str, code: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        adapter(apns).normalise_address(raw)
    assert caught.value.code == code


def test_repr_and_errors_never_show_the_signing_key(apns: FakeApns) -> None:
    secret_line = apns.auth_key_pem.splitlines()[1]
    sender = adapter(apns)
    assert secret_line not in repr(sender)
    assert "**********" in repr(sender.config)

    broken = apns.auth_key_pem.replace(secret_line, secret_line[::-1])
    with pytest.raises(ValidationError) as caught:
        adapter(apns, auth_key=broken)
    assert secret_line[::-1] not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("team_id", "team"), ("key_id", "KEY"), ("environment", "staging"), ("push_type", "voip")],
)
def test_bad_apns_settings_are_rejected(apns: FakeApns, field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        adapter(apns, **{field: value})


def test_the_environment_picks_apples_host_when_no_base_is_set(apns: FakeApns) -> None:
    fields = {"api_base": None, "environment": "sandbox"}
    assert adapter(apns, **fields)._base == "https://api.sandbox.push.apple.com"
