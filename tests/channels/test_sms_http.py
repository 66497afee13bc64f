"""The HTTP SMS gateway adapter against a fake gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

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
from otklik.channels.sms_http import HttpSmsAdapter, HttpSmsConfig
from tests.support.fake_sms_gateway import FakeSmsGateway


@pytest.fixture
def gateway() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as fake:
        yield fake


def make_adapter(url: str, **overrides: Any) -> HttpSmsAdapter:
    raw: dict[str, Any] = {"url": url, "timeout_seconds": 2, "sender": "Shop", **overrides}
    return HttpSmsAdapter(HttpSmsConfig.model_validate(raw))


def sms(text: str = "Ваш код 4821", to: str = "+79123456789") -> OutboundMessage:
    return OutboundMessage(message_id=uuid.uuid4(), kind=ChannelKind.SMS, to=to, text=text)


def send(adapter: HttpSmsAdapter, message: OutboundMessage) -> SendResult:
    async def scenario() -> SendResult:
        try:
            return await adapter.send(message)
        finally:
            await adapter.aclose()

    return asyncio.run(scenario())


def test_json_post_carries_number_text_sender_and_reference(gateway: FakeSmsGateway) -> None:
    adapter = make_adapter(gateway.url, auth="bearer", token="tok-123")
    message = sms()
    result = send(adapter, message)
    assert result == Sent(provider_message_id="gw-1", detail="HTTP 200")
    [request] = gateway.requests
    assert request.method == "POST"
    assert request.json == {
        "to": "+79123456789",
        "text": "Ваш код 4821",
        "from": "Shop",
        "reference": str(message.message_id),
    }
    assert request.headers["authorization"] == "Bearer tok-123"


def test_form_post_with_renamed_fields_digits_and_secret_params(gateway: FakeSmsGateway) -> None:
    adapter = make_adapter(
        gateway.url,
        body_format="form",
        to_field="phones",
        text_field="mes",
        sender_field="sender",
        reference_field=None,
        phone_format="digits",
        extra_fields={"fmt": "3"},
        secret_fields={"login": "shop", "psw": "p4ss"},
        auth="basic",
        username="shop",
        password="p4ss",
        message_id_path="data.0.sms_id",
    )
    gateway.reply(200, {"data": [{"sms_id": 98765}]})
    result = send(adapter, sms())
    assert isinstance(result, Sent) and result.provider_message_id == "98765"
    [request] = gateway.requests
    assert request.form == {
        "fmt": "3",
        "login": "shop",
        "psw": "p4ss",
        "phones": "79123456789",
        "mes": "Ваш код 4821",
        "sender": "Shop",
    }
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"shop:p4ss").decode()


def test_get_sends_the_fields_as_query_parameters(gateway: FakeSmsGateway) -> None:
    adapter = make_adapter(gateway.url, method="GET", message_id_path=None)
    result = send(adapter, sms("hi"))
    assert isinstance(result, Sent) and result.provider_message_id is None
    [request] = gateway.requests
    assert (request.method, request.query["to"], request.query["text"]) == (
        "GET",
        "+79123456789",
        "hi",
    )


def test_a_200_with_an_error_inside_is_rejected_when_ok_path_is_set(
    gateway: FakeSmsGateway,
) -> None:
    adapter = make_adapter(gateway.url, ok_path="status")
    gateway.reply(200, {"status": "ERROR", "status_text": "no money"})
    result = send(adapter, sms())
    assert isinstance(result, Failed) and result.code == "gateway_rejected"


def test_429_with_retry_after_asks_for_a_retry_after_that_long(gateway: FakeSmsGateway) -> None:
    gateway.reply(429, {"error": "slow down"}, headers={"Retry-After": "17"})
    result = send(make_adapter(gateway.url), sms())
    assert result == RetryLater("rate_limited", 'HTTP 429: {"error": "slow down"}', 17.0)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_asks_for_a_retry(gateway: FakeSmsGateway, status: int) -> None:
    gateway.reply(status, "busy")
    result = send(make_adapter(gateway.url), sms())
    assert isinstance(result, RetryLater) and result.code == "server_error"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_fail_for_good(gateway: FakeSmsGateway, status: int) -> None:
    gateway.reply(status, {"error": "bad"})
    result = send(make_adapter(gateway.url), sms())
    assert isinstance(result, Failed)
    assert result.code == "rejected" and str(status) in result.reason


def test_a_gateway_slower_than_the_timeout_asks_for_a_retry(gateway: FakeSmsGateway) -> None:
    gateway.reply(200, delay=1.5)
    result = send(make_adapter(gateway.url, timeout_seconds=0.3), sms())
    assert isinstance(result, RetryLater) and result.code == "timeout"


def test_a_dropped_connection_asks_for_a_retry(gateway: FakeSmsGateway) -> None:
    gateway.reply(drop=True)
    result = send(make_adapter(gateway.url), sms())
    assert isinstance(result, RetryLater) and result.code == "connection_error"


def test_a_gateway_that_is_down_asks_for_a_retry() -> None:
    with FakeSmsGateway() as gone:
        url = gone.url
    result = send(make_adapter(url), sms())
    assert isinstance(result, RetryLater) and result.code == "connection_error"


def test_one_pooled_client_serves_many_sends(gateway: FakeSmsGateway) -> None:
    adapter = make_adapter(gateway.url)

    async def scenario() -> list[SendResult]:
        try:
            return list(await asyncio.gather(*(adapter.send(sms(f"n{i}")) for i in range(20))))
        finally:
            await adapter.aclose()

    results = asyncio.run(scenario())
    assert all(isinstance(r, Sent) for r in results)
    assert len(gateway.requests) == 20


def test_retry_after_also_reads_an_http_date() -> None:
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("120") == 120.0
    assert retry_after("soon") is None


def test_json_receipts_map_statuses_and_skip_intermediate_ones() -> None:
    adapter = make_adapter("http://127.0.0.1:9/x")
    body = json.dumps(
        [
            {"id": "gw-1", "status": "DELIVRD"},
            {"id": "gw-2", "status": "UNDELIV", "error": "unknown subscriber"},
            {"id": "gw-3", "status": "expired"},
            {"id": "gw-4", "status": "ENROUTE"},
            {"status": "delivered"},
        ]
    ).encode()
    receipts = adapter.parse_receipts(body, {"content-type": "application/json"})
    assert [(r.provider_message_id, r.status, r.permanent) for r in receipts] == [
        ("gw-1", "delivered", False),
        ("gw-2", "failed", True),
        ("gw-3", "failed", False),
    ]
    assert receipts[1].reason == "UNDELIV: unknown subscriber"


def test_form_receipts_use_configured_field_names_and_status_values() -> None:
    adapter = make_adapter(
        "http://127.0.0.1:9/x",
        receipt_format="form",
        receipt_id_field="sms_id",
        receipt_status_field="state",
        receipt_statuses={"1": "delivered", "20": "failed"},
        permanent_statuses=["20"],
    )
    [ok] = adapter.parse_receipts(b"sms_id=555&state=1", {})
    [bad] = adapter.parse_receipts(b"sms_id=556&state=20&error=blocked", {})
    assert (ok.provider_message_id, ok.status) == ("555", "delivered")
    assert (bad.status, bad.permanent) == ("failed", True)
    assert adapter.parse_receipts(b"not json", {}) == []


def test_junk_json_receipt_bodies_give_no_receipts() -> None:
    adapter = make_adapter("http://127.0.0.1:9/x")
    assert adapter.parse_receipts(b"{oops", {}) == []
    assert adapter.parse_receipts(b'"just a string"', {}) == []


def test_phone_numbers_are_normalised_and_junk_rejected() -> None:
    adapter = make_adapter("http://127.0.0.1:9/x")
    assert adapter.normalise_address("8 (912) 345-67-89") == "+79123456789"
    with pytest.raises(InvalidAddress) as err:
        adapter.normalise_address("not a number")
    assert err.value.code == "invalid_phone"


def test_repr_masks_tokens_passwords_and_secret_fields() -> None:
    adapter = make_adapter(
        "http://127.0.0.1:9/x",
        auth="basic",
        username="shop",
        password="pw-secret",
        token="tok-secret",
        secret_fields={"api_id": "id-secret"},
    )
    text = repr(adapter)
    assert "pw-secret" not in text and "tok-secret" not in text and "id-secret" not in text


def test_bearer_auth_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        make_adapter("http://127.0.0.1:9/x", auth="bearer")
    with pytest.raises(ValueError):
        make_adapter("ftp://example/x")
