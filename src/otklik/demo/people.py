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
- ~8% wrote the city oddly (`москва`, `г. Москва`).

Emails use real public mail domains and phones look like real Russian mobiles, so a random one
may belong to a real person: send demo data through fake channel providers only.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from otklik.demo.generator import DemoConfig

JUNK_EMAILS = ("test@test.com", "asdf@asdf.ru")
JUNK_PHONES = ("79777777777", "+7 (999) 999-99-99")


def _words(text: str) -> list[str]:
    """Name lists are kept as prose: a list literal would spend a line per name."""
    return text.split()


_RU_MALE = _words(
    "Александр Алексей Андрей Антон Артём Борис Вадим Виктор Владимир Дмитрий Евгений Егор Иван "
    "Игорь Илья Кирилл Константин Максим Михаил Никита Николай Олег Павел Роман Сергей Степан "
    "Тимур Фёдор Юрий Ярослав"
)
_RU_FEMALE = _words(
    "Анастасия Анна Алина Алёна Арина Валентина Вера Вероника Виктория Галина Дарья Евгения "
    "Екатерина Елена Ирина Кристина Ксения Людмила Марина Мария Надежда Наталья Ольга Полина "
    "Светлана Софья Татьяна Юлия Яна Любовь"
)
_RU_SURNAMES = _words(
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов "
    "Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров "
    "Никитин Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин "
    "Фролов Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов "
    "Медведев Антонов Тарасов Жуков Баранов Комаров Беляев Богданов Сидоров Крылов Мельников "
    "Калинин Быков Высоцкий Чайковский Толстой Шевченко Ким Черных"
)
_EN_MALE = _words(
    "James John Robert Michael William David Richard Thomas Daniel Matthew Andrew Joseph Oliver "
    "Henry Jack Samuel George Peter Mark Ryan"
)
_EN_FEMALE = _words(
    "Mary Emma Olivia Sophia Emily Charlotte Amelia Jessica Sarah Laura Hannah Grace Alice Lucy "
    "Anna Kate Rachel Megan Chloe Ellie"
)
_EN_SURNAMES = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Moore Martin Jackson "
    "Thompson White Harris Clark Lewis Walker Hall Young King Wright Scott Green Baker Adams "
    "Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart "
    "Morris"
)

# (Russian name, English name, tz name, rough UTC offset in summer, weight ~ online shoppers)
_CITIES = [
    ("Москва", "Moscow", "Europe/Moscow", 3, 30),
    ("Санкт-Петербург", "Saint Petersburg", "Europe/Moscow", 3, 14),
    ("Новосибирск", "Novosibirsk", "Asia/Novosibirsk", 7, 5),
    ("Екатеринбург", "Yekaterinburg", "Asia/Yekaterinburg", 5, 5),
    ("Казань", "Kazan", "Europe/Moscow", 3, 4),
    ("Нижний Новгород", "Nizhny Novgorod", "Europe/Moscow", 3, 4),
    ("Краснодар", "Krasnodar", "Europe/Moscow", 3, 4),
    ("Красноярск", "Krasnoyarsk", "Asia/Krasnoyarsk", 7, 3),
    ("Челябинск", "Chelyabinsk", "Asia/Yekaterinburg", 5, 3),
    ("Самара", "Samara", "Europe/Samara", 4, 3),
    ("Уфа", "Ufa", "Asia/Yekaterinburg", 5, 3),
    ("Ростов-на-Дону", "Rostov-on-Don", "Europe/Moscow", 3, 3),
    ("Омск", "Omsk", "Asia/Omsk", 6, 2),
    ("Воронеж", "Voronezh", "Europe/Moscow", 3, 2),
    ("Пермь", "Perm", "Asia/Yekaterinburg", 5, 2),
    ("Калининград", "Kaliningrad", "Europe/Kaliningrad", 2, 2),
    ("Владивосток", "Vladivostok", "Asia/Vladivostok", 10, 2),
]
_CITY_CUM = list(accumulate(c[4] for c in _CITIES))
_ABROAD = [
    ("London", "Europe/London", 1),
    ("Berlin", "Europe/Berlin", 2),
    ("Dubai", "Asia/Dubai", 4),
    ("Almaty", "Asia/Almaty", 5),
]
_RU_DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru", "rambler.ru"]
_RU_DOMAIN_CUM = list(accumulate([30, 25, 20, 6, 6, 6, 4]))
_EN_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.com"]
_EN_DOMAIN_CUM = list(accumulate([50, 15, 10, 10, 15]))
_MOBILE_CODES = [
    *range(900, 907),
    *range(909, 930),
    *range(950, 954),
    *range(960, 970),
    977,
    *range(980, 990),
    *range(991, 1000),
]
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

_TRANSLIT = str.maketrans(
    {
        **dict(zip("абвгдеёзийклмнопрстуфыэ", "abvgdeezijklmnoprstufye", strict=True)),
        "ж": "zh",
        "х": "kh",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "shch",
        "ъ": "",
        "ь": "",
        "ю": "yu",
        "я": "ya",
        "й": "y",
    }
)

T = TypeVar("T")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def translit(text: str) -> str:
    """Lower-case Cyrillic to Latin the way people spell their names in email addresses."""
    return text.lower().translate(_TRANSLIT)


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def local_moment(rng: random.Random, day_ms: int, utc_offset: int) -> int:
    """A moment on the given UTC day at a local hour people really shop at."""
    hour = _pick_cum(rng, _HOURS_CUM)
    return day_ms + (hour - utc_offset) * HOUR_MS + int(rng.random() * HOUR_MS)


def pick(rng: random.Random, seq: Sequence[T]) -> T:
    """rng.choice without its rejection sampling: a third of the cost, same spread."""
    return seq[int(rng.random() * len(seq))]


def between(rng: random.Random, low: int, high: int) -> int:
    """Like between(rng, low, high), cheaper; the hot paths draw millions of these."""
    return low + int(rng.random() * (high - low))


def _pick_cum(rng: random.Random, cum: list[int]) -> int:
    """Index drawn with cumulative integer weights; cheaper than rng.choices in hot loops."""
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def feminine(surname: str) -> str:
    """Иванов → Иванова, Высоцкий → Высоцкая; Шевченко, Ким and Черных do not change."""
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ий", "ой")):
        return surname[:-2] + "ая"
    return surname


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a person is, before any online behaviour; shared by online and offline people."""

    first_name: str
    last_name: str
    gender: str  # "male" | "female"
    russian: bool
    birthday: date | None
    city: str
    timezone: str
    utc_offset: int
    phone_digits: str  # ten digits after +7, always known; `phone` may still be absent


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


def make_identity(rng: random.Random, today: date, used_phones: set[str]) -> Identity:
    russian = rng.random() < 0.7
    male = rng.random() < 0.5
    if russian:
        first = pick(rng, _RU_MALE if male else _RU_FEMALE)
        last = pick(rng, _RU_SURNAMES)
        last = last if male else feminine(last)
    else:
        first = pick(rng, _EN_MALE if male else _EN_FEMALE)
        last = pick(rng, _EN_SURNAMES)
    ru_city, en_city, tz, offset, _w = _CITIES[_pick_cum(rng, _CITY_CUM)]
    city = ru_city if russian else en_city
    if not russian and rng.random() < 0.2:
        city, tz, offset = pick(rng, _ABROAD)
    elif russian and rng.random() < 0.08:
        city = pick(rng, [ru_city.lower(), f"г. {ru_city}", ru_city.upper()])
    birthday = None
    if rng.random() < 0.7:
        age_days = int(365.25 * rng.triangular(18, 75, 30))
        birthday = today - timedelta(days=age_days)
    while True:
        digits = f"{pick(rng, _MOBILE_CODES)}{between(rng, 0, 10_000_000):07d}"
        if digits not in used_phones and digits != JUNK_PHONES[0][1:]:
            used_phones.add(digits)
            break
    return Identity(
        first, last, "male" if male else "female", russian, birthday, city, tz, offset, digits
    )


def format_phone(digits: str, style: int) -> str:
    """Ten digits after +7, written the way one of five kinds of people type them."""
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return (
        f"+7{digits}",
        f"8 ({a}) {b}-{c}-{d}",
        f"+7 {a} {b} {c} {d}",
        f"8{digits}",
        f"7-{a}-{b}-{c}{d}",
    )[style]


def random_phone_style(rng: random.Random) -> int:
    return _pick_cum(rng, [35, 55, 70, 85, 100])


def mess_email(rng: random.Random, email: str) -> str:
    style = rng.random()
    if style < 0.35:
        return email.upper()
    if style < 0.7:
        local, domain = email.split("@")
        return ".".join(w.capitalize() for w in local.split(".")) + "@" + domain.capitalize()
    return pick(rng, [" ", "  ", "\t"]) + email + pick(rng, [" ", "", "\n"])


def make_email(rng: random.Random, ident: Identity, used: set[str]) -> str:
    first, last = translit(ident.first_name), translit(ident.last_name)
    year = ident.birthday.year if ident.birthday else 1990 + int(rng.random() * 15)
    if ident.russian:
        domain = _RU_DOMAINS[_pick_cum(rng, _RU_DOMAIN_CUM)]
    else:
        domain = _EN_DOMAINS[_pick_cum(rng, _EN_DOMAIN_CUM)]
    local = pick(
        rng,
        [
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}.{last}",
            f"{last}.{first}",
            f"{first}{year % 100:02d}",
            f"{last}{between(rng, 1, 1000)}",
            f"{first}_{last}{year}",
        ],
    )
    n = 1
    candidate = f"{local}@{domain}"
    while candidate in used:  # two strangers never share an address; duplicates do on purpose
        n += 1
        candidate = f"{local}{n}@{domain}"
    used.add(candidate)
    return candidate


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
        n_devices = 1 if i in anonymous_only else 1 + _pick_cum(rng, [60, 90, 100])
        devices = tuple(_DEVICE_KINDS[_pick_cum(rng, _DEVICE_CUM)] for _ in range(n_devices))
        buyer = _BUYER_TYPES[_pick_cum(rng, _BUYER_CUM)]
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
