"""The faster line-ending and dot-stuffing passes give exactly aiosmtplib's bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otklik.channels.smtp_speedups import _PeriodQuoter, normalise_line_endings, originals

AWKWARD = [
    b"",
    b".",
    b"..\r\n.",
    b"a\nb\rc\r\nd",
    b"\r\r\n\n\r",
    b".starts with a dot\r\n.and another\n.lf only\r.cr only",
    b"no ending",
    "Привет\n.\n".encode(),
]


def library(message: bytes) -> bytes:
    normalise, period = originals()
    out = normalise(message)  # type: ignore[operator]
    return period.sub(b"..", out)


def ours(message: bytes) -> bytes:
    return _PeriodQuoter().sub(b"..", normalise_line_endings(message))


def test_awkward_payloads_match_the_library() -> None:
    for message in AWKWARD:
        assert ours(message) == library(message), message


@given(st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n", b"..", b" "]), max_size=40))
def test_any_mix_of_line_breaks_and_dots_matches_the_library(parts: list[bytes]) -> None:
    message = b"".join(parts)
    assert ours(message) == library(message)


def test_our_own_wire_bytes_skip_the_scan_and_stay_identical() -> None:
    from otklik.channels.mime import Canonical

    raw = Canonical(b"Subject: x\r\n\r\nline\r\n.dot\r\n")
    assert normalise_line_endings(raw) is raw
    assert ours(raw) == library(bytes(raw))


def test_eight_bit_bodies_only_when_every_line_fits_smtp() -> None:
    from otklik.channels.mime import encode_body

    cte, payload = encode_body("Привет,\nмир", eight_bit=True)
    assert (cte, payload) == ("8bit", "Привет,\r\nмир")
    assert encode_body("Привет, мир", eight_bit=False)[0] == "base64"
    long_word = "я" * 600  # 1,200 octets with no space: cannot be broken safely
    assert encode_body(long_word, eight_bit=True)[0] == "base64"
    # One long line of words (what MJML writes) is broken at spaces, never mid-word.
    words = " ".join(["слово"] * 400)
    cte, payload = encode_body(words, eight_bit=True)
    assert cte == "8bit"
    lines = payload.split("\r\n")
    assert max(len(line.encode()) for line in lines) <= 998
    assert " ".join(lines) == words
    cte, payload = encode_body("a\nb" + "é" * 2 + "x" * 200, eight_bit=False)
    assert cte == "quoted-printable"
    assert "\r\n" in payload and "\n" not in payload.replace("\r\n", "")
