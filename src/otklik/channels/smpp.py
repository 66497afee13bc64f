"""SMS over SMPP 3.4 (smpplib): one bound transceiver per adapter, receipts by deliver_sm.

The adapter keeps ONE `bind_transceiver` session. A dedicated listener thread reads every PDU
the SMSC sends: `submit_sm_resp` completes the future of the submit with the same sequence
number, `deliver_sm` receipts are parsed and kept until `drain_receipts()`, `enquire_link` is
answered, and an idle link is probed with our own `enquire_link`. `send()` writes each part
straight from the event loop when the socket takes it without waiting (else from a worker
thread) and awaits its response on the loop, so many sends share the link.

Results:
- the text goes as GSM-7 (data_coding 0, unpacked septets) when it fits the alphabet, else
  UCS-2 (data_coding 8); long texts as concatenated parts with an 8-bit-reference UDH;
- `Sent.provider_message_id` is the FIRST part's SMSC message id (receipts for it stand for
  the message); `Sent.detail` lists every part's id. Parts go one after another, each waiting
  for its response; if a later part is refused, the whole message is classified by that
  refusal and a retry resends every part (the phone drops the orphaned fragment);
- ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RSUBMITFAIL, no response in time and a
  dropped link are RetryLater (the next send binds again); ESME_RINVDSTADR is
  Failed(address_gone=True); any other status is Failed("smpp_rejected");
- a bind refused for credentials (ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RINVSYSID) is
  Failed("smpp_bind_failed"): retrying cannot help until someone fixes the config; other bind
  faults and refused connections are RetryLater.

Receipts live in memory between the ack to the SMSC and `drain_receipts()`; a process that dies
in between loses them (the message then simply stays "sent").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import select
import socket
import struct
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from pydantic import Field, SecretStr
from smpplib import client as smpp_client
from smpplib import consts, exceptions, smpp

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
from otklik.channels.sms_parts import (
    MAX_PARTS,
    encode_gsm7,
    encode_ucs2,
    encoding_of,
    normalise_phone,
    split_parts,
)

log = logging.getLogger("otklik.channels.smpp")
# smpplib logs every PDU in hex at DEBUG, the bind's password included: keep that quiet.
logging.getLogger("otklik.channels.smpp.wire").setLevel(logging.INFO)

ESM_UDHI: Final = 0x40
ESM_RECEIPT: Final = 0x04
BIND_REFUSED: Final = {0x0D, 0x0E, 0x0F}
RETRYABLE: Final = {
    0x08: "smpp_system_error",
    0x14: "smpp_queue_full",
    0x45: "smpp_submit_failed",
    0x58: "smpp_throttled",
}
STATUS_INVALID_DEST: Final = 0x0B
STATUS_NOT_BOUND: Final = 0x04
# message_state TLV values, for SMSCs that put the state there and not in the text.
TLV_STATES: Final = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 7: "UNKNOWN",
                     8: "REJECTD"}  # fmt: skip
# A receipt that reports these has reached its end; ENROUTE/ACCEPTD are not final.
FAILED_STATES: Final = {"UNDELIV", "REJECTD", "EXPIRED", "DELETED", "UNKNOWN"}
# Only these mean the handset can never get it (unknown subscriber, barred): the pipeline
# suppresses the number. EXPIRED/DELETED/UNKNOWN may pass (phone off for the validity period).
PERMANENT_STATES: Final = {"UNDELIV", "REJECTD"}
KEEP_RECEIPTS: Final = 100_000
SUBMIT_SM: Final = 0x00000004


class SmppConfig(ChannelConfig):
    host: str
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: SecretStr = Field(max_length=8)
    system_type: str = Field(default="", max_length=12)
    # Sender: an alphanumeric name ('Shop') or a number.
    source_addr: str = Field(min_length=1, max_length=20)
    # None: 5/0 (alphanumeric) when the sender has letters, else 1/1 (international, E.164).
    source_addr_ton: int | None = Field(default=None, ge=0, le=6)
    source_addr_npi: int | None = Field(default=None, ge=0, le=18)
    registered_delivery: bool = True
    enquire_link_seconds: float = Field(default=30.0, gt=0)
    default_region: str = Field(default="RU", min_length=2, max_length=2)


def encode_submit_sm(sequence: int, fields: dict[str, Any]) -> bytes:
    """One submit_sm PDU with the fields `_submit_fields` sets, the rest at their defaults.

    Written here rather than through smpplib's `make_pdu(...).generate()`, which builds a
    generic Command object per PDU: a quarter of the sender's GIL-holding time per part at a
    thousand SMS a second. The bytes are the same, addresses in latin-1 as smpplib writes
    them (tests/channels/test_smpp.py compares).
    """
    message: bytes = fields["short_message"]
    body = b"".join(
        (
            b"\x00",  # service_type: the SMSC's default
            bytes((fields["source_addr_ton"], fields["source_addr_npi"])),
            fields["source_addr"].encode("latin-1") + b"\x00",
            bytes((fields["dest_addr_ton"], fields["dest_addr_npi"])),
            fields["destination_addr"].encode("latin-1") + b"\x00",
            # esm_class, protocol_id, priority_flag, schedule_delivery_time (now) and
            # validity_period (the SMSC's default) as empty C strings
            bytes((fields["esm_class"], 0, 0, 0, 0)),
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
            bytes((fields["registered_delivery"], 0, fields["data_coding"], 0, len(message))),
            message,
        )
    )
    return struct.pack(">IIII", 16 + len(body), SUBMIT_SM, 0, sequence) + body


class _LinkDown(Exception):
    """The session ended (dropped, unbound, or a probe went unanswered)."""


class _BindError(Exception):
    def __init__(self, result: RetryLater | Failed) -> None:
        super().__init__(result.reason)
        self.result = result


class _Link:
    """One bound transceiver session and its listener thread."""

    def __init__(self, config: SmppConfig, on_deliver: Any) -> None:
        self.config = config
        self._on_deliver = on_deliver
        self.client = smpp_client.Client(
            config.host,
            config.port,
            timeout=config.timeout_seconds,
            logger_name="otklik.channels.smpp.wire",
            allow_unknown_opt_params=True,
        )
        self._write = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._stop = threading.Event()
        self.alive = False
        self._last_rx = time.monotonic()
        self._probe_at: float | None = None
        self._nowait: socket.socket | None = None
        self._thread = threading.Thread(target=self._listen, name="smpp-listener", daemon=True)

    def open(self) -> None:
        try:
            self.client.connect()
            self.client.bind_transceiver(
                system_id=self.config.system_id,
                password=self.config.password.get_secret_value(),
                system_type=self.config.system_type,
            )
        except exceptions.PDUError as exc:
            self._close_socket()
            status = int(exc.args[1]) if len(exc.args) > 1 else -1
            reason = f"bind refused: {exc.args[0]}"
            if status in BIND_REFUSED:
                raise _BindError(Failed("smpp_bind_failed", reason)) from None
            raise _BindError(RetryLater("smpp_bind_retry", reason)) from None
        except (exceptions.ConnectionError, OSError) as exc:
            self._close_socket()
            reason = f"cannot reach {self.config.host}:{self.config.port}: {exc or 'no answer'}"
            raise _BindError(RetryLater("smpp_connect_failed", reason)) from None
        sock = self.client._socket
        assert sock is not None
        # smpplib's socket has a timeout, and a send on such a socket waits for room (up to
        # the timeout) even with MSG_DONTWAIT. A second handle on the same connection with
        # no timeout sends what fits at once or raises BlockingIOError; the listener's
        # reads keep their timeout.
        self._nowait = socket.socket(fileno=os.dup(sock.fileno()))
        self._nowait.setblocking(False)
        self.alive = True
        self._thread.start()

    def submit(self, **fields: Any) -> tuple[int, Future[Any]]:
        future: Future[Any] = Future()
        with self._write:
            if not self.alive:
                raise _LinkDown("the SMPP session is closed")
            sequence, sock = self.client.next_sequence(), self.client._socket
            if sock is None:
                raise _LinkDown("the SMPP session is closed")
            self._pending[sequence] = future
            try:
                sock.sendall(encode_submit_sm(sequence, fields))
            except OSError as exc:
                self._pending.pop(sequence, None)
                raise _LinkDown(str(exc) or "write failed") from None
        return sequence, future

    def submit_nowait(self, **fields: Any) -> tuple[int, Future[Any], bytes] | None:
        """Write a submit from the event loop without blocking it; None when that could block.

        Handing every part to a worker thread cost more than the write itself (the thread
        hop and the pool threads' GIL traffic: 15 % of the sender's CPU, 10 % of its rate in
        bench/send's smpp stage). A PDU is a few hundred bytes, so the socket buffer almost
        always takes it whole; when it takes only a head, the third value is the tail, still
        owed under the write lock, which `finish_write` sends from a thread and releases.
        """
        if not self._write.acquire(blocking=False):
            return None
        owed = b""
        try:
            if not self.alive:
                raise _LinkDown("the SMPP session is closed")
            sequence, sock = self.client.next_sequence(), self._nowait
            if sock is None:
                raise _LinkDown("the SMPP session is closed")
            data = encode_submit_sm(sequence, fields)
            # Pending before the write: the listener may read the response before send returns.
            future: Future[Any] = Future()
            self._pending[sequence] = future
            try:
                written = sock.send(data)
            except (BlockingIOError, InterruptedError):
                self._pending.pop(sequence, None)
                return None  # nothing went out: the caller's thread path writes it whole
            except OSError as exc:
                self._pending.pop(sequence, None)
                raise _LinkDown(str(exc) or "write failed") from None
            owed = data[written:]
            return sequence, future, owed
        finally:
            if not owed:
                self._write.release()

    def finish_write(self, sequence: int, owed: bytes) -> None:
        """Send the tail `submit_nowait` left owed, then free the write lock it kept."""
        try:
            sock = self.client._socket
            if sock is None:
                raise _LinkDown("the SMPP session is closed")
            sock.sendall(owed)
        except OSError as exc:
            self._pending.pop(sequence, None)
            raise _LinkDown(str(exc) or "write failed") from None
        finally:
            self._write.release()

    def forget(self, sequence: int) -> None:
        self._pending.pop(sequence, None)

    def _reply(self, command: str, sequence: int) -> None:
        with self._write:
            pdu = smpp.make_pdu(command, client=self.client)
            pdu.sequence = sequence
            self.client.send_pdu(pdu)

    def _probe(self) -> None:
        with self._write:
            self.client.send_pdu(smpp.make_pdu("enquire_link", client=self.client))
        self._probe_at = time.monotonic()

    def _listen(self) -> None:
        try:
            while not self._stop.is_set():
                sock = self.client._socket
                if sock is None:
                    break
                readable, _, _ = select.select([sock], [], [], 0.2)
                now = time.monotonic()
                if not readable:
                    if self._probe_at is not None:
                        if now - self._probe_at > self.config.timeout_seconds:
                            log.warning("SMSC did not answer enquire_link; dropping the link")
                            break
                    elif now - self._last_rx > self.config.enquire_link_seconds:
                        self._probe()
                    continue
                pdu = self.client.read_pdu()
                self._last_rx, self._probe_at = now, None
                if not self._dispatch(pdu):
                    break
        except (exceptions.ConnectionError, exceptions.PDUError, OSError, ValueError) as exc:
            if not self._stop.is_set():
                log.warning("SMPP link to %s lost: %s", self.config.host, exc or "closed")
        finally:
            self._shut()

    def _dispatch(self, pdu: Any) -> bool:
        """Act on one PDU; False ends the session."""
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack"):
            future = self._pending.pop(pdu.sequence, None)
            if future is not None:
                # InvalidStateError: the sender gave up waiting.
                with contextlib.suppress(InvalidStateError):
                    future.set_result(pdu)
        elif command == "deliver_sm":
            self._on_deliver(pdu)
            self._reply("deliver_sm_resp", pdu.sequence)
        elif command == "enquire_link":
            self._reply("enquire_link_resp", pdu.sequence)
        elif command == "unbind":
            self._reply("unbind_resp", pdu.sequence)
            return False
        elif command == "unbind_resp":
            return False
        return True

    def _shut(self) -> None:
        with self._write:
            self.alive = False
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(_LinkDown("the SMPP session ended"))
        self._close_socket()

    def _close_socket(self) -> None:
        nowait, self._nowait = self._nowait, None
        if nowait is not None:
            nowait.close()
        sock, self.client._socket = self.client._socket, None
        self.client.state = consts.SMPP_CLIENT_STATE_CLOSED
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        if self.alive:
            try:
                with self._write:
                    self.client.send_pdu(smpp.make_pdu("unbind", client=self.client))
            except (exceptions.ConnectionError, exceptions.PDUError, OSError):
                pass
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._shut()


_RECEIPT_FIELD = re.compile(
    r"(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*(.*?)"
    r"(?=\s+(?:id|sub|dlvrd|submit date|done date|stat|err|text)\s*:|$)",
    re.IGNORECASE | re.DOTALL,
)


def _receipt_time(value: str) -> datetime | None:
    # YYMMDDhhmm[ss]; the SMSC's own clock, taken as UTC since the PDU carries no zone.
    digits = value.strip()
    for fmt, size in (("%y%m%d%H%M%S", 12), ("%y%m%d%H%M", 10)):
        if len(digits) == size and digits.isdigit():
            try:
                return datetime.strptime(digits, fmt).replace(tzinfo=UTC)
            except ValueError:
                return None
    return None


def parse_receipt_text(text: str) -> Receipt | None:
    """A final receipt from the SMPP 3.4 appendix B text; None for ENROUTE/ACCEPTD.

    'id:… sub:001 dlvrd:001 submit date:2401151230 done date:2401151231 stat:DELIVRD err:000
    text:…' gives delivered; UNDELIV/REJECTD/EXPIRED/DELETED/UNKNOWN give failed, permanent
    only for UNDELIV and REJECTD. Raises ValueError when the text is not a receipt.
    """
    fields = {k.lower(): v.strip() for k, v in _RECEIPT_FIELD.findall(text.strip())}
    message_id, stat = fields.get("id"), fields.get("stat", "").upper()
    if not message_id or not stat:
        raise ValueError("not an SMPP delivery receipt: no id or stat")
    return _receipt(
        message_id, stat, fields.get("err", ""), _receipt_time(fields.get("done date", ""))
    )


def _receipt(message_id: str, stat: str, err: str, at: datetime | None) -> Receipt | None:
    if stat == "DELIVRD":
        return Receipt(status="delivered", provider_message_id=message_id, occurred_at=at)
    if stat in FAILED_STATES:
        reason = f"{stat} err:{err}" if err else stat
        return Receipt(
            status="failed",
            provider_message_id=message_id,
            permanent=stat in PERMANENT_STATES,
            reason=reason,
            occurred_at=at,
        )
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00")
    return "" if value is None else str(value)


class SmppSmsAdapter(Adapter[SmppConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.SMS
    provider: ClassVar[str] = "smpp"
    config_class: ClassVar[type[ChannelConfig]] = SmppConfig
    # Ten GSM-7 parts (10 x 153); UCS-2 texts stop at 255 parts, checked in send().
    capabilities: ClassVar[Capabilities] = Capabilities(max_body_chars=1530, rate_per_second=50)

    def __init__(self, config: SmppConfig) -> None:
        super().__init__(config)
        self._link: _Link | None = None
        self._link_lock = threading.Lock()
        self._receipts: deque[Receipt] = deque(maxlen=KEEP_RECEIPTS)
        self._receipts_lock = threading.Lock()
        self._reference = random.randrange(256)

    def normalise_address(self, raw: str) -> str:
        return normalise_phone(raw, self.config.default_region)

    def drain_receipts(self) -> list[Receipt]:
        """Receipts the SMSC sent since the last call (the pipeline polls this)."""
        with self._receipts_lock:
            items = list(self._receipts)
            self._receipts.clear()
        return items

    def _on_deliver(self, pdu: Any) -> None:
        if not (pdu.esm_class or 0) & ESM_RECEIPT:
            log.info("ignoring a mobile-originated deliver_sm from %s", _text(pdu.source_addr))
            return
        try:
            receipt = parse_receipt_text(_text(pdu.short_message or pdu.message_payload))
        except ValueError:
            receipt = None
            message_id = _text(pdu.receipted_message_id)
            stat = TLV_STATES.get(pdu.message_state or 0, "")
            if message_id and stat:
                receipt = _receipt(message_id, stat, "", None)
            else:
                log.warning("unreadable delivery receipt: %r", pdu.short_message)
        if receipt is not None:
            with self._receipts_lock:
                self._receipts.append(receipt)

    def _bound_link(self) -> _Link:
        with self._link_lock:
            if self._link is None or not self._link.alive:
                link = _Link(self.config, self._on_deliver)
                link.open()
                self._link = link
            return self._link

    def _submit_fields(self, to: str) -> dict[str, Any]:
        source = self.config.source_addr
        alpha = not source.lstrip("+").isdigit()
        ton = self.config.source_addr_ton
        npi = self.config.source_addr_npi
        return {
            "source_addr_ton": (5 if alpha else 1) if ton is None else ton,
            "source_addr_npi": (0 if alpha else 1) if npi is None else npi,
            "source_addr": source.lstrip("+"),
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": to.lstrip("+"),
            "registered_delivery": 1 if self.config.registered_delivery else 0,
        }

    def _payloads(self, text: str) -> tuple[int, list[bytes], int]:
        encoding = encoding_of(text)
        encode = encode_gsm7 if encoding == "GSM-7" else encode_ucs2
        segments = split_parts(text)
        if len(segments) == 1:
            return (0 if encoding == "GSM-7" else 8), [encode(text)], 0
        self._reference = (self._reference + 1) % 256
        total = len(segments)
        payloads = [
            bytes((5, 0, 3, self._reference, total, i)) + encode(segment)
            for i, segment in enumerate(segments, start=1)
        ]
        return (0 if encoding == "GSM-7" else 8), payloads, ESM_UDHI

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.text:
            return Failed("empty_message", "an SMS needs text")
        data_coding, payloads, esm_class = self._payloads(message.text)
        if len(payloads) > MAX_PARTS:
            return Failed("message_too_long", f"{len(payloads)} parts; at most {MAX_PARTS}")
        link = self._link
        if link is None or not link.alive:
            try:
                link = await asyncio.to_thread(self._bound_link)
            except _BindError as exc:
                return exc.result
        fields = self._submit_fields(message.to)
        ids: list[str] = []
        for payload in payloads:
            outcome = await self._submit_part(
                link,
                {
                    **fields,
                    "esm_class": esm_class,
                    "data_coding": data_coding,
                    "short_message": payload,
                },
            )
            if not isinstance(outcome, str):
                return outcome
            ids.append(outcome)
        return Sent(provider_message_id=ids[0], detail=f"{len(ids)} part(s): {','.join(ids)}")

    async def _submit_part(self, link: _Link, fields: dict[str, Any]) -> str | SendResult:
        """The part's SMSC message id, or the result that ends the send."""
        try:
            written = link.submit_nowait(**fields)
            if written is None:
                sequence, future = await asyncio.to_thread(link.submit, **fields)
            else:
                sequence, future, owed = written
                if owed:
                    # Shielded: a cancelled send must still free the write lock it holds.
                    await asyncio.shield(asyncio.to_thread(link.finish_write, sequence, owed))
        except _LinkDown as exc:
            return RetryLater("smpp_connection_lost", f"the SMPP link dropped: {exc}")
        try:
            resp = await asyncio.wait_for(
                asyncio.wrap_future(future), timeout=self.config.timeout_seconds
            )
        except TimeoutError:
            link.forget(sequence)
            return RetryLater(
                "smpp_timeout", f"no submit_sm_resp within {self.config.timeout_seconds}s"
            )
        except _LinkDown as exc:
            return RetryLater("smpp_connection_lost", f"the SMPP link dropped: {exc}")
        status = int(resp.status)
        if status == consts.SMPP_ESME_ROK and resp.command == "submit_sm_resp":
            return _text(resp.message_id)
        description = consts.DESCRIPTIONS.get(status, "unknown status")
        reason = f"SMSC answered 0x{status:08x} ({description})"
        if status in RETRYABLE:
            return RetryLater(RETRYABLE[status], reason)
        if status == STATUS_NOT_BOUND:
            await asyncio.to_thread(link.close)
            return RetryLater("smpp_connection_lost", reason)
        if status == STATUS_INVALID_DEST:
            return Failed("smpp_invalid_destination", reason, address_gone=True)
        return Failed("smpp_rejected", reason)

    async def aclose(self) -> None:
        with self._link_lock:
            link, self._link = self._link, None
        if link is not None:
            await asyncio.to_thread(link.close)
