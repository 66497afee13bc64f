"""Finding customers for the console: one search box for any identifier or trait, and filters.

What a person types is turned into a `Search` once, here, so the repository only renders it:
- any text is tried as an exact identifier value (a user id, an anonymous id, a loyalty card,
  an external id...) and, when it is a UUID, as a profile id;
- two or more characters are a case-insensitive fragment of an email;
- text made of digits and phone punctuation is a fragment of a phone, matched against the stored
  E.164 values: "8 (912) 345-67-89", "+7 912 345" and "9123456" all find +79123456789;
- two or more characters are a case-insensitive fragment of the name traits, in any script.

Case folding of names happens in Python: SQLite's lower() and LIKE fold only ASCII, and the
test PostgreSQL runs with the C locale, where lower() leaves Cyrillic alone too. Each letter of
the query becomes a class of its spellings ("о" -> [оО]), rendered as a GLOB (SQLite) or a
regular expression (PostgreSQL), so no per-row function is needed and both stores agree.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from otklik.kit.time import iso
from otklik.profiles import search_repository as repo
from otklik.profiles.identity import normalise_email, normalise_phone
from otklik.profiles.service import PageOf, Scope, aggregates, cursor_after, page_of

PAGE_SIZE = 50
MIN_FRAGMENT = 2
MIN_PHONE_DIGITS = 3
MAX_QUERY = 200
MAX_SEEN_DAYS = 3650
# Regions whose national numbers start with the trunk prefix 8 where the country code is 7.
TRUNK_8_TO_7 = frozenset({"RU", "KZ"})
# Spellings treated as one letter when searching names: people type "е" for "ё".
SAME_LETTER = {"е": "её", "ё": "её"}
NAME_KEYS = (("name",), ("first_name", "last_name"), ("firstName", "lastName"))

_PHONE_TEXT = re.compile(r"^\+?[\d\s().\-]+$")
_NON_DIGITS = re.compile(r"\D+")
_SPACES = re.compile(r"\s+")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
# JSON escapes these inside strings, so raw text does not hold them as typed.
_JSON_ESCAPED = frozenset('"\\')
_GLOB_SPECIAL = frozenset("*?[")
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


@dataclass(frozen=True)
class Filters:
    identified: bool = False
    has_email: bool = False
    has_phone: bool = False
    has_orders: bool = False
    seen_days: int | None = None

    @property
    def active(self) -> bool:
        return any(
            (self.identified, self.has_email, self.has_phone, self.has_orders, self.seen_days)
        )


@dataclass(frozen=True)
class Search:
    """What one search box text may match; empty parts are not searched."""

    text: str
    exact_values: tuple[str, ...] = ()
    profile_id: uuid.UUID | None = None
    email_fragment: str | None = None  # a LIKE pattern over lower-case emails
    phone_patterns: tuple[str, ...] = ()  # LIKE patterns over E.164 values
    name_classes: tuple[tuple[str, ...], ...] = field(default=())


def clean(text: str | None) -> str:
    """The query as searched: trimmed, inner whitespace collapsed, bounded in length."""
    return _SPACES.sub(" ", (text or "").strip())[:MAX_QUERY]


def like_escape(text: str) -> str:
    """Text for a LIKE pattern with `\\` as the escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def phone_patterns(text: str, region: str) -> tuple[str, ...]:
    """LIKE patterns over stored E.164 phones for text that looks like (part of) a phone."""
    text = text.strip()
    if not _PHONE_TEXT.match(text):
        return ()
    digits = _NON_DIGITS.sub("", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return ()
    full = normalise_phone(text, region) if len(digits) >= 10 else None
    if full is not None:
        return (full,)
    if text.startswith("+"):
        return (f"+{digits}%",)
    patterns = [f"%{digits}%"]
    if digits.startswith("8") and region.upper() in TRUNK_8_TO_7 and len(digits) > 1:
        # "8 912 ..." is the domestic way to write "+7 912 ...".
        patterns.append(f"+7{digits[1:]}%")
    return tuple(patterns)


def letter_class(char: str) -> tuple[str, ...]:
    """Every spelling of one character that a case-insensitive search accepts."""
    base = SAME_LETTER.get(char.lower(), char.lower())
    spellings: list[str] = []
    for letter in base:
        for variant in (letter, letter.upper(), letter.lower()):
            if len(variant) == 1 and variant not in spellings:
                spellings.append(variant)
    if char not in spellings:
        spellings.append(char)
    return tuple(spellings)


def name_classes(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(letter_class(char) for char in text)


def glob_pattern(classes: tuple[tuple[str, ...], ...]) -> str:
    """A SQLite GLOB matching a string that contains the classes in order."""
    parts = []
    for spellings in classes:
        if len(spellings) == 1 and spellings[0] not in _GLOB_SPECIAL:
            parts.append(spellings[0])
        else:
            # A one-letter class is how GLOB escapes *, ? and [; "]" and "^" never get here
            # inside a larger class, because only letters have more than one spelling.
            parts.append("[" + "".join(spellings) + "]")
    return "*" + "".join(parts) + "*"


def regex_pattern(classes: tuple[tuple[str, ...], ...]) -> str:
    """A PostgreSQL regular expression (unanchored) for the same classes."""
    parts = []
    for spellings in classes:
        if len(spellings) == 1:
            char = spellings[0]
            parts.append("\\" + char if char in _REGEX_SPECIAL else char)
        else:
            parts.append("[" + "".join(spellings) + "]")
    return "".join(parts)


def raw_prefilters(text: str) -> list[tuple[str, ...]]:
    """LIKE patterns over a profile's raw traits JSON, each group needed for a name match.

    SQLite's LIKE folds only ASCII, so each run of letters in the query is looked for without
    its first letter (the one a name capitalises), in lower case or in upper case: "роман"
    needs "%оман%" or "%ОМАН%", which "Роман" and "РОМАН" both have. е and ё become "_".
    A name with a capital inside a word of a non-Latin script ("МакДональд") is missed by a
    query spanning that capital; ASCII letters are folded by LIKE itself, so Latin names are
    never missed. Queries with characters JSON escapes get no prefilter.
    """
    if any(char in _JSON_ESCAPED for char in text):
        return []
    groups: list[tuple[str, ...]] = []
    for run in _LETTER_RUNS.findall(text):
        body = run[1:] or run
        variants = []
        for cased in (body.lower(), body.upper()):
            if len(cased) != len(body):
                break  # a letter that changes length when cased (ß): no safe pattern
            escaped = like_escape(cased)
            variants.append("%" + re.sub("[еёЕЁ]", "_", escaped) + "%")
        else:
            groups.append(tuple(dict.fromkeys(variants)))
    return groups


def parse(text: str | None, region: str) -> Search | None:
    """The search for one box's text, or None when there is nothing to search for."""
    query = clean(text)
    if not query:
        return None
    try:
        profile_id: uuid.UUID | None = uuid.UUID(query)
    except ValueError:
        profile_id = None
    exact = {query}
    email = normalise_email(query) if "@" in query else None
    if email:
        exact.add(email)
    long_enough = len(query) >= MIN_FRAGMENT
    has_word = any(len(run) >= MIN_FRAGMENT for run in _LETTER_RUNS.findall(query))
    fragment = query.lower()
    return Search(
        text=query,
        exact_values=tuple(sorted(exact)),
        profile_id=profile_id,
        email_fragment=f"%{like_escape(fragment)}%" if long_enough and " " not in query else None,
        phone_patterns=phone_patterns(query, region),
        # A name has a word of two letters or more; "u-000124" or "9123456" is an id or a
        # phone, not worth reading every profile's traits for.
        name_classes=name_classes(query) if has_word else (),
    )


def parse_filters(
    *,
    identified: bool = False,
    has_email: bool = False,
    has_phone: bool = False,
    has_orders: bool = False,
    seen_days: int | None = None,
) -> Filters:
    days = seen_days if seen_days and seen_days > 0 else None
    return Filters(
        identified,
        has_email,
        has_phone,
        has_orders,
        min(days, MAX_SEEN_DAYS) if days else None,
    )


def customers_page(
    scope: Scope,
    *,
    q: str | None,
    filters: Filters,
    cursor: str | None,
    now: datetime,
    limit: int = PAGE_SIZE,
) -> PageOf:
    """Live (not merged-away, not erased) customers newest first, narrowed by search and filters."""
    search = parse(q, scope.config.region)
    after = cursor_after(cursor, uuid.UUID)
    seen_since = now - timedelta(days=filters.seen_days) if filters.seen_days else None
    rows = repo.find_customers(
        scope.conn,
        scope.workspace_id,
        search=search,
        filters=filters,
        seen_since=seen_since,
        after=after,
        limit=limit + 1,
    )
    return page_of(rows, limit, lambda r: [iso(r.created_at), str(r.id)], summary)


def display_name(traits: dict[str, Any] | None) -> str | None:
    """The name a person goes by, from the usual name traits."""
    traits = traits or {}
    name = traits.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    for first_key, last_key in NAME_KEYS[1:]:
        parts = [traits.get(first_key), traits.get(last_key)]
        joined = " ".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p))
        if joined.strip():
            return joined.strip()
    return None


def summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": display_name(row.traits),
        "email": row.email,
        "phone": row.phone,
        "created_at": row.created_at,
        **aggregates(row),
    }
