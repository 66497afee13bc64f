"""The demo shop's people: who they are, how they wrote their contacts, when they signed up.

The contact data is messy on purpose, because real sign-up forms are and identity resolution
must cope:

- ~10% of emails are upper case, Mixed.Case or carry surrounding spaces;
- phones come in five formats: `+79123456789`, `8 (912) 345-67-89`, `+7 912 345 67 89`,
  `89123456789`, `7-912-345-6789`;
- ~2% of people are a second account of another person (`duplicate_of`): a different user_id
  with the same email written differently, or the same phone in another format;
- ~0.5% use junk contacts shared by unrelated people (`JUNK_EMAILS`, `JUNK_PHONES`), which must
  never merge profiles;
- ~10% have no email and ~25% no phone (never both); ~30% gave no birthday;
- ~8% of the Russian speakers wrote their city oddly (`москва`, `г. Москва`, `МОСКВА`).

Emails use real public mail domains and phones look like real Russian mobiles, so a random one
may belong to a real person: send demo data through fake channel providers only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from otklik.demo.identities import (
    JUNK_EMAILS,
    JUNK_PHONES,
    Identity,
    between,
    format_phone,
    make_email,
    make_identity,
    mess_email,
    pick,
    pick_cum,
    random_phone_style,
)

if TYPE_CHECKING:
    from otklik.demo.generator import DemoConfig

# Share of people active at each local hour: evening peak, quiet nights.
_HOURS_CUM = list(
    accumulate(
        [10, 5, 3, 2, 2, 3, 8, 15, 25, 30, 32, 35, 40, 40, 35, 33, 35, 40, 50, 60, 65, 60, 45, 25]
    )
)
_BUYER_TYPES = ["browser", "one_time", "occasional", "loyal"]
_BUYER_CUM = list(accumulate([35, 30, 25, 10]))
_DEVICE_KINDS = ["desktop", "mobile_web", "ios_app", "android_app"]
_DEVICE_CUM = list(accumulate([45, 35, 8, 12]))

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def local_moment(rng: random.Random, day_ms: int, utc_offset: int) -> int:
    """A moment on the given UTC day at a local hour people really shop at."""
    hour = pick_cum(rng, _HOURS_CUM)
    return day_ms + (hour - utc_offset) * HOUR_MS + int(rng.random() * HOUR_MS)


@dataclass(frozen=True, slots=True)
class Person:
    """One human behind the demo shop's events, with the ground truth an importer can't see.

    Traits of `anonymous_only` people are never sent: they only ever browse anonymously.
    `duplicate_of` names the user_id whose owner opened this second account.
    """

    user_id: str
    anonymous_ids: tuple[str, ...]  # one per device, primary first
    devices: tuple[str, ...]  # "desktop" | "mobile_web" | "ios_app" | "android_app"
    first_name: str
    last_name: str
    gender: str
    email: str | None  # exactly as typed, messy
    phone: str | None  # exactly as typed, in one of five formats
    birthday: date | None
    city: str
    timezone: str
    utc_offset: int
    locale: str
    first_seen_at: datetime
    signup_at: datetime | None  # None for anonymous_only
    buyer_type: str  # "browser" | "one_time" | "occasional" | "loyal"
    anonymous_only: bool
    duplicate_of: str | None
    junk_contact: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def anonymous_id(rng: random.Random) -> str:
    """A UUIDv4 string like analytics.js makes, from the seeded rng (str(uuid.UUID) is slow)."""
    bits = (
        rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    )
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_people(cfg: DemoConfig) -> list[Person]:
    """`cfg.customers` people; the same cfg always gives the same people."""
    rng = random.Random(f"otklik-demo:{cfg.seed}:people")
    n = cfg.customers
    start_ms = to_ms(cfg.start)
    span_days = max(1, int(cfg.days * 0.85))  # late arrivals still get a few weeks of history
    end_ms = start_ms + cfg.days * DAY_MS - 2 * HOUR_MS  # sign-ups leave time for a visit
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    anonymous_only = set(rng.sample(range(n), round(n * cfg.anonymous_only_share)))
    known = [i for i in range(n) if i not in anonymous_only]
    n_dupes = max(1, round(n * 0.02)) if len(known) >= 4 else 0
    n_junk = max(1, round(n * 0.005)) if len(known) >= 4 else 0
    # Kept off the first few people so every second account has an earlier original to copy.
    special = rng.sample(known[3:], n_dupes + n_junk)
    dupes, junk = set(special[:n_dupes]), set(special[n_dupes:])
    people: list[Person] = []
    originals: list[Person] = []  # who a second account may copy: signed up, real contacts
    for i in range(n):
        ident = make_identity(rng, cfg.start.date(), used_phones)
        email: str | None = make_email(rng, ident, used_emails)
        phone: str | None = format_phone(ident.phone_digits, random_phone_style(rng))
        dice = rng.random()
        if dice < 0.10:
            email = None
        elif dice < 0.35:
            phone = None
        if email is not None and rng.random() < 0.1:
            email = mess_email(rng, email)
        duplicate_of = None
        if i in dupes:
            ident, email, phone, duplicate_of = _second_account(rng, ident, pick(rng, originals))
        if i in junk:
            email = pick(rng, [*JUNK_EMAILS, email])
            phone = pick(rng, JUNK_PHONES) if email not in JUNK_EMAILS else phone
        day = start_ms + int(rng.random() * span_days) * DAY_MS
        first_seen = local_moment(rng, day - day % DAY_MS, ident.utc_offset)
        first_seen = max(start_ms, min(first_seen, end_ms - HOUR_MS))
        signup_ms = None
        if i not in anonymous_only:
            signup_ms = first_seen + between(rng, 60_000, 600_000)  # within the first visit
            if rng.random() < 0.6:  # ...or on a later day, at an hour people shop at
                day = first_seen + int(rng.expovariate(1 / 5) * DAY_MS)
                later = local_moment(rng, day - day % DAY_MS, ident.utc_offset)
                signup_ms = max(signup_ms, min(later, end_ms))
        n_devices = 1 if i in anonymous_only else 1 + pick_cum(rng, [60, 90, 100])
        devices = tuple(_DEVICE_KINDS[pick_cum(rng, _DEVICE_CUM)] for _ in range(n_devices))
        buyer = _BUYER_TYPES[pick_cum(rng, _BUYER_CUM)]
        if i in anonymous_only:
            buyer = "one_time" if rng.random() < 0.1 else "browser"  # guest checkout
        locale = "ru-RU" if ident.russian else pick(rng, ["en-US", "en-US", "en-GB"])
        person = Person(
            user_id=f"u-{i + 1:06d}",
            anonymous_ids=tuple(anonymous_id(rng) for _ in devices),
            devices=devices,
            first_name=ident.first_name,
            last_name=ident.last_name,
            gender=ident.gender,
            email=email,
            phone=phone,
            birthday=ident.birthday,
            city=ident.city,
            timezone=ident.timezone,
            utc_offset=ident.utc_offset,
            locale=locale,
            first_seen_at=from_ms(first_seen),
            signup_at=None if signup_ms is None else from_ms(signup_ms),
            buyer_type=buyer,
            anonymous_only=i in anonymous_only,
            duplicate_of=duplicate_of,
            junk_contact=i in junk,
        )
        people.append(person)
        if signup_ms is not None and duplicate_of is None and i not in junk:
            originals.append(person)
    return people


def _second_account(
    rng: random.Random, ident: Identity, original: Person
) -> tuple[Identity, str | None, str | None, str]:
    """The original's owner again: same name, same email or phone typed differently."""
    same = Identity(
        original.first_name,
        original.last_name,
        original.gender,
        original.locale == "ru-RU",
        original.birthday if rng.random() < 0.5 else None,
        original.city,
        original.timezone,
        original.utc_offset,
        ident.phone_digits,
    )
    if original.email is not None and (original.phone is None or rng.random() < 0.5):
        clean = original.email.strip().lower()
        email = clean if clean != original.email else mess_email(rng, clean)
        return same, email, None, original.user_id
    assert original.phone is not None  # people always keep at least one contact
    digits = "".join(ch for ch in original.phone if ch.isdigit())[-10:]
    style = random_phone_style(rng)
    while format_phone(digits, style) == original.phone:
        style = (style + 1) % 5
    return same, None, format_phone(digits, style), original.user_id
