"""A minimal, fast SMTP sink for benchmarks, in the spirit of Postfix's `smtp-sink`.

aiosmtpd reads DATA line by line in Python, which caps it near 400 messages/s of a 60 KB
newsletter on one core: it measured itself, not the sender. This sink speaks the same
protocol (RFC 5321: EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT, and
PIPELINING) but finds the end of DATA with one `bytes.find` per chunk, and only counts
messages and their Message-IDs. Tests that inspect messages use `smtp_sink.SmtpSink`.

Like Postfix, it answers pipelined commands in order and sends the replies to one read
together; a refused RCPT makes the DATA that follows it fail ("554 5.5.1 no valid
recipients"), a refused MAIL makes RCPT and DATA fail with 503, and a MAIL before the last
transaction was finished or reset is refused ("503 nested MAIL command"). Faults, by
recipient, for the adapter's specifications: `reject` (550 5.1.1 at RCPT), `defer` (451 4.7.1
at RCPT), `reject_data` (554 5.7.1 after the message), `hang_up` (RCPT closes the
connection), `shut` (RCPT answered 421, then the connection closed), `stall` (RCPT is never
answered); `pipelining=False` leaves PIPELINING out of
EHLO. `Stats.pipelined` counts the MAIL commands that arrived with their RCPT in one read.

    python -m tests.support.fast_smtp_sink   # prints the port; on end of stdin, the counts
    python -m tests.support.fast_smtp_sink --no-pipelining
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass

MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]+>)")
EHLO = (
    b"250-sink.local\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    b"250-SIZE 52428800\r\n250 ENHANCEDSTATUSCODES\r\n"
)
EHLO_LOCKSTEP = EHLO.replace(b"250-PIPELINING\r\n", b"")


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.connections = 0
        self.pipelined = 0
        self.ids: Counter[bytes] = Counter()
        self.open: set[_Session] = set()
        # Accepted messages by recipient address (the bytes inside RCPT TO:<...>).
        self.recipients: Counter[bytes] = Counter()


@dataclass
class Faults:
    pipelining: bool = True
    reject: frozenset[str] = frozenset()
    defer: frozenset[str] = frozenset()
    reject_data: frozenset[str] = frozenset()
    hang_up: frozenset[str] = frozenset()
    # RCPT for these is never answered (nor anything after it on that connection).
    stall: frozenset[str] = frozenset()
    # RCPT for these is answered "421" and the connection closed (Postfix's "too many errors").
    shut: frozenset[str] = frozenset()


def _address(argument: bytes) -> bytes:
    start = argument.find(b"<")
    return argument[start + 1 : argument.find(b">", start)]


class _Session(asyncio.Protocol):
    def __init__(self, stats: Stats, faults: Faults) -> None:
        self.stats = stats
        self.faults = faults
        self.buffer = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None
        self.sender: bytes | None = None
        self.recipients: list[bytes] = []
        self.stalled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1
        self.stats.open.add(self)
        transport.write(b"220 sink.local ESMTP ready\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.stalled:
            return
        self.buffer += data
        out = bytearray()
        while True:
            if self.in_data:
                # The terminator may be the very first line of an empty body.
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    if self.buffer.startswith(b".\r\n"):
                        end, skip = 0, 3
                    else:
                        break
                else:
                    skip = 5
                body = bytes(self.buffer[:end])
                del self.buffer[: end + skip]
                self.in_data = False
                recipients, self.recipients, self.sender = self.recipients, [], None
                if any(r.decode() in self.faults.reject_data for r in recipients):
                    out += b"554 5.7.1 Message content rejected\r\n"
                    continue
                self.stats.messages += 1
                self.stats.recipients.update(recipients)
                head = body[: body.find(b"\r\n\r\n")]
                found = MESSAGE_ID.search(head)
                if found:
                    self.stats.ids[found.group(1)] += 1
                out += b"250 2.0.0 Ok: queued\r\n"
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line = bytes(self.buffer[:line_end])
            del self.buffer[: line_end + 2]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out += EHLO if self.faults.pipelining else EHLO_LOCKSTEP
            elif verb == b"HELO":
                out += b"250 sink.local\r\n"
            elif verb == b"MAIL":
                if self.buffer[:4].upper() == b"RCPT":
                    self.stats.pipelined += 1
                if self.sender is not None:
                    # Postfix too: a refused transaction must be reset before the next one.
                    out += b"503 5.5.1 Error: nested MAIL command\r\n"
                else:
                    self.sender, self.recipients = _address(line), []
                    out += b"250 2.1.0 Ok\r\n"
            elif verb == b"RCPT":
                address = _address(line)
                text = address.decode("utf-8", "replace")
                if self.sender is None:
                    out += b"503 5.5.1 Error: need MAIL command\r\n"
                elif text in self.faults.hang_up:
                    assert self.transport is not None
                    self.transport.write(bytes(out))
                    self.transport.close()
                    return
                elif text in self.faults.shut:
                    out += b"421 4.7.0 sink.local Error: too many errors\r\n"
                    assert self.transport is not None
                    self.transport.write(bytes(out))
                    self.transport.close()
                    return
                elif text in self.faults.stall:
                    self.stalled = True
                    break
                elif text in self.faults.reject:
                    out += b"550 5.1.1 <" + address + b">: Recipient address rejected\r\n"
                elif text in self.faults.defer:
                    out += b"451 4.7.1 <" + address + b">: Greylisted, try again later\r\n"
                else:
                    self.recipients.append(address)
                    out += b"250 2.1.5 Ok\r\n"
            elif verb in (b"RSET", b"NOOP"):
                if verb == b"RSET":
                    self.sender, self.recipients = None, []
                out += b"250 2.0.0 Ok\r\n"
            elif verb == b"DATA":
                if self.sender is None:
                    out += b"503 5.5.1 Error: need RCPT command\r\n"
                elif not self.recipients:
                    out += b"554 5.5.1 Error: no valid recipients\r\n"
                else:
                    self.in_data = True
                    out += b"354 End data with <CR><LF>.<CR><LF>\r\n"
            elif verb == b"QUIT":
                out += b"221 2.0.0 Bye\r\n"
                assert self.transport is not None
                self.transport.write(bytes(out))
                self.transport.close()
                return
            else:
                out += b"502 5.5.2 Command not recognised\r\n"
        if out and self.transport is not None:
            self.transport.write(bytes(out))


class FastSmtpSink:
    def __init__(self, faults: Faults | None = None) -> None:
        self.stats = Stats()
        self.faults = faults or Faults()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> FastSmtpSink:
        self._thread.start()

        async def serve() -> asyncio.AbstractServer:
            return await self._loop.create_server(
                lambda: _Session(self.stats, self.faults), "127.0.0.1", 0, backlog=512
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def hang_up_idle(self) -> None:
        """Close every open connection, as a relay does with sessions idle too long."""

        def close() -> None:
            for session in list(self.stats.open):
                if session.transport is not None:
                    session.transport.close()

        self._loop.call_soon_threadsafe(close)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> FastSmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    faults = Faults(pipelining="--no-pipelining" not in sys.argv[1:])
    with FastSmtpSink(faults) as sink:
        print(sink.port, flush=True)
        sys.stdin.read()
        stats = sink.stats
        repeats = sum(n - 1 for n in stats.ids.values())
        print(
            json.dumps(
                {
                    "messages": stats.messages,
                    "connections": stats.connections,
                    "distinct_message_ids": len(stats.ids),
                    "repeated": repeats,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
