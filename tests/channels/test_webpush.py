"""Web push with VAPID: what a browser's push service receives, and how its answers are read."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
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
from otklik.channels.http import retry_after
from otklik.channels.webpush import (
    VapidWebPushAdapter,
    WebPushConfig,
    generate_vapid_keys,
)
from otklik.kit.time import utc_now
from tests.channels.support import send_all
from tests.support.fake_push import FakeWebPushService, Fault

PRIVATE, PUBLIC = generate_vapid_keys()
SUBJECT = "mailto:ops@shop.example"


@pytest.fixture
def service() -> Iterator[FakeWebPushService]:
    with FakeWebPushService() as svc:
        yield svc


def adapter(**overrides: Any) -> VapidWebPushAdapter:
    fields: dict[str, Any] = {
        "vapid_private_key": PRIVATE,
        "vapid_public_key": PUBLIC,
        "vapid_subject": SUBJECT,
        **overrides,
    }
    return VapidWebPushAdapter(WebPushConfig(**fields))


def push(to: str, text: str = "Your cart misses you", **data: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=uuid.uuid4(), kind=ChannelKind.WEBPUSH, to=to, text=text, subject="Hi", data=data
    )


def send(sender: VapidWebPushAdapter, *messages: OutboundMessage) -> list[SendResult]:
    return send_all(sender, *messages)


def test_the_browser_decrypts_the_payload_and_the_vapid_signature_verifies(
    service: FakeWebPushService,
) -> None:
    sub = service.subscribe(application_server_key=PUBLIC)
    message = OutboundMessage(
        message_id=uuid.uuid4(),
        kind=ChannelKind.WEBPUSH,
        to=sub.subscription_json(),
        subject="Скидка 10%",
        text="Товары в корзине ждут вас",
        data={"url": "https://shop.example/cart", "icon": "https://shop.example/i.png"},
    )
    [result] = send(adapter(ttl_seconds=3600, urgency="high"), message)

    assert isinstance(result, Sent)
    assert (result.provider_message_id or "").startswith(f"{service.url}/m/")
    assert service.delivered() == [
        {
            "title": "Скидка 10%",
            "body": "Товары в корзине ждут вас",
            "url": "https://shop.example/cart",
            "icon": "https://shop.example/i.png",
            "message_id": str(message.message_id),
        }
    ]
    [request] = service.requests
    assert request.claims is not None
    assert request.claims["aud"] == service.url
    assert request.claims["sub"] == SUBJECT
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "high"


def test_a_pem_private_key_signs_as_well_as_a_raw_one(service: FakeWebPushService) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    public = base64.urlsafe_b64encode(point).rstrip(b"=").decode()
    sub = service.subscribe(application_server_key=public)

    [result] = send(
        adapter(vapid_private_key=pem, vapid_public_key=public), push(sub.subscription_json())
    )

    assert isinstance(result, Sent)
    assert len(service.delivered()) == 1


def test_one_vapid_token_serves_many_pushes_to_the_same_service(
    service: FakeWebPushService,
) -> None:
    subs = [service.subscribe() for _ in range(3)]
    results = send(adapter(), *(push(s.subscription_json()) for s in subs))

    assert all(isinstance(r, Sent) for r in results)
    assert len({r.headers["authorization"] for r in service.requests}) == 1


def test_a_subscription_made_for_another_vapid_key_is_a_configuration_fault(
    service: FakeWebPushService,
) -> None:
    _, other_public = generate_vapid_keys()
    sub = service.subscribe(application_server_key=other_public)

    [result] = send(adapter(), push(sub.subscription_json()))

    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("vapid_rejected", False)


def test_an_unsubscribed_browser_is_reported_gone(service: FakeWebPushService) -> None:
    sub = service.subscribe()
    service.expire(sub)
    unknown = json.loads(service.subscribe().subscription_json())
    unknown["endpoint"] = f"{service.url}/push/never-existed"

    results = send(adapter(), push(sub.subscription_json()), push(json.dumps(unknown)))

    assert [r for r in results if isinstance(r, Failed)] == results
    assert [(r.code, r.address_gone) for r in results if isinstance(r, Failed)] == [
        ("subscription_gone", True),
        ("subscription_gone", True),
    ]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(429, headers={"Retry-After": "30"}), RetryLater("rate_limited", "", 30.0)),
        (Fault(500), RetryLater("provider_unavailable", "", None)),
        (Fault(503, headers={"Retry-After": "7"}), RetryLater("provider_unavailable", "", 7.0)),
        (Fault(413), Failed("payload_too_large", "")),
        (Fault(400), Failed("rejected", "")),
        (Fault(drop=True), RetryLater("connection_error", "")),
        (Fault(delay=1.0), RetryLater("timeout", "")),
    ],
    ids=["429", "500", "503", "413", "400", "dropped", "timeout"],
)
def test_push_service_faults_are_classified(
    service: FakeWebPushService, fault: Fault, expected: SendResult
) -> None:
    sub = service.subscribe()
    service.inject(fault)

    [result] = send(adapter(timeout_seconds=0.3), push(sub.subscription_json()))

    assert type(result) is type(expected)
    assert result.code == expected.code  # type: ignore[union-attr]
    if isinstance(expected, RetryLater):
        assert isinstance(result, RetryLater)
        assert result.retry_after == expected.retry_after
    if isinstance(expected, Failed):
        assert isinstance(result, Failed)
        assert not result.address_gone


def test_a_payload_too_big_for_one_record_fails_without_a_request(
    service: FakeWebPushService,
) -> None:
    sub = service.subscribe()

    [result] = send(adapter(), push(sub.subscription_json(), data={"blob": "x" * 4000}))

    assert isinstance(result, Failed)
    assert result.code == "payload_too_large"
    assert service.requests == []


def test_the_adapter_keeps_working_when_called_from_a_new_event_loop(
    service: FakeWebPushService,
) -> None:
    sender = adapter()
    sub = service.subscribe()
    first = asyncio.run(sender.send(push(sub.subscription_json())))
    second = asyncio.run(sender.send(push(sub.subscription_json())))

    assert isinstance(first, Sent)
    assert isinstance(second, Sent)


def _subscription(**changes: Any) -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    doc: dict[str, Any] = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc:def",
        "expirationTime": None,
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).decode(),  # padded, as some clients send
            "auth": base64.urlsafe_b64encode(b"0123456789abcdef").rstrip(b"=").decode(),
        },
    }
    doc.update(changes)
    return json.dumps(doc)


def test_a_subscription_is_normalised_to_compact_unpadded_json() -> None:
    raw = _subscription()

    canonical = adapter().normalise_address(raw)

    doc = json.loads(canonical)
    assert set(doc) == {"endpoint", "keys"}
    assert doc["keys"]["p256dh"] == json.loads(raw)["keys"]["p256dh"].rstrip("=")
    assert adapter().normalise_address(canonical) == canonical


def test_plain_http_endpoints_are_allowed_only_on_this_machine() -> None:
    local = _subscription(endpoint="http://localhost:8080/push/1")
    assert (
        json.loads(adapter().normalise_address(local))["endpoint"] == "http://localhost:8080/push/1"
    )
    with pytest.raises(InvalidAddress) as caught:
        adapter().normalise_address(_subscription(endpoint="http://push.example/1"))
    assert caught.value.code == "insecure_endpoint"


def _keys(p256dh: str, auth: str = "MDEyMzQ1Njc4OWFiY2RlZg") -> dict[str, str]:
    return {"p256dh": p256dh, "auth": auth}


NOT_ON_CURVE = base64.urlsafe_b64encode(b"\x04" + b"\x00" * 64).decode()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("  ", "empty_address"),
        ("not json", "invalid_subscription_json"),
        ("[1, 2]", "invalid_subscription_json"),
        (_subscription(endpoint=None), "missing_endpoint"),
        (_subscription(endpoint="not a url"), "invalid_endpoint"),
        (_subscription(endpoint="ftp://push.example/1"), "insecure_endpoint"),
        (_subscription(keys={"auth": "MDEyMzQ1Njc4OWFiY2RlZg"}), "missing_keys"),
        (_subscription(keys=_keys("AAAA")), "invalid_p256dh_key"),
        (_subscription(keys=_keys(NOT_ON_CURVE)), "invalid_p256dh_key"),
        (_subscription(keys=_keys("!!not base64!!")), "invalid_p256dh_key"),
        ("x" * 5000, "subscription_too_long"),
    ],
)
def test_bad_subscriptions_are_rejected_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        adapter().normalise_address(raw)
    assert caught.value.code == code


def test_an_auth_secret_of_the_wrong_size_is_rejected() -> None:
    good = json.loads(_subscription())
    good["keys"]["auth"] = "c2hvcnQ"
    with pytest.raises(InvalidAddress) as caught:
        adapter().normalise_address(json.dumps(good))
    assert caught.value.code == "invalid_auth_secret"


def test_repr_and_errors_never_show_the_private_key() -> None:
    sender = adapter()
    assert PRIVATE not in repr(sender)
    assert PRIVATE not in str(sender.config)
    assert "**********" in repr(sender.config)

    _, other_public = generate_vapid_keys()
    with pytest.raises(ValidationError) as caught:
        WebPushConfig(
            vapid_private_key=PRIVATE, vapid_public_key=other_public, vapid_subject=SUBJECT
        )
    assert "does not belong" in str(caught.value)
    assert PRIVATE not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vapid_subject", "ops@shop.example"),
        ("vapid_private_key", "not a key"),
        ("vapid_public_key", "AAAA"),
        ("urgency", "urgent"),
    ],
)
def test_bad_vapid_settings_are_rejected(field: str, value: str) -> None:
    fields = {"vapid_private_key": PRIVATE, "vapid_public_key": PUBLIC, "vapid_subject": SUBJECT}
    with pytest.raises(ValidationError):
        WebPushConfig(**{**fields, field: value})


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    later = format_datetime(utc_now() + timedelta(seconds=120), usegmt=True)
    assert retry_after("12") == 12.0
    assert 100 < (retry_after(later) or 0) <= 120
    assert retry_after("soon") is None
    assert retry_after(None) is None
