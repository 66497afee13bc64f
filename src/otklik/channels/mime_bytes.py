"""The wire bytes of one email, written directly: what `mime.flatten(mime.build_message())` makes.

Our messages have one fixed shape (a text part, or text and HTML in multipart/alternative),
with headers we encode and fold ourselves. The email package's objects add nothing to that
but cost: building an `EmailMessage` (header objects, policy calls, a parameter parse to
find the boundary again) and the str → bytes → str → bytes round trips of each 49 KB body
took about half of the adapter's CPU per newsletter. Here each body is encoded to bytes once
and the headers are one string.

`mime.build_message` stays as the reference: a property test checks that both give the same
bytes for any message, and that the email package parses them back to the same content.
"""

from __future__ import annotations

import binascii
import email.utils
from datetime import datetime

from otklik.channels.base import OutboundMessage
from otklik.channels.mime import (
    _ASCII,
    BASE64_LINE,
    MAX_LINE_OCTETS,
    OTKLIK_ID_HEADER,
    QP_MAX_BYTES,
    RESERVED_HEADERS,
    Canonical,
    Sender,
    _eight_bit_lines,
    encode_text,
    fold_header,
    format_address,
    message_id_header,
    new_boundary,
)
from otklik.kit.time import utc_now

_CRLF = b"\r\n"


def body_bytes(text: str, *, eight_bit: bool = False) -> tuple[str, bytes]:
    """`mime.encode_body(text, eight_bit=...)`, with the payload as wire bytes."""
    if text.isascii() and max(map(len, text.splitlines()), default=0) <= MAX_LINE_OCTETS:
        data = text.encode("ascii")
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return "7bit", data.replace(b"\n", _CRLF)
    data = text.encode("utf-8")
    if eight_bit:
        wrapped = _eight_bit_lines(data)
        if wrapped is not None:
            return "8bit", wrapped
    non_ascii = len(data.translate(None, _ASCII))
    if len(data) <= QP_MAX_BYTES and 2 * non_ascii <= len(data) // 3:
        return "quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", _CRLF)
    encoded = binascii.b2a_base64(data, newline=False)
    width = BASE64_LINE
    return "base64", _CRLF.join([encoded[i : i + width] for i in range(0, len(encoded), width)])


def _fold(headers: list[tuple[str, str, str]], utf8: bool) -> bytes:
    # Header by header, folded then encoded, so that the first header that cannot be
    # written raises the same error as in the email package's flatten.
    charset = "utf-8" if utf8 else "ascii"
    return b"".join([fold_header(name, value).encode(charset) for _, name, value in headers])


def _part(subtype: str, text: str, eight_bit: bool) -> tuple[bytes, bytes]:
    """(Content-Type and Content-Transfer-Encoding lines, body ending in CRLF)."""
    cte, body = body_bytes(text, eight_bit=eight_bit)
    if not body.endswith(_CRLF):
        body += _CRLF
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    return head.encode("ascii"), body


def render_message(
    message: OutboundMessage,
    sender: Sender,
    *,
    to: str | None = None,
    utf8: bool = False,
    date: datetime | None = None,
    eight_bit: bool = False,
    boundary: str | None = None,
) -> Canonical:
    """The wire bytes (CRLF line ends) of `message`; arguments as `mime.build_message`.

    Raises ValueError for a reserved or malformed caller header (CR/LF included), and
    UnicodeEncodeError (a ValueError) for a non-ASCII header outside an SMTPUTF8 session.
    """
    # (lower-cased name, name, value): a caller's header replaces one of the same name,
    # which then moves to the end, as it does in an EmailMessage.
    headers: list[tuple[str, str, str]] = []

    def put(name: str, value: str) -> None:
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} may not contain a line break")
        headers.append((name.lower(), name, value))

    put("From", format_address(sender.address, sender.name))
    put("To", to or message.to)
    if message.subject:
        put("Subject", encode_text(message.subject))
    put("Date", email.utils.format_datetime(date or utc_now()))
    put("Message-ID", message_id_header(message.message_id, sender.message_id_domain))
    put(OTKLIK_ID_HEADER, str(message.message_id))
    if sender.reply_to:
        put("Reply-To", sender.reply_to)
    for name, value in message.headers.items():
        if not name.isascii() or not name.replace("-", "").isalnum():
            raise ValueError(f"header name {name!r} is not a valid field name")
        lower = name.lower()
        if lower in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the email adapter, not by the caller")
        headers = [item for item in headers if item[0] != lower]
        put(name, encode_text(value))
    put("MIME-Version", "1.0")
    if message.html is None:
        head, body = _part("plain", message.text, eight_bit)
        return Canonical(b"".join((_fold(headers, utf8), head, _CRLF, body)))
    text_head, text_body = _part("plain", message.text, eight_bit)
    html_head, html_body = _part("html", message.html, eight_bit)
    # "=_" never occurs in quoted-printable or base64 output (see mime.build_message).
    boundary = boundary or new_boundary()
    put("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    top = _fold(headers, utf8)
    mark = boundary.encode("ascii")
    # RFC 2046 5.1.1: the CRLF before a delimiter belongs to it; each body keeps its own.
    return Canonical(
        b"".join(
            (
                top,
                _CRLF,
                b"--" + mark + _CRLF,
                text_head,
                _CRLF,
                text_body,
                _CRLF + b"--" + mark + _CRLF,
                html_head,
                _CRLF,
                html_body,
                _CRLF + b"--" + mark + b"--" + _CRLF,
            )
        )
    )
