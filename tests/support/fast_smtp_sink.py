"""A minimal, fast SMTP sink for benchmarks, in the spirit of Postfix's `smtp-sink`.

aiosmtpd reads DATA line by line in Python, which caps it near 400 messages/s of a 60 KB
newsletter on one core: it measured itself, not the sender. This sink speaks the same
protocol (RFC 5321: EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT, and
PIPELINING) but finds the end of DATA with one `bytes.find` per chunk, and only counts
messages and their Message-IDs. Tests that inspect messages use `smtp_sink.SmtpSink`.

    python -m tests.support.fast_smtp_sink   # prints the port; on end of stdin, the counts
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections import Counter

MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]+>)")
EHLO = (
    b"250-sink.local\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    b"250-SIZE 52428800\r\n250 ENHANCEDSTATUSCODES\r\n"
)


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.connections = 0
        self.ids: Counter[bytes] = Counter()


class _Session(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1
        transport.write(b"220 sink.local ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
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
                self.stats.messages += 1
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
                out += EHLO
            elif verb == b"HELO":
                out += b"250 sink.local\r\n"
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out += b"250 2.1.0 Ok\r\n"
            elif verb == b"DATA":
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
    def __init__(self) -> None:
        self.stats = Stats()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> FastSmtpSink:
        self._thread.start()

        async def serve() -> asyncio.AbstractServer:
            return await self._loop.create_server(
                lambda: _Session(self.stats), "127.0.0.1", 0, backlog=512
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

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
    with FastSmtpSink() as sink:
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
