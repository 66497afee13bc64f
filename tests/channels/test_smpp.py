"""The SMPP adapter against a fake SMSC speaking SMPP 3.4 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    Receipt,
    RetryLater,
    Sent,
)
from otklik.channels.smpp import SmppConfig, SmppSmsAdapter, parse_receipt_text
from tests.support.fake_smsc import FakeSmsc

T = TypeVar("T")

LONG_RU = (
    "Здравствуйте, Анна! Ваш заказ №10245 собран и передан в доставку. Курьер привезёт его "
    "завтра с 10:00 до 14:00. Сумма к оплате — 3 490 ₽. Если время неудобно, ответьте на это "
    "сообщение или позвоните нам 😀"
)


@pytest.fixture
def smsc() -> Iterator[FakeSmsc]:
    with FakeSmsc() as fake:
        yield fake


def make_adapter(smsc: FakeSmsc, **overrides: Any) -> SmppSmsAdapter:
    raw: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "otklik",
        "password": "secret",
        "source_addr": "Shop",
        "timeout_seconds": 2,
        **overrides,
    }
    return SmppSmsAdapter(SmppConfig.model_validate(raw))


def sms(text: str, to: str = "+79123456789") -> OutboundMessage:
    return OutboundMessage(message_id=uuid.uuid4(), kind=ChannelKind.SMS, to=to, text=text)


def run(adapter: SmppSmsAdapter, body: Callable[[], Awaitable[T]]) -> T:
    async def scenario() -> T:
        try:
            return await body()
        finally:
            await adapter.aclose()

    return asyncio.run(scenario())


def wait_receipts(adapter: SmppSmsAdapter, count: int, timeout: float = 5.0) -> list[Receipt]:
    found: list[Receipt] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += adapter.drain_receipts()
        time.sleep(0.02)
    return found


def test_a_latin_text_goes_as_one_gsm7_submit(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms("Your code is 4821. [Shop] {ok} €")))
    assert isinstance(result, Sent)
    assert len(smsc.submits) == 1
    submit = smsc.submits[0]
    assert (submit.data_coding, submit.esm_class, submit.registered_delivery) == (0, 0, 1)
    assert (submit.destination_addr, submit.dest_addr_ton) == ("79123456789", 1)
    assert (submit.source_addr, submit.source_addr_ton) == ("Shop", 5)
    assert smsc.messages[0].text == "Your code is 4821. [Shop] {ok} €"
    assert result.provider_message_id == submit.message_id
    assert smsc.binds[0].accepted and smsc.binds[0].system_id == "otklik"


def test_a_long_cyrillic_text_is_concatenated_and_reassembles_identically(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms(LONG_RU)))
    assert isinstance(result, Sent)
    assert len(smsc.submits) == 4
    assert all(s.data_coding == 8 and s.esm_class & 0x40 for s in smsc.submits)
    assert not smsc.errors
    [message] = smsc.messages
    assert message.text == LONG_RU
    assert result.provider_message_id == message.message_ids[0]
    assert all(mid in result.detail for mid in message.message_ids)


def test_many_sends_share_one_bound_session(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)

    async def body() -> list[Any]:
        return list(await asyncio.gather(*(adapter.send(sms(f"hello {i}")) for i in range(30))))

    results = run(adapter, body)
    assert all(isinstance(r, Sent) for r in results)
    assert len({r.provider_message_id for r in results}) == 30
    assert sorted(m.text for m in smsc.messages) == sorted(f"hello {i}" for i in range(30))
    assert len(smsc.binds) == 1


def test_delivery_receipts_arrive_and_carry_the_message_id(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)

    async def body() -> tuple[Any, list[Receipt]]:
        result = await adapter.send(sms("receipt please"))
        receipts = await asyncio.to_thread(wait_receipts, adapter, 1)
        return result, receipts

    result, receipts = run(adapter, body)
    assert isinstance(result, Sent)
    assert [(r.status, r.provider_message_id) for r in receipts] == [
        ("delivered", result.provider_message_id)
    ]
    assert receipts[0].occurred_at is not None
    assert smsc.wait_for(lambda s: len(s.receipt_acks) == 1)


def test_an_undeliverable_receipt_is_a_permanent_failure() -> None:
    with FakeSmsc(receipt_stat="UNDELIV") as smsc:
        adapter = make_adapter(smsc)

        async def body() -> list[Receipt]:
            await adapter.send(sms("nobody home"))
            return await asyncio.to_thread(wait_receipts, adapter, 1)

        [receipt] = run(adapter, body)
    assert (receipt.status, receipt.permanent) == ("failed", True)


def test_no_receipts_are_requested_when_registered_delivery_is_off(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc, registered_delivery=False)
    assert isinstance(run(adapter, lambda: adapter.send(sms("quiet"))), Sent)
    assert smsc.submits[0].registered_delivery == 0
    assert wait_receipts(adapter, 1, timeout=0.3) == []


def test_receipt_text_parses_to_typed_receipts() -> None:
    delivered = parse_receipt_text(
        "id:0123456789 sub:001 dlvrd:001 submit date:2401151230 done date:2401151231 "
        "stat:DELIVRD err:000 text:Your code is 4821"
    )
    assert delivered is not None
    assert (delivered.status, delivered.provider_message_id) == ("delivered", "0123456789")
    assert delivered.occurred_at is not None and delivered.occurred_at.isoformat().startswith(
        "2024-01-15T12:31"
    )
    expired = parse_receipt_text("id:77 sub:001 dlvrd:000 stat:EXPIRED err:027 Text:x")
    assert expired is not None
    assert (expired.status, expired.permanent, expired.reason) == (
        "failed",
        False,
        "EXPIRED err:027",
    )
    rejected = parse_receipt_text("id:78 stat:REJECTD err:001")
    assert rejected is not None and rejected.permanent
    assert parse_receipt_text("id:79 stat:ENROUTE") is None
    with pytest.raises(ValueError):
        parse_receipt_text("hello, this is a reply from a person")


def test_throttling_asks_for_a_retry(smsc: FakeSmsc) -> None:
    smsc.statuses.append(0x58)
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms("too fast")))
    assert isinstance(result, RetryLater)
    assert result.code == "smpp_throttled"


def test_a_full_queue_asks_for_a_retry(smsc: FakeSmsc) -> None:
    smsc.statuses.append(0x14)
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms("queue")))
    assert isinstance(result, RetryLater) and result.code == "smpp_queue_full"


def test_an_invalid_destination_fails_and_marks_the_address_gone(smsc: FakeSmsc) -> None:
    smsc.invalid_destinations.add("79123456789")
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms("hi")))
    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("smpp_invalid_destination", True)


def test_another_refusal_is_a_plain_permanent_failure(smsc: FakeSmsc) -> None:
    smsc.statuses.append(0x0A)  # ESME_RINVSRCADR: the sender name is not allowed
    adapter = make_adapter(smsc)
    result = run(adapter, lambda: adapter.send(sms("hi")))
    assert isinstance(result, Failed)
    assert (result.code, result.address_gone) == ("smpp_rejected", False)


def test_a_dropped_connection_retries_then_the_next_send_rebinds(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)

    async def body() -> tuple[Any, Any, Any]:
        first = await adapter.send(sms("before"))
        smsc.drop_next_submits = 1
        dropped = await adapter.send(sms("during"))
        after = await adapter.send(sms("after"))
        return first, dropped, after

    first, dropped, after = run(adapter, body)
    assert isinstance(first, Sent)
    assert isinstance(dropped, RetryLater) and dropped.code == "smpp_connection_lost"
    assert isinstance(after, Sent)
    assert len(smsc.binds) == 2
    assert [m.text for m in smsc.messages] == ["before", "after"]


def test_a_session_cut_while_idle_is_rebound_on_next_send(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)

    async def body() -> list[Any]:
        results = [await adapter.send(sms("one"))]
        smsc.drop_connections()
        await asyncio.sleep(0.5)  # the listener notices the cut
        results.append(await adapter.send(sms("two")))
        return results

    results = run(adapter, body)
    assert all(isinstance(r, Sent) for r in results)
    assert len(smsc.binds) == 2


def test_a_hung_smsc_is_noticed_by_enquire_link_and_rebound(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc, enquire_link_seconds=0.1, timeout_seconds=0.3)

    async def body() -> list[Any]:
        results = [await adapter.send(sms("one"))]
        smsc.mute = True
        await asyncio.sleep(1.0)  # idle probe goes out, no answer within the timeout
        smsc.mute = False
        results.append(await adapter.send(sms("two")))
        return results

    results = run(adapter, body)
    assert all(isinstance(r, Sent) for r in results)
    assert len(smsc.binds) == 2


def test_a_slow_smsc_answer_is_a_timeout_retry(smsc: FakeSmsc) -> None:
    smsc.response_delay = 1.0
    adapter = make_adapter(smsc, timeout_seconds=0.3)
    result = run(adapter, lambda: adapter.send(sms("slow")))
    assert isinstance(result, RetryLater) and result.code == "smpp_timeout"


def test_a_wrong_password_is_a_bind_failure_not_a_retry(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc, password="wrong")
    result = run(adapter, lambda: adapter.send(sms("hi")))
    assert isinstance(result, Failed)
    assert result.code == "smpp_bind_failed"
    assert smsc.binds[0].accepted is False
    assert smsc.submits == []


def test_an_unreachable_smsc_asks_for_a_retry(smsc: FakeSmsc) -> None:
    port = smsc.port
    smsc.stop()
    adapter = make_adapter(smsc, port=port)
    result = run(adapter, lambda: adapter.send(sms("hi")))
    assert isinstance(result, RetryLater) and result.code == "smpp_connect_failed"


def test_phone_numbers_are_normalised_to_e164_in_the_default_region(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)
    assert adapter.normalise_address("8 (912) 345-67-89") == "+79123456789"
    kz = make_adapter(smsc, default_region="KZ")
    assert kz.normalise_address("8 701 234 5678") == "+77012345678"
    with pytest.raises(InvalidAddress) as err:
        adapter.normalise_address("call me maybe")
    assert err.value.code == "invalid_phone"


def test_repr_and_config_mask_the_password(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc, password="s3cr3t")
    assert "s3cr3t" not in repr(adapter)
    assert "s3cr3t" not in str(adapter.config)
    assert "**********" in repr(adapter)


def test_unknown_config_keys_are_rejected(smsc: FakeSmsc) -> None:
    with pytest.raises(ValueError):
        make_adapter(smsc, pasword="typo")


@pytest.mark.parametrize(
    ("source", "ton", "npi", "esm_class", "data_coding", "receipts", "payload"),
    [
        ("Shop", 5, 0, 0, 0, 1, b"Your code is 4821"),
        ("79001234567", 1, 1, 0x40, 8, 0, bytes((5, 0, 3, 7, 2, 1)) + "Привет".encode("utf-16-be")),
        ("Shop", 5, 0, 0, 8, 1, "Ж".encode("utf-16-be") * 70),
        ("Café", 5, 0, 0, 0, 1, b"Bonjour"),
    ],
)
def test_our_submit_sm_bytes_are_the_ones_smpplib_would_write(
    source: str, ton: int, npi: int, esm_class: int, data_coding: int, receipts: int, payload: bytes
) -> None:
    from smpplib import client as smpp_client
    from smpplib import smpp

    from otklik.channels.smpp import encode_submit_sm

    fields = {
        "source_addr_ton": ton,
        "source_addr_npi": npi,
        "source_addr": source,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "79123456789",
        "registered_delivery": receipts,
        "esm_class": esm_class,
        "data_coding": data_coding,
        "short_message": payload,
    }
    client = smpp_client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)
    reference = smpp.make_pdu("submit_sm", client=client, **fields)
    assert encode_submit_sm(reference.sequence, fields) == reference.generate()


def test_many_sends_in_flight_share_one_bind_and_each_part_goes_once(smsc: FakeSmsc) -> None:
    adapter = make_adapter(smsc)
    texts = [f"Заказ №{n} готов" if n % 2 else f"{LONG_RU} #{n}" for n in range(40)]

    async def all_at_once() -> list[Any]:
        return list(
            await asyncio.gather(
                *(adapter.send(sms(t, to=f"+7912345{n:04d}")) for n, t in enumerate(texts))
            )
        )

    results = run(adapter, all_at_once)
    assert all(isinstance(r, Sent) for r in results), results
    assert len(smsc.binds) == 1
    assert smsc.wait_for(lambda s: len(s.messages) == len(texts))
    assert sorted(m.text for m in smsc.messages) == sorted(texts)
    from otklik.channels.sms_parts import split_parts

    ids = [s.message_id for s in smsc.submits]
    assert len(ids) == len(set(ids)) == sum(len(split_parts(t)) for t in texts)


class _TightSocket:
    """A socket whose buffer takes only the head of a PDU, or nothing, without waiting."""

    def __init__(self, sock: Any, takes: int) -> None:
        self._sock, self._takes = sock, takes

    def send(self, data: bytes) -> int:
        if self._takes == 0:
            raise BlockingIOError
        return int(self._sock.send(data[: self._takes]))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.mark.parametrize("takes", [0, 5], ids=["buffer full", "buffer takes a head"])
def test_a_submit_the_socket_cannot_take_whole_at_once_still_goes_whole(
    smsc: FakeSmsc, takes: int
) -> None:
    adapter = make_adapter(smsc)
    link = adapter._bound_link()
    link._nowait = _TightSocket(link._nowait, takes)

    async def both() -> list[Any]:
        return list(await asyncio.gather(adapter.send(sms(LONG_RU)), adapter.send(sms("Hi"))))

    results = run(adapter, both)
    assert all(isinstance(r, Sent) for r in results), results
    assert smsc.wait_for(lambda s: len(s.messages) == 2)
    assert sorted(m.text for m in smsc.messages) == sorted([LONG_RU, "Hi"])
    assert smsc.errors == []
