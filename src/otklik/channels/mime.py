"""The MIME message for one email: headers, a text part and an optional HTML alternative.

The result is an `email.message.EmailMessage`, but under `WirePolicy`, which stores header
values already encoded for the wire (RFC 2047 encoded-words for non-ASCII text) and folds
them only at spaces. Two reasons, both measured:

- The default policy's header parser and folder cost ~4 ms per message, most of the budget of
  a 1,000 emails/s bulk send; this policy costs a few hundred microseconds.
- The default folder RFC 2047-encodes any long word, and an encoded `List-Unsubscribe` URL is
  one that no mailbox provider finds, which silently breaks one-click unsubscribe (RFC 8058).

The adapter does not build these objects per message any more: `mime_bytes.render_message`
writes the same bytes directly, and this module is the reference it is tested against.

Bodies are 7-bit clean (7bit, quoted-printable or base64, whichever is smallest) unless the
server offers 8BITMIME (see `encode_body`); both encoders are the C ones in `binascii`, since
the standard library's quoted-printable encoder is pure Python.
"""

from __future__ import annotations

import binascii
import email.utils
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from typing import Any

from otklik.channels.base import OutboundMessage
from otklik.kit.time import utc_now

# Set here from the message and the config; a caller's header with one of these names would
# make a second, conflicting copy (or smuggle in a recipient), so it is refused.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "x-otklik-message-id",
    }
)
OTKLIK_ID_HEADER = "X-Otklik-Message-Id"

# RFC 5321 4.5.3.1.6: 1000 octets per line including CRLF; RFC 5322 2.1.1: 78 is polite.
MAX_LINE_OCTETS = 998
FOLD_AT = 78
# 45 UTF-8 octets make 60 base64 characters: with "=?utf-8?b?" and "?=" that is 72, inside
# RFC 2047's 75-character limit for one encoded-word.
_WORD_OCTETS = 45
_ASCII = bytes(range(128))
BASE64_LINE = 76  # RFC 2045 6.8: encoded lines of at most 76 characters
QP_MAX_BYTES = 8 * 1024
_SPECIALS = frozenset('()<>[]:;@\\,."')
_UNIQUE_HEADERS = RESERVED_HEADERS | {"reply-to", "list-unsubscribe", "list-unsubscribe-post"}


class WirePolicy(EmailPolicy):
    """Header values are stored and returned exactly as they go on the wire."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, str]:
        text = str(value)
        if "\r" in text or "\n" in text:
            raise ValueError(f"header {name!r} may not contain a line break")
        return name, text

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value

    def header_max_count(self, name: str) -> int | None:
        # The base class asks the header registry, which builds a new class on every call.
        return 1 if name.lower() in _UNIQUE_HEADERS else None

    def fold(self, name: str, value: str) -> str:
        return fold_header(name, value, self.linesep)

    def fold_binary(self, name: str, value: str) -> bytes:
        return self.fold(name, value).encode("utf-8" if self.utf8 else "ascii")


def fold_header(name: str, value: str, linesep: str = "\r\n") -> str:
    """`Name: value` and its line end, folded at spaces only (see WirePolicy)."""
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT:
        return line + linesep
    head, _, rest = line.partition(" ")
    # The first word stays beside the name: a fold right after the colon would make a
    # leading space part of the value.
    words = rest.split(" ")
    lines: list[str] = []
    current = f"{head} {words[0]}"
    for word in words[1:]:
        # Never fold before an empty word: a line of only whitespace is not allowed.
        if word and len(current) + 1 + len(word) > FOLD_AT:
            lines.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    lines.append(current)
    if any(len(item) > MAX_LINE_OCTETS for item in lines):
        raise ValueError(f"header {name!r} has a word too long for one line")
    return linesep.join(lines) + linesep


POLICY = WirePolicy(linesep="\r\n")
POLICY_UTF8 = WirePolicy(linesep="\r\n", utf8=True)


def _encoded_words(text: str) -> list[str]:
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_OCTETS, len(data))
        # Never cut inside a character: step back over UTF-8 continuation octets.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
    return words


def encode_text(text: str) -> str:
    """Unstructured header text with RFC 2047 encoded-words for the non-ASCII runs.

    ASCII words stay readable. A run of non-ASCII words is encoded together with the spaces
    between them, because decoders drop whitespace between two adjacent encoded-words.
    """
    if text.isascii() and "=?" not in text:
        return text
    out: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if word.isascii() and "=?" not in word:
            if run:
                out.extend(_encoded_words(" ".join(run)))
                run = []
            out.append(word)
        else:
            run.append(word)
    if run:
        out.extend(_encoded_words(" ".join(run)))
    return " ".join(out)


def format_address(address: str, name: str = "") -> str:
    """`Name <address>` with the name quoted or RFC 2047-encoded as it needs."""
    if not name:
        return address
    if not name.isascii():
        return f"{' '.join(_encoded_words(name))} <{address}>"
    if any(char in _SPECIALS for char in name):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{name} <{address}>"


@dataclass(frozen=True)
class Sender:
    """Who the mail is from, as the adapter's config says."""

    address: str
    message_id_domain: str
    name: str = ""
    reply_to: str | None = None


def message_id_header(message_id: uuid.UUID, domain: str) -> str:
    """The Message-ID for Otklik's message row: the same on every attempt, so a resend after a
    crash is recognisable as a duplicate by the receiving side."""
    return f"<{message_id}@{domain}>"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _eight_bit_lines(data: bytes) -> bytes | None:
    """CRLF-separated lines of at most 998 octets, or None when that cannot be done safely.

    Generated HTML often comes as one long line (MJML and CSS inlining write no breaks). An
    over-long line is broken at its last space before the limit: in HTML and plain text a
    line break where a space was reads the same. A line with no space to break at (a long
    URL, a data: image) makes the body go as base64 instead.
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    if max(map(len, lines)) <= MAX_LINE_OCTETS:
        return b"\r\n".join(lines)
    out: list[bytes] = []
    for line in lines:
        start, end = 0, len(line)
        # Positions, not slices of the rest: a 45 KB line would be copied once per break.
        while end - start > MAX_LINE_OCTETS:
            cut = line.rfind(b" ", start, start + MAX_LINE_OCTETS + 1)
            if cut <= start:
                return None
            out.append(line[start:cut])
            start = cut + 1
        out.append(line[start:] if start else line)
    return b"\r\n".join(out)


def encode_body(text: str, *, eight_bit: bool = False) -> tuple[str, str]:
    """(Content-Transfer-Encoding, payload) for a UTF-8 text body, lines ending in CRLF.

    7-bit clean (7bit, quoted-printable or base64) unless `eight_bit`: a server that offers
    8BITMIME takes UTF-8 text as it is when no line is longer than SMTP allows, which saves
    encoding it and a third of the bytes.
    """
    if text.isascii() and max(map(len, text.splitlines()), default=0) <= MAX_LINE_OCTETS:
        return "7bit", _crlf(text)
    if eight_bit:
        wrapped = _eight_bit_lines(text.encode("utf-8"))
        if wrapped is not None:
            return "8bit", wrapped.decode("utf-8")
    data = text.encode("utf-8")
    # Quoted-printable costs 2 extra characters per non-ASCII byte, base64 a third of all.
    # But binascii.b2a_qp encodes ~35 MB/s against ~700 MB/s for base64 (1.4 ms against
    # 0.07 ms for a 49 KB newsletter): past QP_MAX_BYTES the CPU matters more than the bytes.
    non_ascii = len(data.translate(None, _ASCII))
    if len(data) <= QP_MAX_BYTES and 2 * non_ascii <= len(data) // 3:
        qp = binascii.b2a_qp(data, istext=True).decode("ascii")
        return "quoted-printable", qp.replace("\n", "\r\n")
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    # Slicing beats a regex split by ~3x on a 60 KB body.
    width = BASE64_LINE
    return "base64", "\r\n".join([encoded[i : i + width] for i in range(0, len(encoded), width)])


def _fill_text(part: MIMEPart, subtype: str, text: str, eight_bit: bool) -> None:
    cte, payload = encode_body(text, eight_bit=eight_bit)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload)


def build_message(
    message: OutboundMessage,
    sender: Sender,
    *,
    to: str | None = None,
    utf8: bool = False,
    date: datetime | None = None,
    eight_bit: bool = False,
    boundary: str | None = None,
) -> EmailMessage:
    """The EmailMessage for `message`.

    `to` overrides the visible recipient (the adapter passes the ASCII form of an IDN
    address). `utf8` builds for an SMTPUTF8 session, for a recipient whose local part is not
    ASCII. Raises ValueError for a reserved or malformed caller header (CR/LF included).
    """
    policy = POLICY_UTF8 if utf8 else POLICY
    msg = EmailMessage(policy=policy)
    msg["From"] = format_address(sender.address, sender.name)
    msg["To"] = to or message.to
    if message.subject:
        msg["Subject"] = encode_text(message.subject)
    msg["Date"] = email.utils.format_datetime(date or utc_now())
    msg["Message-ID"] = message_id_header(message.message_id, sender.message_id_domain)
    msg[OTKLIK_ID_HEADER] = str(message.message_id)
    if sender.reply_to:
        msg["Reply-To"] = sender.reply_to
    for name, value in message.headers.items():
        if not name.isascii() or not name.replace("-", "").isalnum():
            raise ValueError(f"header name {name!r} is not a valid field name")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the email adapter, not by the caller")
        if name in msg:
            # A per-message Reply-To (say) replaces the config's one instead of doubling it.
            del msg[name]
        msg[name] = encode_text(value)
    msg["MIME-Version"] = "1.0"
    if message.html is None:
        _fill_text(msg, "plain", message.text, eight_bit)
        return msg
    text_part = MIMEPart(policy=policy)
    _fill_text(text_part, "plain", message.text, eight_bit)
    html_part = MIMEPart(policy=policy)
    _fill_text(html_part, "html", message.html, eight_bit)
    # "=_" never occurs in quoted-printable or base64 output, so the boundary cannot collide
    # with an encoded body and the generator's search of the whole text for one is skipped.
    boundary = boundary or new_boundary()
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    msg.set_payload([text_part, html_part])
    return msg


def new_boundary() -> str:
    return f"=_otklik_{uuid.uuid4().hex}"


def _write(part: MIMEPart, policy: WirePolicy, out: list[bytes]) -> None:
    out.extend(policy.fold_binary(name, value) for name, value in part.raw_items())
    out.append(b"\r\n")
    # Not get_payload(): it re-encodes the whole body on every call to look for surrogates.
    payload = getattr(part, "_payload")  # noqa: B009  (private, not in the stubs)
    if isinstance(payload, list):
        boundary = part.get_boundary()
        # RFC 2046 5.1.1: the CRLF before a boundary belongs to the boundary, so each one
        # after a body starts with its own CRLF and the body keeps its final line break.
        delimiter = f"--{boundary}\r\n".encode("ascii")
        for sub in payload:
            if not isinstance(sub, MIMEPart):
                raise TypeError("a multipart payload holds MIME parts")
            out.append(delimiter)
            _write(sub, policy, out)
            delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
        return
    # encode_body gave every body CRLF line ends already.
    body = str(payload)
    if not body.endswith("\r\n"):
        body += "\r\n"
    eight_bit = part.get("Content-Transfer-Encoding") == "8bit"
    out.append(body.encode("utf-8" if policy.utf8 or eight_bit else "ascii"))


def flatten(msg: EmailMessage) -> bytes:
    """The wire bytes of `msg` (CRLF line ends); the SMTP client dot-stuffs them.

    The structure is fixed (one text part, or text and HTML in multipart/alternative) and
    the bodies are encoded already, so this writes them out directly: the standard
    generator re-splits every body line and costs more than building the message.
    """
    policy = msg.policy
    if not isinstance(policy, WirePolicy):
        raise TypeError("flatten() takes messages from build_message()")
    out: list[bytes] = []
    _write(msg, policy, out)
    return Canonical(b"".join(out))


class Canonical(bytes):
    """Wire bytes whose lines all end in CRLF, the last one included (what flatten makes).

    The SMTP client's line-ending pass (smtp_speedups) returns these untouched instead of
    scanning 80 KB twice per message.
    """
