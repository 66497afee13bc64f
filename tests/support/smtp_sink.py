"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it receives and injects faults.

    with SmtpSink(starttls=True, auth=("user", "secret"), reject={"gone@example.org"}) as sink:
        ... send to 127.0.0.1:sink.port ...
        assert sink.messages[0].message["Subject"] == "..."

It runs in its own thread and event loop. The handler only stores the envelope and the raw
bytes, so it keeps up with a bulk-send benchmark; `ReceivedMail.message` parses on first use.
Faults are plain attributes, read on every command, so a test can change them mid-run:

- `reject`: recipients refused at RCPT with 550 5.1.1 (a dead mailbox);
- `defer`: recipients refused at RCPT with 451 4.7.1 (greylisting);
- `hang_up`: recipients whose RCPT makes the server close the connection without a reply;
- `drop_after_messages`: a connection that has carried N messages is closed, without a reply,
  when the client starts the next one (a relay that timed out the idle session);
- `delay_seconds`: every RCPT is answered this late (client timeouts).

`pipelining=True` adds PIPELINING to the EHLO reply (the client then pipelines its envelope).

`python -m tests.support.smtp_sink` runs one in its own process for benchmarks (see `main`).

TLS uses a self-signed certificate for localhost/127.0.0.1 made at run time (`cert_path`).
"""

from __future__ import annotations

import asyncio
import atexit
import ipaddress
import json
import logging
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property, lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAME = "sink.otklik.test"


def _not_login_data_deprecation(record: logging.LogRecord) -> bool:
    # aiosmtpd itself sets the deprecated Session.login_data after every successful AUTH.
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_not_login_data_deprecation)


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    # 1-based number of the connection that carried it, in the order connections were made.
    connection: int
    tls: bool
    login: str | None
    mail_options: list[str] = field(default_factory=list)

    @cached_property
    def message(self) -> EmailMessage:
        # As a mail client sees it: CRLF line ends turned into "\n".
        parsed = BytesParser(policy=policy.default).parsebytes(self.data.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        return parsed


@lru_cache(maxsize=1)
def self_signed_certificate() -> tuple[Path, Path]:
    """(certificate, key) PEM files for localhost and 127.0.0.1, made once per process."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="otklik-smtp-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_tls() -> ssl.SSLContext:
    cert_path, key_path = self_signed_certificate()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Connection(SMTP):
    """One client connection: numbered, and counting the messages it carried."""

    number = 0
    carried = 0
    login: str | None = None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that has the hook
        if self.sink.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def _hang_up(self, server: SMTP) -> str:
        if server.transport is not None:
            server.transport.close()
        # aiosmtpd cancels this handler when it sees the connection go.
        await asyncio.sleep(3600)
        return "421 4.3.0 closing"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        limit = self.sink.drop_after_messages
        if limit is not None and isinstance(server, _Connection) and server.carried >= limit:
            return await self._hang_up(server)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        sink = self.sink
        if sink.delay_seconds:
            await asyncio.sleep(sink.delay_seconds)
        key = address.lower()
        if key in sink.hang_up:
            return await self._hang_up(server)
        if key in sink.reject:
            return (
                f"550 5.1.1 <{address}>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            )
        if key in sink.defer:
            return (
                f"451 4.7.1 <{address}>: Recipient address rejected: "
                "Greylisted, try again in 300 seconds"
            )
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        connection = server if isinstance(server, _Connection) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=content,
            connection=connection.number if connection else 0,
            tls=session.ssl is not None,
            login=connection.login if connection else None,
            mail_options=list(envelope.mail_options),
        )
        number = self.sink._record(mail)
        if connection is not None:
            connection.carried += 1
        return f"250 2.0.0 Ok: queued as Q{number:08d}"


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        server = _Connection(self.handler, **self.SMTP_kwargs)
        # Passed as False so aiosmtpd does not warn about AUTH without STARTTLS on every
        # connection (implicit TLS is encrypted anyway, and plain is a test's choice).
        server._auth_required = self.sink.auth is not None
        server.number = self.sink._connected()
        return server


class SmtpSink:
    """See the module docstring. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        reject: Iterable[str] = (),
        defer: Iterable[str] = (),
        hang_up: Iterable[str] = (),
        drop_after_messages: int | None = None,
        delay_seconds: float = 0.0,
        keep_messages: bool = True,
        pipelining: bool = False,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("choose STARTTLS or implicit TLS, not both")
        self.host = "127.0.0.1"
        self.port = 0
        self.starttls = starttls
        # Offer PIPELINING in EHLO; aiosmtpd reads commands in order from its stream, so it
        # answers pipelined commands correctly.
        self.pipelining = pipelining
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.reject = frozenset(a.lower() for a in reject)
        self.defer = frozenset(a.lower() for a in defer)
        self.hang_up = frozenset(a.lower() for a in hang_up)
        self.drop_after_messages = drop_after_messages
        self.delay_seconds = delay_seconds
        # False for long benchmarks: count messages without holding every body in memory.
        self.keep_messages = keep_messages
        self._count = 0
        self.failed_logins = 0
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._connections = 0
        self._controller: _Controller | None = None

    @property
    def cert_path(self) -> Path:
        return self_signed_certificate()[0]

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def connections(self) -> int:
        """Connections clients opened since start (the controller's own probe excluded)."""
        with self._lock:
            return self._connections

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._count = 0
            self._connections = 0

    def _record(self, mail: ReceivedMail) -> int:
        with self._lock:
            if self.keep_messages:
                self._messages.append(mail)
            self._count += 1
            return self._count

    def _connected(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if self.auth is not None and isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if (login, password) == self.auth:
                if isinstance(server, _Connection):
                    server.login = login
                return AuthResult(success=True)
        with self._lock:
            self.failed_logins += 1
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {"server_hostname": SERVER_NAME, "ready_timeout": 10.0}
        if self.starttls:
            kwargs.update(tls_context=_server_tls(), require_starttls=True)
        if self.implicit_tls:
            kwargs["ssl_context"] = _server_tls()
        if self.auth is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=self.starttls,
                # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the session is
                # encrypted from the first byte, so AUTH is safe there too.
                auth_require_tls=self.starttls,
            )
        for _ in range(5):
            self.port = _free_port()
            controller = _Controller(self, hostname=self.host, port=self.port, **kwargs)
            try:
                controller.start()
            except OSError:
                continue
            self._controller = controller
            break
        else:
            raise RuntimeError("could not bind the SMTP sink to a free port")
        # The controller opened one connection itself to check the server is up.
        self.clear()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """`python -m tests.support.smtp_sink`: a sink in its own process (no GIL shared with the
    sender), for benchmarks. Prints the port; at end of stdin prints the counts as JSON."""
    with SmtpSink(keep_messages=False) as sink:
        print(sink.port, flush=True)
        sys.stdin.read()
        print(json.dumps({"messages": sink.count, "connections": sink.connections}), flush=True)


if __name__ == "__main__":
    main()
