"""SMS part counting, splitting, encoding and phone numbers, as editor and adapters see them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.channels.base import InvalidAddress
from otklik.channels.sms_parts import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsParts,
    count_parts,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    normalise_phone,
    split_parts,
)

GSM_CHARS = "".join(GSM7_BASIC) + "".join(GSM7_EXTENSION)


def test_160_latin_characters_fit_one_gsm7_message() -> None:
    parts = count_parts("a" * 160)
    assert (parts.encoding, parts.units, parts.parts, parts.per_part, parts.remaining) == (
        "GSM-7",
        160,
        1,
        160,
        0,
    )


def test_161_latin_characters_need_two_parts_of_153() -> None:
    parts = count_parts("a" * 161)
    assert (parts.parts, parts.per_part, parts.remaining) == (2, 153, 2 * 153 - 161)


def test_cyrillic_is_ucs2_with_70_then_67_a_part() -> None:
    assert count_parts("я" * 70) == SmsParts("UCS-2", 70, 1, 70, 0)
    two = count_parts("я" * 71)
    assert (two.encoding, two.parts, two.per_part, two.remaining) == ("UCS-2", 2, 67, 63)
    assert count_parts("я" * 134).parts == 2
    assert count_parts("я" * 135).parts == 3


def test_one_cyrillic_letter_turns_a_latin_text_into_ucs2() -> None:
    assert count_parts("Hello" * 10 + "ж").encoding == "UCS-2"


def test_extension_characters_cost_two_septets() -> None:
    parts = count_parts("€" * 80)
    assert (parts.encoding, parts.units, parts.parts) == ("GSM-7", 160, 1)
    assert count_parts("[" * 81).parts == 2
    for ch in "^{}\\[~]|€":
        assert count_parts(ch).units == 2, ch


def test_gsm_basic_table_specials_cost_one_septet() -> None:
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡§¿ÄÖÑÜäöñüà"
    parts = count_parts(text)
    assert (parts.encoding, parts.units) == ("GSM-7", len(text))


def test_characters_outside_the_gsm_table_force_ucs2() -> None:
    for ch in "`çÀ’“":
        assert count_parts("a" + ch).encoding == "UCS-2", ch


def test_emoji_count_two_ucs2_units() -> None:
    parts = count_parts("😀" * 35)
    assert (parts.encoding, parts.units, parts.parts) == ("UCS-2", 70, 1)
    assert count_parts("😀" * 36).parts == 2


def test_split_never_breaks_an_escape_pair() -> None:
    # 152 plain septets then '€' (2 septets) does not fit the 153 of part one.
    text = "a" * 152 + "€" + "b" * 10
    parts = split_parts(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert count_parts(text).parts == 2


def test_split_never_breaks_a_surrogate_pair() -> None:
    text = "я" * 66 + "😀" + "я" * 10
    parts = split_parts(text)
    assert parts[0] == "я" * 66
    assert parts[1].startswith("😀")
    for part in parts:
        decode_ucs2(encode_ucs2(part))  # each part decodes alone


def test_empty_text_is_one_empty_part() -> None:
    assert count_parts("") == SmsParts("GSM-7", 0, 1, 160, 160)


def test_gsm7_round_trips_and_rejects_foreign_characters() -> None:
    text = "Price: 5€ [sale] {x} ~ | ^ \\ @£$ ¡Hola! ¿Qué? §"
    assert decode_gsm7(encode_gsm7(text)) == text
    assert encode_gsm7("€") == b"\x1be"
    with pytest.raises(ValueError):
        encode_gsm7("привет")
    with pytest.raises(ValueError):
        decode_gsm7(b"abc\x1b")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=700))
def test_any_text_splits_into_parts_that_fit_and_rejoin(text: str) -> None:
    parts = count_parts(text)
    segments = split_parts(text)
    assert "".join(segments) == text
    assert len(segments) == parts.parts
    assert parts.parts * parts.per_part >= parts.units
    assert 0 <= parts.remaining <= parts.per_part
    for segment in segments:
        assert count_parts(segment).units <= parts.per_part
    if parts.encoding == "GSM-7":
        assert parts.units == len(encode_gsm7(text))
    else:
        assert parts.units == len(encode_ucs2(text)) // 2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=GSM_CHARS, max_size=400))
def test_gsm_texts_use_single_limit_160_and_multi_153(text: str) -> None:
    parts = count_parts(text)
    assert parts.encoding == "GSM-7"
    assert decode_gsm7(encode_gsm7(text)) == text
    if parts.units <= 160:
        assert (parts.parts, parts.per_part) == (1, 160)
    else:
        assert parts.parts >= 2 and parts.per_part == 153


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x400, max_codepoint=0x4FF), max_size=300))
def test_cyrillic_texts_use_single_limit_70_and_multi_67(text: str) -> None:
    parts = count_parts(text)
    if not text:
        return
    assert parts.encoding == "UCS-2"
    if len(text) <= 70:
        assert parts.parts == 1
    else:
        assert parts.parts == -(-len(text) // 67)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 (912) 345-67-89", "+79123456789"),
        ("+7 912 345 67 89", "+79123456789"),
        ("79123456789", "+79123456789"),
        ("9123456789", "+79123456789"),
        ("+1 201 555 0123", "+12015550123"),
    ],
)
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw, "RU") == expected


@pytest.mark.parametrize("raw", ["", "   ", "junk", "12", "+7 912 345", "8 (000) 000-00-00"])
def test_junk_phone_numbers_are_rejected_as_invalid_phone(raw: str) -> None:
    with pytest.raises(InvalidAddress) as err:
        normalise_phone(raw, "RU")
    assert err.value.code == "invalid_phone"


def test_a_landline_cannot_receive_sms() -> None:
    with pytest.raises(InvalidAddress) as err:
        normalise_phone("+7 495 123-45-67", "RU")
    assert err.value.code == "phone_not_mobile"
