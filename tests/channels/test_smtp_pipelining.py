"""SMTP PIPELINING (RFC 2920): one round trip for the envelope when the server offers it, and
every outcome classified exactly as on a lock-step server.

The server is tests/support/fast_smtp_sink.py, which answers pipelined commands the way
Postfix does and can leave PIPELINING out of its EHLO: each fault scenario runs on both.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from otklik.channels.base import ChannelKind, Failed, OutboundMessage, RetryLater, Sent
from otklik.channels.smtp import SmtpConfig, SmtpEmailAdapter
from otklik.channels.smtp_pipelining import Wire
from tests.support.fast_smtp_sink import FastSmtpSink, Faults

FROM = "news@shop.example.com"


def adapter_for(sink: FastSmtpSink, **overrides: Any) -> SmtpEmailAdapter:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "none",
        "from_address": FROM,
        "timeout_seconds": 5,
        "pool_size": 4,
    }
    settings.update(overrides)
    return SmtpEmailAdapter(SmtpConfig(**settings))


def message(to: str = "ivan@example.org") -> OutboundMessage:
    return OutboundMessage(
        uuid.uuid4(),
        ChannelKind.EMAIL,
        to,
        "Корзина ждёт.\n.a line that starts with a dot\n",
        "Корзина",
        "<p>" + "Товар со скидкой " * 3000 + "</p>",
    )


def one_by_one(adapter: SmtpEmailAdapter, messages: list[OutboundMessage]) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return [await adapter.send(m) for m in messages]
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def together(adapter: SmtpEmailAdapter, messages: list[OutboundMessage]) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return list(await asyncio.gather(*(adapter.send(m) for m in messages)))
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def outcome(result: Any) -> tuple[Any, ...]:
    """What the pipeline acts on: the kind, code, reason and whether the address is gone."""
    if isinstance(result, Sent):
        return ("sent", result.provider_message_id)
    gone = getattr(result, "address_gone", None)
    return (type(result).__name__, result.code, result.reason, gone)


def test_a_pipelining_server_gets_the_envelope_in_one_write_on_one_connection() -> None:
    sent = [message(f"u{n}@example.org") for n in range(20)]
    with FastSmtpSink() as sink:
        results = one_by_one(adapter_for(sink), sent)
        stats = sink.stats
    assert [type(r) for r in results] == [Sent] * 20
    assert stats.messages == 20
    assert stats.pipelined == 20
    assert stats.connections == 1
    assert sorted(stats.ids) == sorted(f"<{m.message_id}@shop.example.com>".encode() for m in sent)


def test_without_pipelining_in_ehlo_the_adapter_goes_lock_step() -> None:
    with FastSmtpSink(Faults(pipelining=False)) as sink:
        results = one_by_one(adapter_for(sink), [message(), message()])
        stats = sink.stats
    assert [type(r) for r in results] == [Sent, Sent]
    assert stats.messages == 2
    assert stats.pipelined == 0


SCENARIOS = [
    pytest.param(Faults(reject=frozenset({"gone@example.org"})), "gone@example.org", id="550"),
    pytest.param(Faults(defer=frozenset({"grey@example.org"})), "grey@example.org", id="451"),
    pytest.param(
        Faults(reject_data=frozenset({"spam@example.org"})), "spam@example.org", id="data-554"
    ),
]


@pytest.mark.parametrize(("faults", "refused"), SCENARIOS)
def test_refusals_are_classified_as_on_a_lock_step_server_and_the_session_goes_on(
    faults: Faults, refused: str
) -> None:
    seen = {}
    for pipelining in (True, False):
        batch = [message(), message(refused), message()]
        with FastSmtpSink(replace(faults, pipelining=pipelining)) as sink:
            results = one_by_one(adapter_for(sink), batch)
            stats = sink.stats
        # The refused transaction was reset, so the same connection carried the next one.
        assert stats.connections == 1
        assert stats.messages == 2
        assert stats.recipients[refused.encode()] == 0
        assert isinstance(results[0], Sent) and isinstance(results[2], Sent)
        seen[pipelining] = outcome(results[1])
    assert seen[True] == seen[False]
    kind, code, reason, gone = seen[True]
    assert code == "smtp_5xx" if kind == "Failed" else code == "smtp_4xx"
    assert gone is (None if kind == "RetryLater" else refused == "gone@example.org")
    assert reason.split(": ", 1)[1][:3] in {"550", "451", "554"}


def test_a_server_hanging_up_at_rcpt_is_retry_later_as_on_a_lock_step_server() -> None:
    seen = {}
    for pipelining in (True, False):
        faults = Faults(pipelining=pipelining, hang_up=frozenset({"hangup@example.org"}))
        batch = [message(), message("hangup@example.org"), message()]
        with FastSmtpSink(faults) as sink:
            results = one_by_one(adapter_for(sink), batch)
            stats = sink.stats
        assert [type(r) for r in results] == [Sent, RetryLater, Sent]
        assert results[1].code == "smtp_disconnected"
        assert stats.messages == 2
        # A pooled session that breaks is tried once more on a fresh one (it may have been
        # closed while idle), which this server hangs up too; the third message needs a third.
        seen[pipelining] = (outcome(results[1]), stats.connections)
    assert seen[True] == seen[False]
    assert seen[True][1] == 3


def test_a_421_and_a_closed_connection_at_rcpt_is_the_same_retry_as_in_lock_step() -> None:
    seen = {}
    for pipelining in (True, False):
        faults = Faults(pipelining=pipelining, shut=frozenset({"busy@example.org"}))
        with FastSmtpSink(faults) as sink:
            results = one_by_one(adapter_for(sink), [message("busy@example.org"), message()])
            stats = sink.stats
        assert isinstance(results[1], Sent)
        seen[pipelining] = (outcome(results[0]), stats.connections, stats.messages)
    assert seen[True] == seen[False]
    (kind, code, reason, _), connections, messages = seen[True]
    assert (kind, code, connections, messages) == ("RetryLater", "smtp_4xx", 2, 1)
    assert "421 4.7.0" in reason


@pytest.mark.parametrize("noticed", ["before_use", "on_use"])
def test_a_session_the_server_closed_while_idle_is_replaced_and_the_message_sent_once(
    noticed: str,
) -> None:
    with FastSmtpSink() as sink:
        adapter = adapter_for(sink)

        async def run() -> list[Any]:
            first = await adapter.send(message())
            sink.hang_up_idle()
            if noticed == "before_use":
                await asyncio.sleep(0.2)  # the loop sees the close before the next send
            else:
                time.sleep(0.2)  # the pooled session still looks open when the send takes it
            second = await adapter.send(message())
            await adapter.aclose()
            return [first, second]

        results = asyncio.run(run())
        stats = sink.stats
    assert [type(r) for r in results] == [Sent, Sent]
    assert stats.messages == 2 and len(stats.ids) == 2
    if noticed == "before_use":
        assert stats.connections == 2


def test_a_server_that_stops_answering_is_retry_later_after_the_timeout() -> None:
    with FastSmtpSink(Faults(stall=frozenset({"slow@example.org"}))) as sink:
        adapter = adapter_for(sink, timeout_seconds=0.3)
        started = time.monotonic()
        results = one_by_one(adapter, [message("slow@example.org"), message()])
        stats = sink.stats
    assert time.monotonic() - started < 3
    assert isinstance(results[0], RetryLater)
    assert results[0].code == "smtp_timeout"
    # The stalled session was not reused: the next message went on a fresh one.
    assert isinstance(results[1], Sent)
    assert stats.connections == 2


def test_many_concurrent_sends_with_refusals_deliver_each_accepted_message_exactly_once() -> None:
    faults = Faults(
        reject=frozenset({"gone@example.org"}), reject_data=frozenset({"spam@example.org"})
    )
    batch = [
        message(
            ["ok@example.org", "gone@example.org", "spam@example.org"][n % 3]
            if n % 4
            else f"u{n}@example.org"
        )
        for n in range(120)
    ]
    with FastSmtpSink(faults) as sink:
        results = together(adapter_for(sink, pool_size=8), batch)
        stats = sink.stats
    expected_sent = [m for m in batch if m.to not in ("gone@example.org", "spam@example.org")]
    assert sum(isinstance(r, Sent) for r in results) == len(expected_sent)
    for sent, result in zip(batch, results, strict=True):
        assert isinstance(result, Sent) is (sent in expected_sent)
    assert stats.messages == len(expected_sent)
    assert sorted(stats.ids) == sorted(
        f"<{m.message_id}@shop.example.com>".encode() for m in expected_sent
    )
    assert stats.connections <= 8
    assert stats.pipelined == 120


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None
        self.written: list[bytes] = []

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))


class _Client:
    def __init__(self) -> None:
        self.transport = _Transport()

    def supports_extension(self, name: str) -> bool:
        return name == "size"


def test_replies_are_read_in_order_however_the_packets_split_them() -> None:
    replies = (
        b"250 2.1.0 Ok\r\n250-2.1.5 first line\r\n250 2.1.5 second line\r\n354 go ahead\r\n"
        b"250 2.0.0 Ok: queued as 12345\r\n"
    )

    async def run(chunk: int) -> str:
        client = _Client()
        wire = Wire(client)  # type: ignore[arg-type]
        assert client.transport.protocol is wire
        loop = asyncio.get_running_loop()
        for start in range(0, len(replies), chunk):
            loop.call_soon(wire.data_received, replies[start : start + chunk])
        reply = await wire.send(FROM, "ivan@example.org", b"Subject: x\r\n\r\n.hi\r\n", [], 5)
        envelope, body = client.transport.written
        assert envelope == (
            b"MAIL FROM:<news@shop.example.com> size=19\r\nRCPT TO:<ivan@example.org>\r\nDATA\r\n"
        )
        assert body == b"Subject: x\r\n\r\n..hi\r\n.\r\n"
        return reply

    for chunk in (1, 3, 7, 200):
        assert asyncio.run(run(chunk)) == "2.0.0 Ok: queued as 12345"


# --- against aiosmtpd, which parses what it receives, with TLS and AUTH --------------------


def test_a_pipelined_message_over_starttls_with_login_arrives_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.smtp_sink import SmtpSink

    transactions = []
    send = Wire.send

    async def counted(self: Wire, *args: Any) -> str:
        transactions.append(args[1])
        return await send(self, *args)

    monkeypatch.setattr(Wire, "send", counted)
    sent = [message(), message("anna@example.org")]
    with SmtpSink(pipelining=True, starttls=True, auth=("shop", "s3cret")) as sink:
        adapter = adapter_for(
            sink,
            security="starttls",
            username="shop",
            password="s3cret",
            validate_certs=False,
            from_name="Магазин",
        )
        results = one_by_one(adapter, sent)
        received = sink.messages
    assert [type(r) for r in results] == [Sent, Sent]
    assert transactions == ["ivan@example.org", "anna@example.org"]
    assert [m.rcpt_tos for m in received] == [["ivan@example.org"], ["anna@example.org"]]
    assert all(m.tls and m.login == "shop" and m.connection == 1 for m in received)
    for mail, original in zip((m.message for m in received), sent, strict=True):
        assert mail["Subject"] == "Корзина"
        assert mail["From"].addresses[0].display_name == "Магазин"
        assert mail["Message-ID"] == f"<{original.message_id}@shop.example.com>"
        plain, rich = mail.iter_parts()
        assert plain.get_content() == original.text
        assert rich.get_content().split() == (original.html or "").split()


def test_a_pipelined_session_over_implicit_tls_refusing_a_mailbox() -> None:
    from tests.support.smtp_sink import SmtpSink

    with SmtpSink(pipelining=True, implicit_tls=True, reject={"gone@example.org"}) as sink:
        adapter = adapter_for(sink, security="tls", validate_certs=False)
        results = one_by_one(adapter, [message("gone@example.org"), message()])
        count, connections = sink.count, sink.connections
    gone, ok = results
    assert isinstance(gone, Failed)
    assert (gone.code, gone.address_gone) == ("smtp_5xx", True)
    assert "550 5.1.1" in gone.reason
    assert isinstance(ok, Sent)
    assert (count, connections) == (1, 1)
