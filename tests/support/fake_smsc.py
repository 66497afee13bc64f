"""A fake SMSC speaking SMPP 3.4 over TCP on 127.0.0.1, for adapter, pipeline and bench tests.

It has its own PDU codec (not smpplib's, and not Otklik's GSM table), so a wire mistake in
the adapter shows up as a failed test rather than being mirrored. It records binds, every
submit_sm and the messages it reassembles from concatenated parts (decoded per part, so a
split escape or surrogate pair fails loudly), answers with message ids, sends deliver_sm
receipts after each accepted submit (configurable), and injects faults:

- `statuses`: a queue of command_status values for the next submit_sm responses
  (0x58 throttled, 0x14 queue full, ...);
- `invalid_destinations`: numbers always answered 0x0B (ESME_RINVDSTADR);
- `drop_next_submits`: this many coming submit_sm make it close the connection unanswered;
- `response_delay`: seconds to wait before each submit_sm_resp;
- `mute`: read and ignore every PDU (a hung SMSC whose TCP session stays up);
- a bind with another password is answered 0x0E (ESME_RINVPASWD).

Use: `with FakeSmsc() as smsc: ... smsc.port ...`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESP = 0x80000000

ESME_ROK = 0x00
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RINVPASWD = 0x0E
ESME_RINVDSTADR = 0x0B

# GSM 03.38, written out here independently of src/ (0x1B is the escape).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip


def decode_part(data: bytes, data_coding: int) -> str:
    if data_coding == 8:
        return data.decode("utf-16-be")  # strict: a split surrogate pair raises
    if data_coding == 3:
        return data.decode("latin-1")
    if data_coding != 0:
        raise ValueError(f"unsupported data_coding {data_coding}")
    out, i = [], 0
    while i < len(data):
        if data[i] == 0x1B:
            if i + 1 >= len(data) or data[i + 1] not in _GSM_EXT:
                raise ValueError("dangling or unknown GSM escape")
            out.append(_GSM_EXT[data[i + 1]])
            i += 2
        else:
            if data[i] > 0x7F:
                raise ValueError(f"0x{data[i]:02x} is not a septet")
            out.append(_GSM_BASIC[data[i]])
            i += 1
    return "".join(out)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def cstring(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos + 4 <= len(self.data):
            tag, length = struct.unpack(">HH", self.octets(4))
            found[tag] = self.octets(length)
        return found


def pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\x00"


@dataclass
class BindRecord:
    system_id: str
    password: str
    system_type: str
    accepted: bool


@dataclass
class SubmitRecord:
    source_addr: str
    source_addr_ton: int
    destination_addr: str
    dest_addr_ton: int
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    status: int
    message_id: str


@dataclass
class SmsRecord:
    source_addr: str
    destination_addr: str
    text: str
    data_coding: int
    message_ids: list[str]


@dataclass
class FakeSmsc:
    system_id: str = "otklik"
    password: str = "secret"
    receipts: bool = True
    receipt_stat: str = "DELIVRD"
    statuses: deque[int] = field(default_factory=deque)
    invalid_destinations: set[str] = field(default_factory=set)
    drop_next_submits: int = 0
    response_delay: float = 0.0
    mute: bool = False
    binds: list[BindRecord] = field(default_factory=list)
    submits: list[SubmitRecord] = field(default_factory=list)
    messages: list[SmsRecord] = field(default_factory=list)
    receipt_acks: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._partial: dict[tuple[str, str, int], dict[int, tuple[str, str]]] = {}
        self._next_id = 0
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeSmsc:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, 0))
        server.listen(16)
        self._server, self.port = server, server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="fake-smsc").start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            # close() alone leaves a thread blocked in accept() holding the listener open.
            _hard_close(self._server)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _hard_close(conn)

    def __enter__(self) -> FakeSmsc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[FakeSmsc], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def drop_connections(self) -> None:
        """Cut every open session, as a restarting SMSC or a NAT timeout would."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _hard_close(conn)

    # -- protocol ----------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        write = threading.Lock()
        bound = False
        try:
            while True:
                header = _recv_exact(conn, 16)
                length, command_id, _status, sequence = struct.unpack(">IIII", header)
                body = _recv_exact(conn, length - 16)
                if self.mute:
                    continue
                if command_id == BIND_TRANSCEIVER:
                    bound = self._bind(conn, write, sequence, _Body(body))
                elif command_id == ENQUIRE_LINK:
                    _send(conn, write, pdu(ENQUIRE_LINK | RESP, ESME_ROK, sequence))
                elif command_id == UNBIND:
                    _send(conn, write, pdu(UNBIND | RESP, ESME_ROK, sequence))
                    break
                elif command_id == SUBMIT_SM:
                    if not bound:
                        _send(conn, write, pdu(SUBMIT_SM | RESP, ESME_RINVBNDSTS, sequence))
                    elif not self._submit(conn, write, sequence, _Body(body)):
                        break
                elif command_id == DELIVER_SM | RESP:
                    with self._lock:
                        self.receipt_acks.append(sequence)
                        self._lock.notify_all()
                elif command_id & RESP:
                    pass
                else:
                    _send(conn, write, pdu(GENERIC_NACK, ESME_RINVCMDID, sequence))
        except (OSError, ConnectionError):
            pass
        except Exception as exc:  # a decoding bug must fail the test, not hang it
            with self._lock:
                self.errors.append(repr(exc))
                self._lock.notify_all()
        finally:
            _hard_close(conn)

    def _bind(self, conn: socket.socket, write: threading.Lock, seq: int, body: _Body) -> bool:
        system_id, password, system_type = body.cstring(), body.cstring(), body.cstring()
        ok = system_id == self.system_id and password == self.password
        with self._lock:
            self.binds.append(BindRecord(system_id, password, system_type, ok))
            self._lock.notify_all()
        status = ESME_ROK if ok else ESME_RINVPASWD
        _send(conn, write, pdu(BIND_TRANSCEIVER | RESP, status, seq, cstr("fakesmsc")))
        return ok

    def _submit(self, conn: socket.socket, write: threading.Lock, seq: int, body: _Body) -> bool:
        fields: dict[str, Any] = {"service_type": body.cstring()}
        fields["source_addr_ton"], fields["source_addr_npi"] = body.u8(), body.u8()
        fields["source_addr"] = body.cstring()
        fields["dest_addr_ton"], fields["dest_addr_npi"] = body.u8(), body.u8()
        fields["destination_addr"] = body.cstring()
        fields["esm_class"], _pid, _prio = body.u8(), body.u8(), body.u8()
        _schedule, _validity = body.cstring(), body.cstring()
        fields["registered_delivery"], _replace = body.u8(), body.u8()
        fields["data_coding"], _default_id = body.u8(), body.u8()
        short_message = body.octets(body.u8())
        if not short_message:
            short_message = body.tlvs().get(0x0424, b"")
        with self._lock:
            if self.drop_next_submits > 0:
                self.drop_next_submits -= 1
                return False
            status = self.statuses.popleft() if self.statuses else ESME_ROK
            if fields["destination_addr"] in self.invalid_destinations:
                status = ESME_RINVDSTADR
            self._next_id += 1
            message_id = f"smsc-{self._next_id:06d}" if status == ESME_ROK else ""
        if self.response_delay:
            time.sleep(self.response_delay)
        record = SubmitRecord(
            source_addr=fields["source_addr"],
            source_addr_ton=fields["source_addr_ton"],
            destination_addr=fields["destination_addr"],
            dest_addr_ton=fields["dest_addr_ton"],
            esm_class=fields["esm_class"],
            registered_delivery=fields["registered_delivery"],
            data_coding=fields["data_coding"],
            short_message=short_message,
            status=status,
            message_id=message_id,
        )
        resp_body = cstr(message_id) if status == ESME_ROK else b""
        _send(conn, write, pdu(SUBMIT_SM | RESP, status, seq, resp_body))
        with self._lock:
            self.submits.append(record)
            if status == ESME_ROK:
                self._assemble(record)
            self._lock.notify_all()
        if status == ESME_ROK and self.receipts and record.registered_delivery & 0x01:
            self.send_receipt(conn, write, record, self.receipt_stat)
        return True

    def _assemble(self, record: SubmitRecord) -> None:
        data = record.short_message
        if not record.esm_class & 0x40:
            text = decode_part(data, record.data_coding)
            self.messages.append(
                SmsRecord(
                    record.source_addr,
                    record.destination_addr,
                    text,
                    record.data_coding,
                    [record.message_id],
                )
            )
            return
        udh_len = data[0]
        udh, payload = data[1 : 1 + udh_len], data[1 + udh_len :]
        if udh[0] == 0x00 and udh[1] == 3:
            ref, total, index = udh[2], udh[3], udh[4]
        elif udh[0] == 0x08 and udh[1] == 4:
            ref, total, index = (udh[2] << 8) | udh[3], udh[4], udh[5]
        else:
            raise ValueError(f"no concatenation element in UDH {udh.hex()}")
        key = (record.source_addr, record.destination_addr, ref)
        parts = self._partial.setdefault(key, {})
        parts[index] = (decode_part(payload, record.data_coding), record.message_id)
        if len(parts) == total:
            del self._partial[key]
            ordered = [parts[i] for i in range(1, total + 1)]
            self.messages.append(
                SmsRecord(
                    record.source_addr,
                    record.destination_addr,
                    "".join(text for text, _ in ordered),
                    record.data_coding,
                    [mid for _, mid in ordered],
                )
            )

    def send_receipt(
        self, conn: socket.socket, write: threading.Lock, record: SubmitRecord, stat: str
    ) -> None:
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        text = (
            f"id:{record.message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:{stamp} done date:{stamp} stat:{stat} err:000 text:"
        ).encode("ascii")
        state = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}.get(stat, 7)
        body = (
            cstr("")
            + bytes((1, 1))
            + cstr(record.destination_addr)
            + bytes((record.source_addr_ton, 0))
            + cstr(record.source_addr)
            + bytes((0x04, 0, 0))
            + cstr("")
            + cstr("")
            + bytes((0, 0, 0, 0, len(text)))
            + text
            + struct.pack(">HH", 0x001E, len(record.message_id) + 1)
            + cstr(record.message_id)
            + struct.pack(">HHB", 0x0427, 1, state)
        )
        with self._lock:
            self._next_id += 1
            seq = 0x10000 + self._next_id
        _send(conn, write, pdu(DELIVER_SM, ESME_ROK, seq, body))


def _send(conn: socket.socket, write: threading.Lock, data: bytes) -> None:
    with write:
        conn.sendall(data)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = conn.recv(size - got)
        if not chunk:
            raise ConnectionError("peer closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _hard_close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def summary(smsc: FakeSmsc) -> dict[str, Any]:
    """What reached the SMSC, for an exactly-once check: every message once, no part lost."""
    with smsc._lock:
        accepted = [s for s in smsc.submits if s.status == ESME_ROK]
        return {
            "binds": len(smsc.binds),
            "submits": len(smsc.submits),
            "accepted_submits": len(accepted),
            "distinct_submit_ids": len({s.message_id for s in accepted}),
            "messages": len(smsc.messages),
            "distinct_destinations": len({m.destination_addr for m in smsc.messages}),
            "long_messages": sum(len(m.message_ids) > 1 for m in smsc.messages),
            "ucs2_messages": sum(m.data_coding == 8 for m in smsc.messages),
            "unfinished_long_messages": len(smsc._partial),
            "receipt_acks": len(smsc.receipt_acks),
            "errors": list(smsc.errors),
        }


def main() -> None:
    """Serve in a process of its own (as a real SMSC would be), for the benchmarks.

    Prints the port, serves until stdin closes, then prints `summary()` as one JSON line.
    """
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--no-receipts", action="store_true", help="send no deliver_sm")
    args = parser.parse_args()
    smsc = FakeSmsc(receipts=not args.no_receipts).start()
    print(smsc.port, flush=True)
    sys.stdin.read()
    smsc.stop()
    print(json.dumps(summary(smsc)), flush=True)


if __name__ == "__main__":
    main()
