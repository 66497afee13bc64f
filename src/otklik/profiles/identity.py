"""Identifier types, their normalisation, and which identifiers an event carries.

Matching is only as good as normalisation: `Ivan@Mail.RU ` and `ivan@mail.ru` are one person,
and so are `8 (912) 345-67-89` and `+79123456789`. Junk values (`test@test.com`,
`79777777777`) are recognised after normalisation and never link anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
TELEGRAM = "telegram"
PUSH_TOKEN = "push_token"
LOYALTY_CARD = "loyalty_card"
EXTERNAL_PREFIX = "external:"

# Lower wins: the identifier that decides which profile an event belongs to.
PRIORITY = {
    USER_ID: 0,
    EMAIL: 20,
    PHONE: 30,
    LOYALTY_CARD: 40,
    TELEGRAM: 50,
    PUSH_TOKEN: 60,
    ANONYMOUS_ID: 90,
}
EXTERNAL_PRIORITY = 10
BASE_TYPES = tuple(PRIORITY)

TRAIT_KEYS = {  # in PRIORITY order
    EMAIL: ("email",),
    PHONE: ("phone", "phone_number", "phoneNumber", "mobile"),
    LOYALTY_CARD: ("loyalty_card", "loyaltyCard"),
    TELEGRAM: ("telegram_chat_id", "telegramChatId", "telegram"),
}
EXTERNAL_TYPE = re.compile(r"^[a-z0-9_.-]{1,32}$")


def priority(kind: str) -> int:
    return EXTERNAL_PRIORITY if kind.startswith(EXTERNAL_PREFIX) else PRIORITY.get(kind, 100)


def is_known_type(kind: str) -> bool:
    if kind.startswith(EXTERNAL_PREFIX):
        return bool(EXTERNAL_TYPE.match(kind[len(EXTERNAL_PREFIX) :]))
    return kind in PRIORITY


@lru_cache(maxsize=65536)
def normalise_email(value: str) -> str | None:
    text = value.strip()
    if not text or len(text) > 320:
        return None
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return info.normalized.lower()


_DIGITS = re.compile(r"\D+")


@lru_cache(maxsize=65536)
def normalise_phone(value: str, region: str) -> str | None:
    text = value.strip()
    digits = _DIGITS.sub("", text)
    if not 5 <= len(digits) <= 15:
        return None
    candidates = [text]
    if not text.startswith("+"):
        # "7-912-345-6789" and "79123456789" carry the country code without the plus.
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalise(kind: str, value: Any, region: str) -> str | None:
    """The canonical form of one identifier, or None when it is not usable."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    if not text:
        return None
    if kind == EMAIL:
        return normalise_email(text)
    if kind == PHONE:
        return normalise_phone(text, region)
    if len(text) > 512:
        return None
    return text


@dataclass(frozen=True)
class Junk:
    """Values that are recognised as placeholders and never used to match anyone."""

    values: frozenset[str]

    @classmethod
    def build(cls, raw: Iterable[str], region: str) -> Junk:
        out: set[str] = set()
        for item in raw:
            text = item.strip().lower()
            if not text:
                continue
            out.add(text)
            for kind in (EMAIL, PHONE):
                norm = normalise(kind, text, region)
                if norm:
                    out.add(norm.lower())
        return cls(frozenset(out))

    def __contains__(self, value: str) -> bool:
        return value.lower() in self.values


class Ident(NamedTuple):
    """One identifier; equal to (and hashed as) the `(type, value)` key the resolver uses."""

    type: str
    value: str

    @property
    def priority(self) -> int:
        return priority(self.type)


SIMPLE_TYPES = frozenset({"track", "page", "screen", "group"})
# Context keys that add identifiers or change what the event does to its profile. A `device`
# counts only when it carries a push token: most app events describe their device, and
# decoding all of those for nothing cost the resolver a fifth of the events in the demo shop.
CONTEXT_KEYS = ("traits", "externalIds", "active")


def needs_payload(
    kind: str, name: str | None, payload: dict[str, Any], rich: frozenset[str]
) -> bool:
    """Whether resolving this event needs more than its userId and anonymousId columns.

    Most events (page views, product views) need nothing else, and not decoding their
    payloads is a large part of what lets the resolver keep up with ingest.
    """
    if kind not in SIMPLE_TYPES or (name is not None and name in rich):
        return True
    context = payload.get("context")
    if not isinstance(context, dict):
        return False
    for key in CONTEXT_KEYS:
        if key in context:
            return True
    device = context.get("device")
    return isinstance(device, dict) and bool(device.get("token"))


def identifiers_of(payload: dict[str, Any], region: str, junk: Junk) -> list[Ident]:
    """Every usable identifier of one normalised message, most authoritative first."""
    found: dict[tuple[str, str], Ident] = {}

    def add(kind: str, raw: Any) -> None:
        value = normalise(kind, raw, region)
        if value is None or value in junk:
            return
        found.setdefault((kind, value), Ident(kind, value))

    # Added in PRIORITY order, so the result needs no sort.
    add(USER_ID, payload.get("userId"))
    context = payload.get("context") or {}
    external = context.get("externalIds")
    if isinstance(external, list):
        for entry in external:
            if isinstance(entry, dict) and isinstance(entry.get("type"), str):
                kind = EXTERNAL_PREFIX + entry["type"].strip().lower()
                if is_known_type(kind):
                    add(kind, entry.get("id"))
    sources = [t for t in (payload.get("traits"), context.get("traits")) if isinstance(t, dict)]
    for kind, keys in TRAIT_KEYS.items():
        for traits in sources:
            for key in keys:
                if key in traits:
                    add(kind, traits[key])
    device = context.get("device")
    if isinstance(device, dict) and device.get("token"):
        add(PUSH_TOKEN, device.get("token"))
    add(ANONYMOUS_ID, payload.get("anonymousId"))
    return list(found.values())


def simple_identifiers(user_id: str | None, anonymous_id: str | None, junk: Junk) -> list[Ident]:
    """The identifiers of an event whose payload adds none (see needs_payload)."""
    out = []
    for kind, raw in ((USER_ID, user_id), (ANONYMOUS_ID, anonymous_id)):
        if raw:
            value = raw.strip()
            if value and len(value) <= 512 and value not in junk:
                out.append(Ident(kind, value))
    return out


def alias_candidates(previous_id: str, junk: Junk) -> list[Ident]:
    """An alias's previousId may be an old user id or an anonymous id: try both, in order."""
    text = previous_id.strip()
    if not text or text in junk:
        return []
    return [Ident(USER_ID, text), Ident(ANONYMOUS_ID, text)]
