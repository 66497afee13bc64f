"""Locale-aware filters for message templates: money, dates, numbers and plurals (ru/en and more).

Every filter reads its defaults from the render context (see `otklik.templates.rendering` for
the context contract), so a marketer writes `{{ order.total|money }}` and gets roubles in
Russian for a Russian shop without naming either:

- locale: `profile.locale` (or `profile.traits.locale`), else `workspace.locale`, else "en";
- time zone: `profile.timezone` (or `profile.traits.timezone`), else `workspace.timezone`,
  else UTC;
- currency: `workspace.currency` (an explicit argument always wins).

Missing values render as an empty string rather than failing the send: customer data is
sparse, and one missing trait must not stop a campaign. Values of the wrong type (a price
that is not a number) do raise, and the render reports `template_render_failed`.

Plural forms are given in the CLDR order of the locale's categories (zero, one, two, few,
many, other; only those the language has): Russian `one, few, many`, English `one, other`.
Languages whose fractional numbers take the "other" category that nobody writes a separate
form for (Russian "1,5 товара") use the "few" form for it, which is the grammatical rule.

`html_text` turns an HTML snippet into readable text (for SMS or push made from HTML content).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from otklik.templates.text import html_to_text

DEFAULT_LOCALE = "en"
_CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")
_NAMED_FORMATS = frozenset({"short", "medium", "long", "full"})
_UTC = ZoneInfo("UTC")


def _mapping(value: Any) -> Mapping[str, Any]:
    # The dict check first: an ABC isinstance costs more than the rest of a lookup.
    if type(value) is dict:
        return value
    return value if isinstance(value, Mapping) else {}


def _setting(ctx: Context, key: str) -> str | None:
    """The profile's own setting wins over the workspace's, as a person's time zone should."""
    profile = _mapping(ctx.get("profile"))
    for source in (profile, _mapping(profile.get("traits")), _mapping(ctx.get("workspace"))):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@lru_cache(maxsize=256)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LOCALE)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


def context_locale(ctx: Context, override: str | None = None) -> str:
    """The locale's name; cached helpers key on it (hashing a babel Locale is slow)."""
    return override or _setting(ctx, "locale") or DEFAULT_LOCALE


def context_zone(ctx: Context, override: str | None = None) -> ZoneInfo:
    name = override or _setting(ctx, "timezone")
    return _zone(name) if name else _UTC


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined) or value == ""


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float | str):
        try:
            # Through str() so 0.1 stays 0.1 and not its binary approximation.
            return Decimal(str(value).strip().replace(",", "."))
        except InvalidOperation as exc:
            raise ValueError(f"expected a number, got {value!r}") from exc
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _setting_workspace(ctx: Context, key: str) -> str | None:
    value = _mapping(ctx.get("workspace")).get(key)
    return value if isinstance(value, str) and value else None


@pass_context
def money(ctx: Context, amount: Any, currency: str | None = None, locale: str | None = None) -> str:
    """`{{ 1234.5|money }}` → "1 234,50 ₽" in a ru/RUB workspace; `money('EUR')` overrides."""
    if _missing(amount):
        return ""
    value = _decimal(amount)
    code = currency or _setting_workspace(ctx, "currency")
    loc = context_locale(ctx, locale)
    return _format_money(str(value), code.upper() if code else None, loc)


# Formatting is the costly part of a render (babel parses and applies the pattern each call),
# and a campaign prints the same few prices for thousands of people.
@lru_cache(maxsize=16384)
def _format_money(value: str, code: str | None, locale: str) -> str:
    if code is None:
        return format_decimal(Decimal(value), format="#,##0.00", locale=_locale(locale))
    return format_currency(Decimal(value), code, locale=_locale(locale))


@lru_cache(maxsize=16384)
def _format_number(value: str, pattern: str | None, locale: str) -> str:
    return format_decimal(Decimal(value), format=pattern, locale=_locale(locale))


@pass_context
def number(ctx: Context, value: Any, format: str | None = None, locale: str | None = None) -> str:
    """`{{ 12345.678|number }}` → "12 345,678" (ru); `number('#,##0.0')` takes a CLDR pattern."""
    if _missing(value):
        return ""
    return _format_number(str(_decimal(value)), format, context_locale(ctx, locale))


def _as_datetime(value: Any) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=_UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO date or time: {value!r}") from exc
        # A bare "2024-05-01" is a calendar date: no time zone shift may move it a day.
        return parsed.date() if len(text) == 10 else parsed
    raise ValueError(f"expected a date, got {type(value).__name__}")


def _localised(value: datetime, zone: ZoneInfo) -> datetime:
    # Naive values come from our own store, which keeps UTC.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
    return aware.astimezone(zone)


@pass_context
def date_filter(ctx: Context, value: Any, format: str = "medium", locale: str | None = None) -> str:
    """`{{ order.created_at|date('long') }}` → "1 мая 2024 г." on the person's local day."""
    if _missing(value):
        return ""
    moment = _as_datetime(value)
    if isinstance(moment, datetime):
        moment = _localised(moment, context_zone(ctx)).date()
    return format_date(moment, format=format, locale=_locale(context_locale(ctx, locale)))


@pass_context
def datetime_filter(
    ctx: Context,
    value: Any,
    format: str = "medium",
    locale: str | None = None,
    timezone: str | None = None,
) -> str:
    """`{{ event.starts_at|datetime('short') }}` in the person's (or workspace's) time zone."""
    if _missing(value):
        return ""
    moment = _as_datetime(value)
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0), tzinfo=context_zone(ctx, timezone))
    zone = context_zone(ctx, timezone)
    return format_datetime(
        _localised(moment, zone),
        format=format,
        tzinfo=zone,
        locale=_locale(context_locale(ctx, locale)),
    )


@lru_cache(maxsize=4096)
def _category(locale: str, n: int | Decimal) -> str:
    return str(_locale(locale).plural_form(n))


@lru_cache(maxsize=256)
def _categories(locale: str) -> tuple[str, ...]:
    tags = _locale(locale).plural_form.tags
    return tuple(c for c in _CLDR_ORDER if c in tags or c == "other")


def _plural_number(n: Any) -> int | Decimal:
    value = _decimal(n)
    return int(value) if value == value.to_integral_value() and "." not in str(n) else value


def choose_form(locale: str, n: int | Decimal, forms: tuple[str, ...]) -> str:
    """The form for `n` among `forms`, given in the CLDR order of the locale's categories."""
    if not forms:
        raise ValueError("plural needs at least one form")
    categories = _categories(locale)
    category = _category(locale, n)
    if category == "other" and len(forms) < len(categories) and "few" in categories:
        category = "few"
    index = categories.index(category) if category in categories else len(forms) - 1
    return forms[min(index, len(forms) - 1)]


@pass_context
def plural(ctx: Context, n: Any, *forms: str) -> str:
    """`{{ n|plural('товар', 'товара', 'товаров') }}`: the word alone, agreeing with n."""
    if _missing(n):
        return ""
    return choose_form(context_locale(ctx), _plural_number(n), forms)


@pass_context
def plural_n(ctx: Context, n: Any, *forms: str) -> str:
    """`{{ n|plural_n('товар', 'товара', 'товаров') }}` → "21 товар", "1,5 товара"."""
    if _missing(n):
        return ""
    locale = context_locale(ctx)
    value = _plural_number(n)
    return f"{_format_number(str(value), None, locale)} {choose_form(locale, value, forms)}"


def html_text(value: Any) -> str:
    """`{{ product.description_html|html_text }}`: the readable text of an HTML snippet."""
    return "" if _missing(value) else html_to_text(str(value))


FILTERS: dict[str, Any] = {
    "html_text": html_text,
    "money": money,
    "number": number,
    "date": date_filter,
    "datetime": datetime_filter,
    "plural": plural,
    "plural_n": plural_n,
}
