"""SMS text and numbers: GSM-7 vs UCS-2, part counting, splitting, encoding, E.164 phones.

Shared by both SMS adapters (SMPP and HTTP gateway) and by the template editor's live part
counter. GSM 03.38 text that needs nothing outside the default alphabet and its extension
table travels as GSM-7 (160 septets, or 153 a part once a concatenation header takes 7);
anything else, Cyrillic included, travels as UCS-2 (70 UTF-16 units, or 67 a part). An
extension character costs two septets (ESC + code) and an astral character (emoji) two
UTF-16 units; neither pair is ever split across parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers

from otklik.channels.base import InvalidAddress

SmsEncoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE: Final = 160
GSM7_PER_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PER_PART: Final = 67
# The 8-bit reference in the concatenation header counts parts in one byte.
MAX_PARTS: Final = 255

GSM7_ESCAPE: Final = 0x1B

# GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to the extension table,
# not a character, so its slot holds a placeholder that no text can contain.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\ufffeÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128
GSM7_BASIC: Final[dict[str, int]] = {ch: i for i, ch in enumerate(_BASIC) if i != GSM7_ESCAPE}
GSM7_EXTENSION: Final[dict[str, int]] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_BY_CODE: Final = {i: ch for ch, i in GSM7_BASIC.items()}
_EXTENSION_BY_CODE: Final = {i: ch for ch, i in GSM7_EXTENSION.items()}


@dataclass(frozen=True)
class SmsParts:
    encoding: SmsEncoding
    # Septets for GSM-7 (extension characters count 2); UTF-16 code units for UCS-2.
    units: int
    parts: int
    # Units one part holds: the single-message limit when parts == 1.
    per_part: int
    # Units still free in the last part before another part is needed.
    remaining: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding_of(text: str) -> SmsEncoding:
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _units(ch: str, encoding: SmsEncoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _limits(encoding: SmsEncoding) -> tuple[int, int]:
    return (GSM7_SINGLE, GSM7_PER_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PER_PART)


def _split(text: str, encoding: SmsEncoding) -> list[tuple[str, int]]:
    """Segments with their unit counts; cuts only between characters, so pairs stay whole."""
    single, per_part = _limits(encoding)
    total = sum(_units(ch, encoding) for ch in text)
    if total <= single:
        return [(text, total)]
    segments: list[tuple[str, int]] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        cost = _units(ch, encoding)
        if used + cost > per_part:
            segments.append((text[start:i], used))
            start, used = i, 0
        used += cost
    segments.append((text[start:], used))
    return segments


def split_parts(text: str) -> list[str]:
    """The text of each SMS part, in order; one element when the text fits one message."""
    return [segment for segment, _ in _split(text, encoding_of(text))]


def count_parts(text: str) -> SmsParts:
    encoding = encoding_of(text)
    segments = _split(text, encoding)
    single, multi = _limits(encoding)
    units = sum(used for _, used in segments)
    per_part = single if len(segments) == 1 else multi
    return SmsParts(
        encoding=encoding,
        units=units,
        parts=len(segments),
        per_part=per_part,
        remaining=per_part - segments[-1][1],
    )


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM 03.38 septets, one per octet, as SMPP carries them with data_coding 0.

    Raises ValueError for a character outside the alphabet and its extension table.
    """
    out = bytearray()
    for ch in text:
        code = GSM7_BASIC.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = GSM7_EXTENSION.get(ch)
        if ext is None:
            raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")
        out += bytes((GSM7_ESCAPE, ext))
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """Text from unpacked septets; a dangling or unknown escape is a ValueError."""
    chars: list[str] = []
    it = iter(data)
    for code in it:
        if code == GSM7_ESCAPE:
            ext = next(it, None)
            if ext is None or ext not in _EXTENSION_BY_CODE:
                raise ValueError(f"bad GSM 03.38 escape sequence at septet {len(chars)}")
            chars.append(_EXTENSION_BY_CODE[ext])
        elif code in _BASIC_BY_CODE:
            chars.append(_BASIC_BY_CODE[code])
        else:
            raise ValueError(f"0x{code:02x} is not a GSM 03.38 septet")
    return "".join(chars)


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE, what handsets decode for data_coding 8 (astral characters as surrogates)."""
    return text.encode("utf-16-be")


def decode_ucs2(data: bytes) -> str:
    return data.decode("utf-16-be")


_MOBILE_TYPES: Final = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def normalise_phone(raw: str, default_region: str = "RU") -> str:
    """E.164 ('+79123456789') for a number that can receive SMS.

    National forms are read in `default_region` (in Russia '8 912 …' is '+7 912 …').
    Codes: `invalid_phone` (not a valid number), `phone_not_mobile` (a landline, which
    cannot receive SMS).
    """
    value = raw.strip()
    if not value:
        raise InvalidAddress("invalid_phone", "the phone number is empty")
    try:
        number = phonenumbers.parse(value, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress("invalid_phone", f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress("invalid_phone", "not a valid phone number for its country")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidAddress("phone_not_mobile", "the number is not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
