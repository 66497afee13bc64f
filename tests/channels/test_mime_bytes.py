"""The direct byte writer gives exactly the email package's message (mime.build_message)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.channels.base import ChannelKind, OutboundMessage
from otklik.channels.mime import Sender, build_message, flatten
from otklik.channels.mime_bytes import body_bytes, render_message

DATE = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
BOUNDARY = "=_otklik_0123456789abcdef0123456789abcdef"
SENDERS = [
    Sender("news@shop.example.com", "shop.example.com"),
    Sender("news@shop.example.com", "mail.shop.example.com", "Магазин «Ромашка»", "help@shop.ru"),
    Sender("news@shop.example.com", "shop.example.com", 'Shop "Best", Inc.'),
]

# Text that reaches every encoding: ASCII, Cyrillic, emoji, bare CR/LF, dots, long words.
_pieces = st.sampled_from(
    ["a", "word ", "Привет ", "😀", "\n", "\r", "\r\n", ".", "=", " ", "x" * 120, "я" * 80, "\t"]
)
text = st.lists(_pieces, max_size=60).map("".join)
long_text = st.builds(lambda piece, n: piece * n, _pieces, st.integers(1, 1500))
header_value = st.sampled_from(
    [
        "<https://shop.example.com/u/" + "x" * 90 + ">, <mailto:u@shop.example.com>",
        "List-Unsubscribe=One-Click",
        "весенняя распродажа",
        "spring =?sale?= ",
        "a  b",
        "line\r\nBcc: spy@example.net",
        "y" * 1100,
    ]
)
header_name = st.sampled_from(
    ["List-Unsubscribe", "X-Campaign", "x-campaign", "Reply-To", "Bcc", "Bad Name", "Заголовок"]
)


def outbound(**fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": uuid.uuid4(),
        "kind": ChannelKind.EMAIL,
        "to": "ivan@example.org",
        "text": "Hello\n",
        "subject": "Hi",
        "html": "<p>Hello</p>",
    }
    values.update(fields)
    return OutboundMessage(**values)


def both(msg: OutboundMessage, sender: Sender, **options: Any) -> tuple[Any, Any]:
    """(reference bytes or its ValueError type, ours or our ValueError type)."""
    results = []
    for make in (
        lambda: flatten(build_message(msg, sender, date=DATE, boundary=BOUNDARY, **options)),
        lambda: render_message(msg, sender, date=DATE, boundary=BOUNDARY, **options),
    ):
        try:
            results.append(bytes(make()))
        except ValueError as exc:
            results.append(type(exc))
    return results[0], results[1]


@settings(max_examples=300, deadline=None)
@given(
    subject=text,
    plain=st.one_of(text, long_text),
    html=st.one_of(st.none(), text, long_text),
    headers=st.dictionaries(header_name, header_value, max_size=3),
    sender=st.sampled_from(SENDERS),
    eight_bit=st.booleans(),
    utf8=st.booleans(),
    to=st.sampled_from(["ivan@example.org", "иван@пример.рф"]),
)
def test_any_message_is_written_byte_for_byte_as_the_email_package_writes_it(
    subject: str,
    plain: str,
    html: str | None,
    headers: dict[str, str],
    sender: Sender,
    eight_bit: bool,
    utf8: bool,
    to: str,
) -> None:
    msg = outbound(to=to, subject=subject, text=plain, html=html, headers=headers)
    reference, ours = both(msg, sender, eight_bit=eight_bit, utf8=utf8)
    assert ours == reference


@settings(max_examples=100, deadline=None)
@given(plain=st.one_of(text, long_text), html=st.one_of(text, long_text), eight_bit=st.booleans())
def test_the_email_package_reads_back_the_same_bodies(
    plain: str, html: str, eight_bit: bool
) -> None:
    raw = render_message(
        outbound(text=plain, html=html), SENDERS[1], date=DATE, eight_bit=eight_bit
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = BytesParser(policy=policy.default).parsebytes(bytes(raw).replace(b"\r\n", b"\n"))
    assert isinstance(parsed, EmailMessage)
    got_plain, got_html = (part.get_content() for part in parsed.iter_parts())

    def lines(value: str) -> list[str]:
        # Line ends are the wire's, and an over-long 8-bit line was broken at a space.
        return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ").split()

    assert lines(got_plain) == lines(plain)
    assert lines(got_html) == lines(html)
    assert str(parsed["Subject"]) == "Hi"
    assert parsed["From"].addresses[0].display_name == "Магазин «Ромашка»"


def test_the_newsletter_shape_is_identical_with_a_real_mjml_email() -> None:
    from otklik.templates.content import compile_content
    from tests.templates.test_email import newsletter_context, newsletter_mjml

    compiled = compile_content(
        "email",
        {"subject": "{{ profile.traits.first_name }}, новинки", "body": newsletter_mjml()}
        | {"body_format": "mjml"},
    )
    rendered = compiled.render(newsletter_context(7))
    msg = outbound(subject=rendered.subject, text=rendered.text, html=rendered.html)
    for eight_bit in (False, True):
        reference, ours = both(msg, SENDERS[1], eight_bit=eight_bit)
        assert isinstance(ours, bytes)
        assert ours == reference


@pytest.mark.parametrize("eight_bit", [False, True])
def test_body_bytes_are_the_reference_payload_encoded(eight_bit: bool) -> None:
    from otklik.channels.mime import encode_body

    for sample in ["plain ascii\n", "Привет,\nмир", "я" * 600, " ".join(["слово"] * 400), ""]:
        cte, payload = encode_body(sample, eight_bit=eight_bit)
        assert body_bytes(sample, eight_bit=eight_bit) == (cte, payload.encode("utf-8"))


def test_a_header_with_a_line_break_is_refused_like_the_reference() -> None:
    msg = outbound(headers={"X-Campaign": "spring\r\nBcc: spy@example.net"})
    with pytest.raises(ValueError, match="line break"):
        render_message(msg, SENDERS[0])
