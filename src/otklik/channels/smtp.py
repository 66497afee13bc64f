"""Email over SMTP (aiosmtplib) with a pool of open connections.

One adapter keeps up to `pool_size` SMTP sessions open and reuses them across `send()` calls
(a session carries at most `max_messages_per_connection` messages, then it is closed and a new
one opened: relays limit messages per session and a fresh session spreads load). The pool
belongs to the event loop it was made in; a call from another loop starts a new pool.

Classification of server replies and faults (the `code` of the result):

- `smtp_4xx` (RetryLater): any 4xx reply — greylisting, mailbox busy, "421 closing".
- `smtp_5xx` (Failed): a 5xx reply; `address_gone=True` when RCPT was refused with
  550/551/553 for a mailbox reason (enhanced status 5.1.x, or no enhanced status and a text
  that names an unknown user or mailbox), which makes the pipeline suppress the address.
- `smtp_timeout`, `smtp_disconnected`, `smtp_connect`, `smtp_tls`, `smtp_auth`,
  `smtp_error` (RetryLater): the relay is slow, gone, refuses us or is misconfigured. None of
  these is the recipient's fault, so the message waits for the relay instead of failing.
- `invalid_email`, `invalid_message`, `smtputf8_unsupported` (Failed): this message cannot be
  sent as it is, whatever the relay does.

When the server offers PIPELINING (RFC 2920), each message's MAIL, RCPT and DATA go in one
write and the message follows the 354: two round trips instead of four, at about a quarter
of the CPU of aiosmtplib's transaction (`smtp_pipelining`). Other servers get aiosmtplib's
lock-step transaction; the replies are classified the same way on both paths. The message
bytes come from `mime_bytes.render_message`, which writes what `mime.build_message` +
`flatten` would.

A pooled session the server closed while idle is detected when it is reused and the message is
sent once more on a fresh session; the stable Message-ID lets receivers drop the rare
duplicate when the server had accepted the message before the connection broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import Field, SecretStr, field_validator, model_validator

from otklik.channels import smtp_speedups
from otklik.channels.base import (
    Adapter,
    Capabilities,
    ChannelConfig,
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    Receipt,
    RetryLater,
    SendResult,
    Sent,
)
from otklik.channels.bounces import parse_receipts
from otklik.channels.mime import Sender, message_id_header
from otklik.channels.mime_bytes import render_message
from otklik.channels.smtp_pipelining import Wire

DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
# Enhanced status codes (RFC 3463) of 5.1.x that blame the sender, not the recipient.
_SENDER_STATUSES = frozenset({"5.1.7", "5.1.8"})
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
_MAILBOX_WORDS = re.compile(
    r"(user|mailbox|recipient|address)\b.*\b(unknown|not found|does not exist|"
    r"doesn't exist|unavailable|invalid|no such|disabled)|no such (user|mailbox)",
    re.IGNORECASE,
)

smtp_speedups.install()


def normalise_email(raw: str) -> str:
    """The canonical form of an email address (domain lower-cased, IDN in Unicode)."""
    value = raw.strip()
    if not value:
        raise InvalidAddress("empty_email", "the email address is empty")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress("invalid_email", str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def _ascii_email(raw: str) -> str:
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not a valid email address: {exc}") from None
    return result.ascii_email or result.normalized


class SmtpConfig(ChannelConfig):
    host: str = Field(min_length=1)
    # None takes the usual port for `security`: 25, 587 or 465.
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    from_name: str = ""
    reply_to: str | None = None
    # Right-hand side of Message-IDs; None takes the domain of `from_address`.
    message_id_domain: str | None = None
    pool_size: int = Field(default=4, ge=1, le=100)
    max_messages_per_connection: int = Field(default=100, ge=1)
    validate_certs: bool = True
    # Name sent in EHLO; None asks the operating system for this host's FQDN.
    local_hostname: str | None = None

    @field_validator("from_address", "reply_to")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        return None if value is None else _ascii_email(value.strip())

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("from_name may not contain a line break")
        return value.strip()

    @model_validator(mode="after")
    def _credentials_pair(self) -> SmtpConfig:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    @property
    def id_domain(self) -> str:
        return self.message_id_domain or self.from_address.rpartition("@")[2]


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    sent: int = 0
    # Set when the server offers PIPELINING: transactions then go through it, not aiosmtplib.
    wire: Wire | None = None

    def drop(self) -> None:
        # RuntimeError: the event loop that owned the transport is already closed.
        with contextlib.suppress(RuntimeError):
            self.client.close()


class _Pool:
    """Up to `size` sessions, each used by one send at a time."""

    def __init__(self, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(size)
        self.idle: list[_Session] = []
        self.closed = False

    def take(self) -> _Session | None:
        while self.idle:
            session = self.idle.pop()
            if session.client.is_connected:
                return session
            session.drop()
        return None

    def abandon(self) -> None:
        self.closed = True
        for session in self.idle:
            session.drop()
        self.idle.clear()


def _reply_result(code: int, text: str, *, recipient: bool) -> RetryLater | Failed:
    reply = f"{code} {text}".strip()
    if 400 <= code < 500:
        return RetryLater("smtp_4xx", f"the server deferred the message: {reply}")
    if 500 <= code < 600:
        match = _ENHANCED.match(text)
        status = match.group(1) if match else None
        gone = recipient and code in (550, 551, 553)
        if status is not None:
            gone = gone and status.startswith("5.1.") and status not in _SENDER_STATUSES
        else:
            gone = gone and bool(_MAILBOX_WORDS.search(text))
        return Failed("smtp_5xx", f"the server refused the message: {reply}", address_gone=gone)
    return RetryLater("smtp_error", f"unexpected server reply: {reply}")


def classify(exc: BaseException) -> RetryLater | Failed:
    """The send result for an exception from aiosmtplib or the socket layer."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _reply_result(first.code, first.message, recipient=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _reply_result(exc.code, exc.message, recipient=True)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return RetryLater("smtp_timeout", f"the SMTP server did not answer in time: {exc}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return RetryLater("smtp_auth", f"the SMTP server refused our login: {exc.code} {exc}")
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        return RetryLater("smtp_connect", f"the SMTP server refused the session: {exc.code} {exc}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_result(exc.code, exc.message, recipient=False)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return RetryLater("smtp_disconnected", f"the SMTP server closed the connection: {exc}")
    if isinstance(exc, ssl.SSLError):
        return RetryLater("smtp_tls", f"TLS with the SMTP server failed: {exc}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError):
            return RetryLater("smtp_tls", f"TLS with the SMTP server failed: {cause}")
        return RetryLater("smtp_connect", f"cannot connect to the SMTP server: {exc}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return Failed("smtputf8_unsupported", str(exc))
    if "STARTTLS" in str(exc):
        return RetryLater("smtp_tls", f"the SMTP server cannot do STARTTLS: {exc}")
    return RetryLater("smtp_error", f"SMTP error: {exc}")


# What send() turns into a result; anything else is a bug and propagates.
_FAULTS = (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError)


class SmtpEmailAdapter(Adapter[SmtpConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.EMAIL
    provider: ClassVar[str] = "smtp"
    config_class: ClassVar[type[ChannelConfig]] = SmtpConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        html=True, subject=True, rate_per_second=100
    )

    def __init__(self, config: SmtpConfig) -> None:
        super().__init__(config)
        self._sender = Sender(
            address=config.from_address,
            message_id_domain=config.id_domain,
            name=config.from_name,
            reply_to=config.reply_to,
        )
        self._pool: _Pool | None = None
        self._eight_bit = False

    def normalise_address(self, raw: str) -> str:
        return normalise_email(raw)

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Bounces and complaints: DSN/ARF messages or the JSON webhook (see `bounces`)."""
        return parse_receipts(body, headers)

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            to, utf8 = _envelope_recipient(message.to)
        except ValueError as exc:
            return Failed("invalid_email", str(exc))
        # 8-bit bodies once a session of this server has said it takes them (8BITMIME).
        eight_bit = self._eight_bit
        try:
            raw = render_message(message, self._sender, to=to, utf8=utf8, eight_bit=eight_bit)
        except ValueError as exc:
            return Failed("invalid_message", str(exc))
        pool = self._current_pool()
        async with pool.slots:
            session = pool.take()
            reused = session is not None
            try:
                if session is None:
                    session = await self._open()
                try:
                    reply = await self._transmit(session, to, raw, utf8, eight_bit)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # The server closed the idle session (idle timeout, restart): once more.
                    session.drop()
                    session = None
                    session = await self._open()
                    reply = await self._transmit(session, to, raw, utf8, eight_bit)
            except _FAULTS as exc:
                if session is not None:
                    self._release(pool, session, reusable=_reusable_after(exc, session))
                return classify(exc)
            except asyncio.CancelledError:
                # Cancelled mid-transaction: the session's state is unknown, so it is closed.
                if session is not None:
                    session.drop()
                raise
            session.sent += 1
            await self._finish(pool, session)
        header_id = message_id_header(message.message_id, self._sender.message_id_domain)
        return Sent(provider_message_id=header_id, detail=reply)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        sessions, pool.idle = pool.idle, []
        pool.closed = True
        if pool.loop is not asyncio.get_running_loop():
            for session in sessions:
                session.drop()
            return
        await asyncio.gather(*(self._quit(session) for session in sessions))

    def _current_pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop or self._pool.closed:
            if self._pool is not None:
                self._pool.abandon()
            self._pool = _Pool(self.config.pool_size)
        return self._pool

    async def _open(self) -> _Session:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.effective_port,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            local_hostname=cfg.local_hostname,
            timeout=cfg.timeout_seconds,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            validate_certs=cfg.validate_certs,
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        self._eight_bit = client.supports_extension("8bitmime")
        if client.supports_extension("pipelining"):
            return _Session(client, wire=Wire(client))
        return _Session(client)

    async def _transmit(
        self, session: _Session, to: str, raw: bytes, utf8: bool, eight_bit: bool
    ) -> str:
        options = ["SMTPUTF8"] if utf8 else []
        if eight_bit:
            options.append("BODY=8BITMIME")
        if session.wire is not None:
            return await session.wire.send(
                self._sender.address, to, raw, options, self.config.timeout_seconds
            )
        _, reply = await session.client.sendmail(
            self._sender.address, [to], raw, mail_options=options or None
        )
        return reply

    def _release(self, pool: _Pool, session: _Session, *, reusable: bool) -> None:
        if reusable and not pool.closed and session.client.is_connected:
            pool.idle.append(session)
        else:
            session.drop()

    async def _finish(self, pool: _Pool, session: _Session) -> None:
        if session.sent < self.config.max_messages_per_connection:
            self._release(pool, session, reusable=True)
        else:
            await self._quit(session)

    async def _quit(self, session: _Session) -> None:
        timeout = min(self.config.timeout_seconds, 5.0)
        try:
            if session.wire is not None:
                await session.wire.quit(timeout)
            else:
                await session.client.quit(timeout=timeout)
        except _FAULTS:
            pass
        finally:
            session.drop()


def _reusable_after(exc: BaseException, session: _Session) -> bool:
    """aiosmtplib resets the envelope (RSET) after a refused transaction, so the session can
    carry the next message; after a timeout a late reply could still arrive, so it cannot."""
    if not session.client.is_connected:
        return False
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(item.code != 421 for item in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code != 421


def _envelope_recipient(address: str) -> tuple[str, bool]:
    """(address for RCPT TO and the To header, whether the session needs SMTPUTF8)."""
    if address.isascii():
        return address, False
    ascii_form = _ascii_email(address)
    return ascii_form, not ascii_form.isascii()
