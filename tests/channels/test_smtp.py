"""The SMTP email adapter against a real SMTP server on 127.0.0.1 (tests/support/smtp_sink.py)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiosmtplib
import pytest
from pydantic import SecretStr, ValidationError

from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    RetryLater,
    Sent,
)
from otklik.channels.mime import Sender, build_message, flatten
from otklik.channels.smtp import SmtpConfig, SmtpEmailAdapter, classify
from tests.support.smtp_sink import SmtpSink

T = TypeVar("T")
FROM = "news@shop.example.com"
UNSUBSCRIBE = (
    "<https://shop.example.com/unsubscribe/eyJtIjoiMDE5MmY0YzAtN2M1Ni03ZjNlLWE4YjItM2Q0"
    "ZTVmNmE3YjhjIiwidyI6IjAxOTJmNGMwIn0.c2lnbmF0dXJlLXRoYXQtaXMtcXVpdGUtbG9uZw>, "
    "<mailto:unsubscribe@shop.example.com?subject=unsubscribe>"
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def adapter_for(sink: SmtpSink, **overrides: Any) -> SmtpEmailAdapter:
    settings: dict[str, Any] = {
        "host": sink.host,
        "port": sink.port,
        "security": "none",
        "from_address": FROM,
        "from_name": "Shop",
        "local_hostname": "client.otklik.test",
        "timeout_seconds": 5,
    }
    settings.update(overrides)
    return SmtpEmailAdapter(SmtpConfig(**settings))


def message(to: str = "ivan@example.org", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": uuid.uuid4(),
        "kind": ChannelKind.EMAIL,
        "to": to,
        "text": "Your cart is waiting.\n",
        "subject": "Your cart",
        "html": "<p>Your cart is <b>waiting</b>.</p>",
        "headers": {
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    values.update(fields)
    return OutboundMessage(**values)


async def send_all(adapter: SmtpEmailAdapter, messages: list[OutboundMessage]) -> list[Any]:
    try:
        return list(await asyncio.gather(*(adapter.send(m) for m in messages)))
    finally:
        await adapter.aclose()


async def send_one_by_one(adapter: SmtpEmailAdapter, messages: list[OutboundMessage]) -> list[Any]:
    try:
        return [await adapter.send(m) for m in messages]
    finally:
        await adapter.aclose()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the message on the wire -------------------------------------------------------------


def test_html_message_arrives_as_multipart_alternative_with_text_then_html() -> None:
    with SmtpSink() as sink:
        sent = message()
        result = run(send_one_by_one(adapter_for(sink), [sent]))
        assert isinstance(result[0], Sent)
        received = sink.messages[0]
    mail = received.message
    assert received.mail_from == FROM
    assert received.rcpt_tos == ["ivan@example.org"]
    assert mail.get_content_type() == "multipart/alternative"
    parts = list(mail.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[0].get_content() == sent.text
    assert parts[1].get_content().rstrip("\n") == sent.html
    assert mail["To"] == "ivan@example.org"
    assert mail["From"] == f"Shop <{FROM}>"
    assert mail["Subject"] == "Your cart"
    assert mail["Date"].datetime.tzinfo is not None


def test_one_click_unsubscribe_headers_arrive_exactly_as_given() -> None:
    with SmtpSink() as sink:
        run(send_one_by_one(adapter_for(sink), [message()]))
        received = sink.messages[0]
    assert received.message["List-Unsubscribe"] == UNSUBSCRIBE
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # A long URL must not be RFC 2047-encoded: mailbox providers would not find it.
    raw_headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"List-Unsubscribe: <https://shop.example.com/unsubscribe/" in raw_headers
    assert b"=?utf-8?" not in raw_headers


def test_message_id_is_the_same_on_every_attempt_of_one_message() -> None:
    sent = message()
    with SmtpSink() as sink:
        results = run(send_one_by_one(adapter_for(sink), [sent, sent, message()]))
        first, again, other = (m.message for m in sink.messages)
    assert first["Message-ID"] == again["Message-ID"] == f"<{sent.message_id}@shop.example.com>"
    assert other["Message-ID"] != first["Message-ID"]
    assert first["X-Otklik-Message-Id"] == str(sent.message_id)
    assert isinstance(results[0], Sent)
    assert results[0].provider_message_id == first["Message-ID"]


def test_message_id_domain_and_reply_to_come_from_the_config() -> None:
    with SmtpSink() as sink:
        adapter = adapter_for(
            sink, message_id_domain="mail.shop.example.com", reply_to="help@shop.example.com"
        )
        sent = message()
        run(send_one_by_one(adapter, [sent]))
        mail = sink.messages[0].message
    assert mail["Message-ID"] == f"<{sent.message_id}@mail.shop.example.com>"
    assert mail["Reply-To"] == "help@shop.example.com"


def test_cyrillic_subject_sender_name_and_body_are_encoded_and_decode_back() -> None:
    subject = "Иван, ваша корзина ждёт — скидка 20% только сегодня и только для вас!"
    text = "Здравствуйте, Иван!\nВ корзине 3 товара.\n"
    html = "<p>Здравствуйте, <b>Иван</b>!</p>"
    with SmtpSink() as sink:
        adapter = adapter_for(sink, from_name="Магазин «Ромашка»")
        run(send_one_by_one(adapter, [message(subject=subject, text=text, html=html)]))
        received = sink.messages[0]
    assert received.data.isascii(), "headers and bodies must be 7-bit clean"
    assert b"=?utf-8?b?" in received.data.split(b"\r\n\r\n", 1)[0]
    mail = received.message
    assert mail["Subject"] == subject
    assert mail["From"].addresses[0].display_name == "Магазин «Ромашка»"
    assert mail["From"].addresses[0].addr_spec == FROM
    plain, rich = mail.iter_parts()
    assert plain.get_content() == text
    assert rich.get_content().rstrip("\n") == html


def test_text_only_message_when_there_is_no_html() -> None:
    with SmtpSink() as sink:
        run(send_one_by_one(adapter_for(sink), [message(html=None, text="Just text.\n")]))
        mail = sink.messages[0].message
    assert mail.get_content_type() == "text/plain"
    assert not mail.is_multipart()
    assert mail.get_content() == "Just text.\n"


def test_long_non_ascii_html_lines_stay_within_smtp_line_limits() -> None:
    html = "<table>" + "<td style='padding:0'>Товар со скидкой</td>" * 400 + "</table>"
    ascii_html = "<table>" + "<td style='padding:0'>item</td>" * 400 + "</table>"
    for body in (html, ascii_html):
        raw = flatten(build_message(message(html=body), Sender(FROM, "shop.example.com")))
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Bcc": "spy@example.net"}, "set by the email adapter"),
        ({"Message-ID": "<x@y>"}, "set by the email adapter"),
        ({"X-Campaign": "spring\r\nBcc: spy@example.net"}, "line break"),
        ({"Bad Name": "x"}, "not a valid field name"),
    ],
)
def test_reserved_or_injected_headers_fail_the_message_before_sending(
    headers: dict[str, str], fragment: str
) -> None:
    with SmtpSink() as sink:
        result = run(send_one_by_one(adapter_for(sink), [message(headers=headers)]))[0]
        assert sink.count == 0
    assert isinstance(result, Failed)
    assert result.code == "invalid_message"
    assert fragment in result.reason


def test_a_per_message_reply_to_replaces_the_configured_one() -> None:
    with SmtpSink() as sink:
        adapter = adapter_for(sink, reply_to="help@shop.example.com")
        run(send_one_by_one(adapter, [message(headers={"Reply-To": "orders@shop.example.com"})]))
        mail = sink.messages[0].message
    assert mail.get_all("Reply-To") == ["orders@shop.example.com"]


def test_an_internationalised_domain_is_sent_in_its_ascii_form() -> None:
    with SmtpSink() as sink:
        result = run(send_one_by_one(adapter_for(sink), [message("ivan@пример.рф")]))[0]
        received = sink.messages[0]
    assert isinstance(result, Sent)
    assert received.rcpt_tos == ["ivan@xn--e1afmkfd.xn--p1ai"]
    assert "SMTPUTF8" not in received.mail_options


def test_a_non_ascii_mailbox_is_sent_with_smtputf8() -> None:
    with SmtpSink() as sink:
        result = run(send_one_by_one(adapter_for(sink), [message("иван@example.org")]))[0]
        received = sink.messages[0]
    assert isinstance(result, Sent)
    assert received.rcpt_tos == ["иван@example.org"]
    assert "SMTPUTF8" in received.mail_options
    assert received.message["To"] == "иван@example.org"


# --- the connection pool -----------------------------------------------------------------


def test_concurrent_sends_share_at_most_pool_size_connections() -> None:
    with SmtpSink() as sink:
        results = run(send_all(adapter_for(sink, pool_size=3), [message() for _ in range(60)]))
        assert all(isinstance(r, Sent) for r in results)
        assert sink.count == 60
        assert 1 <= sink.connections <= 3
        assert len({m.connection for m in sink.messages}) == sink.connections


def test_sequential_sends_reuse_one_connection() -> None:
    with SmtpSink() as sink:
        run(send_one_by_one(adapter_for(sink), [message() for _ in range(10)]))
        assert sink.connections == 1


def test_a_connection_is_replaced_after_max_messages_per_connection() -> None:
    with SmtpSink() as sink:
        adapter = adapter_for(sink, max_messages_per_connection=4)
        results = run(send_one_by_one(adapter, [message() for _ in range(10)]))
        assert all(isinstance(r, Sent) for r in results)
        assert sink.connections == 3
        assert [m.connection for m in sink.messages] == [1] * 4 + [2] * 4 + [3] * 2


def test_a_connection_the_server_dropped_is_reopened_and_the_message_sent() -> None:
    # The server closes a connection, without a reply, when it is reused after 2 messages.
    with SmtpSink(drop_after_messages=2) as sink:
        results = run(send_one_by_one(adapter_for(sink), [message() for _ in range(5)]))
        assert [type(r) for r in results] == [Sent] * 5
        assert sink.count == 5
        assert [m.connection for m in sink.messages] == [1, 1, 2, 2, 3]


def test_a_server_hanging_up_mid_transaction_is_retry_later_and_the_pool_recovers() -> None:
    with SmtpSink(hang_up={"hangup@example.org"}) as sink:
        adapter = adapter_for(sink)
        results = run(
            send_one_by_one(adapter, [message(), message("hangup@example.org"), message()])
        )
        assert isinstance(results[0], Sent)
        assert isinstance(results[1], RetryLater)
        assert results[1].code == "smtp_disconnected"
        assert isinstance(results[2], Sent)
        assert sink.count == 2


def test_a_cancelled_send_leaves_the_pool_usable_on_a_fresh_connection() -> None:
    with SmtpSink(delay_seconds=1.0) as sink:
        adapter = adapter_for(sink)

        async def scenario() -> Any:
            task = asyncio.create_task(adapter.send(message()))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            sink.delay_seconds = 0.0
            return await send_one_by_one(adapter, [message()])

        (result,) = run(scenario())
        assert isinstance(result, Sent)
        assert sink.count == 1
        assert sink.connections == 2


def test_the_adapter_works_across_event_loops() -> None:
    with SmtpSink() as sink:
        adapter = adapter_for(sink)
        assert isinstance(run(adapter.send(message())), Sent)
        assert isinstance(run(adapter.send(message())), Sent)
        run(adapter.aclose())
        assert sink.count == 2


# --- TLS and authentication --------------------------------------------------------------


def test_starttls_with_login() -> None:
    with SmtpSink(starttls=True, auth=("shop", "s3cret")) as sink:
        adapter = adapter_for(
            sink, security="starttls", username="shop", password="s3cret", validate_certs=False
        )
        results = run(send_one_by_one(adapter, [message(), message()]))
        assert all(isinstance(r, Sent) for r in results)
        received = sink.messages
    assert all(m.tls for m in received)
    assert all(m.login == "shop" for m in received)


def test_a_wrong_password_is_retry_later_not_a_failed_message() -> None:
    with SmtpSink(starttls=True, auth=("shop", "s3cret")) as sink:
        adapter = adapter_for(
            sink, security="starttls", username="shop", password="wrong", validate_certs=False
        )
        result = run(send_one_by_one(adapter, [message()]))[0]
        assert sink.count == 0
        assert sink.failed_logins >= 1
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_auth"


def test_a_server_without_starttls_is_refused_when_starttls_is_required() -> None:
    with SmtpSink() as sink:
        result = run(send_one_by_one(adapter_for(sink, security="starttls"), [message()]))[0]
        assert sink.count == 0
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_tls"


def test_an_untrusted_certificate_is_refused_when_validating() -> None:
    with SmtpSink(starttls=True) as sink:
        adapter = adapter_for(sink, security="starttls", validate_certs=True)
        result = run(send_one_by_one(adapter, [message()]))[0]
        assert sink.count == 0
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_tls"


def test_implicit_tls() -> None:
    with SmtpSink(implicit_tls=True, auth=("shop", "s3cret")) as sink:
        adapter = adapter_for(
            sink, security="tls", username="shop", password="s3cret", validate_certs=False
        )
        result = run(send_one_by_one(adapter, [message()]))[0]
        assert isinstance(result, Sent)
        assert sink.messages[0].login == "shop"


# --- classification of faults ------------------------------------------------------------


def test_unknown_mailbox_550_is_failed_with_address_gone() -> None:
    with SmtpSink(reject={"gone@example.org"}) as sink:
        adapter = adapter_for(sink)
        results = run(send_one_by_one(adapter, [message("gone@example.org"), message()]))
        assert sink.count == 1
        # The refused transaction was reset, so the same connection carried the next one.
        assert sink.connections == 1
    gone, ok = results
    assert isinstance(gone, Failed)
    assert gone.code == "smtp_5xx"
    assert gone.address_gone
    assert "550 5.1.1" in gone.reason
    assert isinstance(ok, Sent)


def test_greylisting_451_is_retry_later_with_the_server_reply() -> None:
    with SmtpSink(defer={"grey@example.org"}) as sink:
        result = run(send_one_by_one(adapter_for(sink), [message("grey@example.org")]))[0]
        assert sink.count == 0
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_4xx"
    assert "451 4.7.1" in result.reason


def test_a_slow_server_is_retry_later_after_the_timeout() -> None:
    with SmtpSink(delay_seconds=2.0) as sink:
        adapter = adapter_for(sink, timeout_seconds=0.3)
        result = run(send_one_by_one(adapter, [message()]))[0]
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_timeout"


def test_connection_refused_is_retry_later() -> None:
    config = SmtpConfig(host="127.0.0.1", port=unused_port(), security="none", from_address=FROM)
    result = run(send_one_by_one(SmtpEmailAdapter(config), [message()]))[0]
    assert isinstance(result, RetryLater)
    assert result.code == "smtp_connect"


@pytest.mark.parametrize(
    ("code", "text", "gone"),
    [
        (550, "5.1.1 <a@example.org>: User unknown", True),
        (551, "5.1.6 User has moved", True),
        (553, "5.1.3 Bad recipient address syntax", True),
        (550, "No such user here", True),
        (550, "5.7.1 Message rejected as spam", False),
        (550, "Relaying denied", False),
        (552, "5.2.2 Mailbox full", False),
        (554, "5.7.1 Access denied", False),
    ],
)
def test_permanent_rcpt_refusals_mark_the_address_gone_only_for_mailbox_errors(
    code: int, text: str, gone: bool
) -> None:
    refused = aiosmtplib.SMTPRecipientRefused(code, text, "a@example.org")
    result = classify(aiosmtplib.SMTPRecipientsRefused([refused]))
    assert isinstance(result, Failed)
    assert result.code == "smtp_5xx"
    assert result.address_gone is gone


def test_a_refused_message_body_is_failed_without_blaming_the_address() -> None:
    result = classify(aiosmtplib.SMTPDataError(554, "5.7.1 Message content rejected"))
    assert isinstance(result, Failed)
    assert not result.address_gone
    assert isinstance(classify(aiosmtplib.SMTPDataError(452, "4.3.1 Out of storage")), RetryLater)


# --- addresses and config ----------------------------------------------------------------


def test_normalise_address_lower_cases_the_domain_only() -> None:
    adapter = SmtpEmailAdapter(SmtpConfig(host="smtp.example.com", from_address=FROM))
    assert adapter.normalise_address("  Ivan.Petrov@Example.ORG ") == "Ivan.Petrov@example.org"
    assert adapter.normalise_address("ivan@ПРИМЕР.рф") == "ivan@пример.рф"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "empty_email"),
        ("   ", "empty_email"),
        ("ivan", "invalid_email"),
        ("ivan@", "invalid_email"),
        ("ivan@localhost", "invalid_email"),
        ("ivan..petrov@example.org", "invalid_email"),
        ("Ivan <ivan@example.org>", "invalid_email"),
        ("ivan@example.org\r\nBcc: x@example.org", "invalid_email"),
        ("ivan@exa mple.org", "invalid_email"),
    ],
)
def test_invalid_addresses_are_rejected_with_a_code(raw: str, code: str) -> None:
    adapter = SmtpEmailAdapter(SmtpConfig(host="smtp.example.com", from_address=FROM))
    with pytest.raises(InvalidAddress) as caught:
        adapter.normalise_address(raw)
    assert caught.value.code == code
    assert caught.value.reason


def test_repr_and_str_mask_the_password() -> None:
    config = SmtpConfig(
        host="smtp.example.com", username="shop", password=SecretStr("hunter2"), from_address=FROM
    )
    adapter = SmtpEmailAdapter(config)
    for text in (repr(adapter), repr(config), str(config)):
        assert "hunter2" not in text
        assert "**********" in text


def test_config_defaults_follow_the_security_mode() -> None:
    assert SmtpConfig(host="h", from_address=FROM).effective_port == 587
    assert SmtpConfig(host="h", from_address=FROM, security="tls").effective_port == 465
    assert SmtpConfig(host="h", from_address=FROM, security="none").effective_port == 25
    assert SmtpConfig(host="h", from_address=FROM).id_domain == "shop.example.com"
    assert SmtpConfig(host="h", from_address=FROM).pool_size == 4


@pytest.mark.parametrize(
    "fields",
    [
        {"from_address": "not-an-address"},
        {"from_address": FROM, "password": "x"},
        {"from_address": FROM, "pool_size": 0},
        {"from_address": FROM, "security": "ssl"},
        {"from_address": FROM, "from_name": "Shop\r\nBcc: x@example.org"},
        {"from_address": FROM, "unknown_setting": 1},
    ],
)
def test_bad_configs_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SmtpConfig(host="smtp.example.com", **fields)
