"""FCM HTTP v1: the service-account token flow and how FCM's answers are read."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    RetryLater,
    SendResult,
    Sent,
)
from otklik.channels.fcm import FcmConfig, FcmPushAdapter
from tests.channels.support import send_all
from tests.support.fake_push import FakeFcm, Fault, fcm_error

DEVICE = "dQw4w9WgXcQ:APA91bH" + "x" * 140


@pytest.fixture(scope="module")
def fcm() -> Iterator[FakeFcm]:
    with FakeFcm() as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh(fcm: FakeFcm) -> None:
    fcm.requests.clear()
    fcm.revoke_tokens()
    fcm.token_lifetime = 3600


def adapter(fcm: FakeFcm, **overrides: Any) -> FcmPushAdapter:
    fields: dict[str, Any] = {
        "project_id": fcm.project_id,
        "service_account_json": fcm.service_account_json(),
        "api_base": fcm.url,
        **overrides,
    }
    return FcmPushAdapter(FcmConfig(**fields))


def push(to: str = DEVICE, **data: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid.uuid4(),
        kind=ChannelKind.MOBILE_PUSH,
        to=to,
        subject="Заказ в пути",
        text="Курьер будет завтра",
        data=data,
    )


def send(sender: FcmPushAdapter, *messages: OutboundMessage) -> list[SendResult]:
    return send_all(sender, *messages)


def test_a_push_reaches_fcm_with_a_token_from_the_service_account_flow(fcm: FakeFcm) -> None:
    message = push(url="https://shop.example/o/42", data={"order": 42, "items": [1, 2], "k": "v"})

    [result] = send(adapter(fcm), message)

    assert isinstance(result, Sent)
    assert (result.provider_message_id or "").startswith(f"projects/{fcm.project_id}/messages/")
    assert fcm.delivered() == [
        {
            "token": DEVICE,
            "notification": {"title": "Заказ в пути", "body": "Курьер будет завтра"},
            "data": {
                "message_id": str(message.message_id),
                "order": "42",
                "items": "[1, 2]",
                "k": "v",
                "url": "https://shop.example/o/42",
            },
        }
    ]
    [token_request] = fcm.recorded("token")
    assert token_request.claims is not None
    assert token_request.claims["scope"] == FakeFcm.SCOPE
    assert token_request.claims["iss"] == fcm.client_email
    assert token_request.claims["exp"] - token_request.claims["iat"] == 3600
    form_assertion = token_request.body.decode().split("assertion=")[1]
    assert jwt.get_unverified_header(form_assertion)["kid"] == "fake-key-1"


def test_one_access_token_serves_many_sends(fcm: FakeFcm) -> None:
    results = send(adapter(fcm), *(push() for _ in range(5)))

    assert all(isinstance(r, Sent) for r in results)
    assert len(fcm.recorded("token")) == 1
    assert len({r.headers["authorization"] for r in fcm.recorded("send")}) == 1


def test_concurrent_sends_share_one_token_request(fcm: FakeFcm) -> None:
    sender = adapter(fcm)

    async def run() -> list[SendResult]:
        try:
            return await asyncio.gather(*(sender.send(push()) for _ in range(8)))
        finally:
            await sender.aclose()

    assert all(isinstance(r, Sent) for r in asyncio.run(run()))
    assert len(fcm.recorded("token")) == 1


def test_a_token_close_to_expiry_is_renewed_before_use(fcm: FakeFcm) -> None:
    fcm.token_lifetime = 60  # inside the five-minute safety margin

    results = send(adapter(fcm), push(), push())

    assert all(isinstance(r, Sent) for r in results)
    assert len(fcm.recorded("token")) == 2


def test_a_revoked_token_is_replaced_once_and_the_send_goes_through(fcm: FakeFcm) -> None:
    sender = adapter(fcm)

    async def run() -> list[SendResult]:
        try:
            first = await sender.send(push())
            fcm.revoke_tokens()
            return [first, await sender.send(push())]
        finally:
            await sender.aclose()

    assert all(isinstance(r, Sent) for r in asyncio.run(run()))
    assert len(fcm.recorded("token")) == 2
    assert [r.status for r in fcm.recorded("send")] == [200, 401, 200]


def test_a_token_refused_twice_asks_for_a_retry_later(fcm: FakeFcm) -> None:
    fcm.inject(Fault(401, fcm_error(401, "UNAUTHENTICATED")), times=2)

    [result] = send(adapter(fcm), push())

    assert isinstance(result, RetryLater)
    assert result.code == "unauthenticated"
    assert len(fcm.recorded("token")) == 2


def test_an_unregistered_token_is_reported_gone(fcm: FakeFcm) -> None:
    fcm.unregister("gone-token")

    [result] = send(adapter(fcm), push("gone-token"))

    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("unregistered", True)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(404, fcm_error(404, "NOT_FOUND")), Failed("unregistered", "", address_gone=True)),
        (Fault(400, fcm_error(400, "INVALID_ARGUMENT")), Failed("invalid_argument", "")),
        (Fault(403, fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")),
         Failed("sender_id_mismatch", "")),
        (Fault(429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
               {"Retry-After": "17"}), RetryLater("quota_exceeded", "", 17.0)),
        (Fault(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), {"Retry-After": "5"}),
         RetryLater("unavailable", "", 5.0)),
        (Fault(500, fcm_error(500, "INTERNAL", "INTERNAL")), RetryLater("internal", "", None)),
        (Fault(502), RetryLater("unavailable", "", None)),
        (Fault(drop=True), RetryLater("connection_error", "")),
        (Fault(delay=1.0), RetryLater("timeout", "")),
    ],
    ids=["404", "400", "403-sender", "429", "503", "500", "502-no-body", "dropped", "timeout"],
)  # fmt: skip
def test_fcm_faults_are_classified(fcm: FakeFcm, fault: Fault, expected: SendResult) -> None:
    fcm.inject(fault)

    [result] = send(adapter(fcm, timeout_seconds=0.3), push())

    assert type(result) is type(expected)
    assert result.code == expected.code  # type: ignore[union-attr]
    if isinstance(expected, RetryLater):
        assert result.retry_after == expected.retry_after  # type: ignore[union-attr]
    if isinstance(expected, Failed):
        assert result.address_gone == expected.address_gone  # type: ignore[union-attr]


def test_data_values_reach_fcm_as_strings_it_accepts(fcm: FakeFcm) -> None:
    [result] = send(adapter(fcm), push(data={"nested": {"a": [1, None]}, "flag": True}))

    assert isinstance(result, Sent)
    assert fcm.delivered()[0]["data"]["nested"] == '{"a": [1, null]}'
    assert fcm.delivered()[0]["data"]["flag"] == "true"


def test_a_wrong_project_is_a_permanent_failure(fcm: FakeFcm) -> None:
    [result] = send(adapter(fcm, project_id="someone-else"), push())

    assert isinstance(result, Failed)
    assert result.code == "permission_denied"
    assert not result.address_gone


def _account_signed_by_another_key(fcm: FakeFcm) -> str:
    doc = json.loads(fcm.service_account_json())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    doc["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(doc)


def test_a_service_account_the_token_endpoint_refuses_fails_the_send(fcm: FakeFcm) -> None:
    sender = adapter(fcm, service_account_json=_account_signed_by_another_key(fcm))

    [result] = send(sender, push())

    assert isinstance(result, Failed)
    assert result.code == "auth_rejected"
    assert [r.status for r in fcm.requests] == [400]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(503, {"error": "backend"}, {"Retry-After": "3"}), "token_unavailable"),
        (Fault(delay=1.0), "timeout"),
    ],
)
def test_token_endpoint_outages_ask_for_a_retry(fcm: FakeFcm, fault: Fault, code: str) -> None:
    fcm.inject(fault, route="token")

    [result] = send(adapter(fcm, timeout_seconds=0.3), push())

    assert isinstance(result, RetryLater)
    assert result.code == code
    assert fcm.recorded("send") == []


def test_the_token_uri_setting_overrides_the_service_accounts_own(fcm: FakeFcm) -> None:
    doc = json.loads(fcm.service_account_json())
    doc["token_uri"] = "https://oauth2.googleapis.com/token"
    sender = adapter(fcm, service_account_json=json.dumps(doc), token_uri=f"{fcm.url}/token")

    [result] = send(sender, push())

    assert isinstance(result, Sent)


def test_registration_tokens_are_trimmed() -> None:
    with FakeFcm() as fake:
        assert adapter(fake).normalise_address(f"  {DEVICE}\n") == DEVICE


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "empty_address"),
        ("   ", "empty_address"),
        ("abc def", "invalid_device_token"),
        ("abc\x00def", "invalid_device_token"),
        ("токен", "invalid_device_token"),
        ("a" * 4097, "device_token_too_long"),
    ],
)
def test_bad_registration_tokens_are_rejected_with_a_code(
    fcm: FakeFcm, raw: str, code: str
) -> None:
    with pytest.raises(InvalidAddress) as caught:
        adapter(fcm).normalise_address(raw)
    assert caught.value.code == code


def test_repr_and_errors_never_show_the_service_account_key(fcm: FakeFcm) -> None:
    account = fcm.service_account_json()
    secret_line = json.loads(account)["private_key"].splitlines()[1]
    sender = adapter(fcm)
    assert secret_line not in repr(sender)
    assert "**********" in repr(sender.config)

    broken = account.replace(secret_line, secret_line[::-1])
    with pytest.raises(ValidationError) as caught:
        adapter(fcm, service_account_json=broken)
    assert secret_line[::-1] not in str(caught.value)


def _ec_account() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps({"client_email": "a@b.iam.gserviceaccount.com", "private_key": pem})


@pytest.mark.parametrize(
    "account",
    ["not json", "[]", json.dumps({"client_email": "a@b"}), _ec_account()],
    ids=["not-json", "not-object", "no-key", "not-rsa"],
)
def test_a_malformed_service_account_is_rejected(fcm: FakeFcm, account: str) -> None:
    with pytest.raises(ValidationError):
        FcmConfig(project_id="p", service_account_json=account)
