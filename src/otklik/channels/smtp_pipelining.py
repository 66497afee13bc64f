"""SMTP mail transactions in two round trips (RFC 2920 PIPELINING) on a session aiosmtplib opened.

aiosmtplib sends MAIL, RCPT, DATA and the message in lock-step, four round trips a message,
and its reader keeps one reply at a time (a second reply in the same packet is dropped), so
it cannot pipeline. Connecting, STARTTLS, AUTH and EHLO stay with aiosmtplib; once a server
has said PIPELINING, `Wire` takes over the session's transport and sends each transaction as

    MAIL FROM / RCPT TO / DATA  in one write, three replies read in order;
    the dot-stuffed message     after the 354, one reply.

The replies are turned into the exceptions aiosmtplib raises for them (SMTPSenderRefused,
SMTPRecipientsRefused, SMTPDataError, SMTPServerDisconnected, a timeout), so the adapter
classifies them exactly as it does for a lock-step server, and after a refusal the envelope
is reset (RSET) as aiosmtplib does, so the session carries the next message.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiosmtplib
from aiosmtplib import SMTPResponse

from otklik.channels.smtp_speedups import normalise_line_endings, stuff_periods

# A reply longer than this without its last line is not SMTP (aiosmtplib's own limit).
MAX_REPLY_OCTETS = 32 * 1024


class Wire(asyncio.Protocol):
    """The replies of one SMTP session, in order, whatever packets they arrive in."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        transport = client.transport
        if not isinstance(transport, asyncio.Transport) or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        self.transport = transport
        self.size = client.supports_extension("size")
        self.utf8 = client.supports_extension("smtputf8")
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        # From here on the transport's reads come to us, not to aiosmtplib's protocol.
        transport.set_protocol(self)

    # ------------------------------------------------------------------ asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            try:
                reply = self._parse()
            except aiosmtplib.SMTPResponseException as exc:
                self._fail(exc)
                self.transport.close()
                return
            if reply is None:
                break
            self._replies.append(reply)
        if len(self._buffer) > MAX_REPLY_OCTETS:
            self._buffer.clear()
            self._fail(aiosmtplib.SMTPResponseException(-1, "Response too long"))
            self.transport.close()
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._fail(lost)

    # ------------------------------------------------------------------ transactions

    async def send(
        self, sender: str, recipient: str, message: bytes, options: list[str], timeout: float
    ) -> str:
        """One mail transaction; the server's reply to the message, or an aiosmtplib error."""
        utf8 = "SMTPUTF8" in options
        if utf8 and not self.utf8:
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        if self._replies:
            # Something the server said between transactions (a "421 idle timeout" before it
            # hangs up): not a reply to us, and a sign the session is going.
            self._replies.clear()
        if self._error is not None:
            raise self._error
        body = normalise_line_endings(message)
        if self.size:
            options = [f"size={len(body)}", *options]
        envelope = (
            f"MAIL FROM:<{sender}>{''.join(' ' + item for item in options)}\r\n"
            f"RCPT TO:<{recipient}>\r\nDATA\r\n"
        )
        if "\r" in sender or "\n" in sender or "\r" in recipient or "\n" in recipient:
            raise ValueError("an envelope address contains a line break")
        self.transport.write(envelope.encode("utf-8" if utf8 else "ascii"))
        replies: list[SMTPResponse] = []
        try:
            async with asyncio.timeout(timeout):
                while len(replies) < 3:
                    replies.append(await self._reply())
        except aiosmtplib.SMTPServerDisconnected:
            # A server that refuses with 421 closes the connection without answering the
            # commands after it: the refusal is the outcome, as it is in lock-step.
            refused = _refusal(replies, sender, recipient)
            if refused is None:
                raise
            raise refused from None
        refused = _refusal(replies, sender, recipient)
        if refused is None:
            self.transport.write(stuff_periods(body) + b".\r\n")
            async with asyncio.timeout(timeout):
                done = await self._reply()
            if done.code == 250:
                return done.message
            refused = aiosmtplib.SMTPDataError(done.code, done.message)
        elif replies[2].code == 354:
            # The server opened DATA with no valid envelope (RFC 2920 3.1 allows it only to
            # broken servers): a lone "." ends it, and nothing can be delivered from it.
            await self._command(b".\r\n", timeout, quiet=True)
        await self._reset(timeout)
        raise refused

    async def quit(self, timeout: float) -> None:
        await self._command(b"QUIT\r\n", timeout, quiet=True)

    async def _reset(self, timeout: float) -> None:
        await self._command(b"RSET\r\n", timeout, quiet=True)

    async def _command(self, line: bytes, timeout: float, *, quiet: bool) -> SMTPResponse | None:
        """Send one command and read its reply; `quiet`: a lost connection is no error
        (aiosmtplib ignores it on RSET after a refusal, and on QUIT)."""
        try:
            if self._error is not None:
                raise self._error
            self.transport.write(line)
            async with asyncio.timeout(timeout):
                return await self._reply()
        except (ConnectionError, aiosmtplib.SMTPResponseException):
            if not quiet:
                raise
            return None

    # ------------------------------------------------------------------ replies

    async def _reply(self) -> SMTPResponse:
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    def _parse(self) -> SMTPResponse | None:
        """The first complete reply in the buffer (taken out of it), as aiosmtplib reads it."""
        buffer = self._buffer
        offset = 0
        lines: list[bytes] = []
        while True:
            end = buffer.find(b"\n", offset)
            if end < 0:
                return None
            line = bytes(buffer[offset : end + 1])
            offset = end + 1
            try:
                code = int(line[:3])
            except ValueError:
                del buffer[:offset]
                text = line.decode("utf-8", "ignore")
                raise aiosmtplib.SMTPResponseException(
                    -1, f"Malformed SMTP response line: {text}"
                ) from None
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del buffer[:offset]
                return SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._replies or self._error):
            waiter.set_result(None)


def _refusal(
    replies: list[SMTPResponse], sender: str, recipient: str
) -> aiosmtplib.SMTPException | None:
    """The error aiosmtplib raises for the first refused command of MAIL, RCPT, DATA (None
    when every reply so far accepts)."""
    if replies and replies[0].code != 250:
        return aiosmtplib.SMTPSenderRefused(replies[0].code, replies[0].message, sender)
    if len(replies) > 1 and replies[1].code not in (250, 251):
        refused = aiosmtplib.SMTPRecipientRefused(replies[1].code, replies[1].message, recipient)
        return aiosmtplib.SMTPRecipientsRefused([refused])
    if len(replies) > 2 and replies[2].code != 354:
        return aiosmtplib.SMTPDataError(replies[2].code, replies[2].message)
    return None
