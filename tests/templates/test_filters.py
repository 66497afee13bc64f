"""Locale filters: plurals by CLDR category, money, numbers and dates in the person's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from otklik.templates.rendering import TemplateError, compile_text

RU: dict[str, Any] = {"workspace": {"locale": "ru", "currency": "RUB", "timezone": "Europe/Moscow"}}
EN: dict[str, Any] = {
    "workspace": {"locale": "en", "currency": "USD", "timezone": "America/New_York"}
}


def render(source: str, context: dict[str, Any], **values: object) -> str:
    out = compile_text(source, "text").render({**context, **values})
    # CLDR puts no-break and narrow no-break spaces in dates and numbers; compare words.
    return out.replace("\u202f", " ").replace("\xa0", " ")


RU_FORMS = "('товар', 'товара', 'товаров')"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 товаров"),
        (1, "1 товар"),
        (2, "2 товара"),
        (5, "5 товаров"),
        (11, "11 товаров"),
        (21, "21 товар"),
        (22, "22 товара"),
        (25, "25 товаров"),
        (111, "111 товаров"),
        (1.5, "1,5 товара"),
        (Decimal("2.5"), "2,5 товара"),
        ("21", "21 товар"),
    ],
)
def test_russian_plural_n_agrees_with_the_number(n: object, expected: str) -> None:
    assert render("{{ n|plural_n" + RU_FORMS + " }}", RU, n=n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "товаров"), (1, "товар"), (3, "товара"), (11, "товаров"), (21, "товар"), (1.5, "товара")],
)
def test_russian_plural_gives_the_word_alone(n: object, expected: str) -> None:
    assert render("{{ n|plural" + RU_FORMS + " }}", RU, n=n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 items"),
        (1, "1 item"),
        (2, "2 items"),
        (5, "5 items"),
        (11, "11 items"),
        (21, "21 items"),
        (22, "22 items"),
        (25, "25 items"),
        (111, "111 items"),
        (1.5, "1.5 items"),
    ],
)
def test_english_plural_n_has_one_and_other(n: object, expected: str) -> None:
    assert render("{{ n|plural_n('item', 'items') }}", EN, n=n) == expected


def test_the_profile_locale_wins_over_the_workspace_locale() -> None:
    context = {**EN, "profile": {"locale": "ru"}}
    assert render("{{ 2|plural_n" + RU_FORMS + " }}", context) == "2 товара"
    context = {**RU, "profile": {"traits": {"locale": "en"}}}
    assert render("{{ 2|plural_n('item', 'items') }}", context) == "2 items"


def test_plural_of_a_missing_number_is_empty() -> None:
    assert render("[{{ event.count|plural_n('a', 'b') }}]", RU) == "[]"


def test_money_uses_the_workspace_currency_and_locale() -> None:
    assert render("{{ 1234.5|money }}", RU) == "1 234,50 ₽"
    assert render("{{ 1234.5|money }}", EN) == "$1,234.50"


def test_money_takes_an_explicit_currency_and_locale() -> None:
    assert render("{{ 10|money('EUR') }}", EN) == "€10.00"
    assert render("{{ '99.9'|money('usd', 'en') }}", RU) == "$99.90"


def test_money_without_any_currency_prints_a_plain_amount() -> None:
    assert render("{{ 5|money }}", {"workspace": {"locale": "en"}}) == "5.00"


def test_money_of_a_missing_value_is_empty_and_of_junk_fails() -> None:
    assert render("[{{ event.total|money }}]", RU) == "[]"
    with pytest.raises(TemplateError) as info:
        render("{{ 'abc'|money }}", RU)
    assert info.value.code == "template_render_failed"


def test_number_formats_by_locale_and_pattern() -> None:
    assert render("{{ 12345.678|number }}", RU) == "12 345,678"
    assert render("{{ 12345.678|number }}", EN) == "12,345.678"
    assert render("{{ 0.5|number('#0.00') }}", EN) == "0.50"


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert render("{{ 2|plural_n('item', 'items') }}", {"workspace": {"locale": "xx-zz"}}) == (
        "2 items"
    )


def test_date_is_the_local_day_in_the_profile_time_zone() -> None:
    late_utc = "2024-05-01T22:30:00Z"
    assert render("{{ t|date('long') }}", RU, t=late_utc) == "2 мая 2024 г."
    in_ny = {**RU, "profile": {"timezone": "America/New_York"}}
    assert render("{{ t|date('long') }}", in_ny, t=late_utc) == "1 мая 2024 г."


def test_a_bare_calendar_date_never_moves_a_day() -> None:
    assert render("{{ d|date('short') }}", EN, d="2024-05-01") == "5/1/24"
    assert render("{{ d|date('d MMMM') }}", RU, d="2024-05-01") == "1 мая"


def test_datetime_renders_in_the_zone_and_takes_patterns() -> None:
    moment = datetime(2024, 1, 15, 9, 5, tzinfo=UTC)
    assert render("{{ t|datetime('HH:mm') }}", RU, t=moment) == "12:05"
    assert render("{{ t|datetime('HH:mm', timezone='UTC') }}", RU, t=moment) == "09:05"
    assert render("{{ t|datetime('h:mm a') }}", EN, t=moment.isoformat()) == "4:05 AM"


def test_naive_datetimes_are_taken_as_utc() -> None:
    naive = datetime(2024, 1, 15, 9, 5)  # naive on purpose
    assert render("{{ t|datetime('HH:mm') }}", RU, t=naive) == "12:05"


def test_dates_of_missing_values_are_empty_and_of_junk_fail() -> None:
    assert render("[{{ profile.traits.birthday|date }}]", RU) == "[]"
    with pytest.raises(TemplateError) as info:
        render("{{ 'yesterday'|date }}", RU)
    assert info.value.code == "template_render_failed"
