"""English and Russian: every marked text is translated, and formats follow the locale."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from otklik.web import catalog, i18n, render


def test_every_marked_text_has_a_russian_translation() -> None:
    problems = catalog.check("ru")
    assert problems.untranslated == [], "run scripts/i18n.py update and translate these"
    assert problems.placeholders == []


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),
        ("en;q=0.2,ru;q=0.8", "ru"),
        ("fr", "en"),
        ("", "en"),
        ("ru;q=0", "en"),
        ("ru;q=abc,en", "en"),
    ],
)
def test_the_browser_language_picks_the_best_supported_locale(header: str, chosen: str) -> None:
    assert i18n.negotiate(header) == chosen


def test_translations_switch_with_the_locale() -> None:
    token = i18n.current_locale.set("ru")
    try:
        assert i18n.gettext("Sign in") == "Войти"
    finally:
        i18n.current_locale.reset(token)
    assert i18n.gettext("Sign in") == "Sign in"


def test_numbers_money_and_dates_follow_the_locale_and_the_workspace_zone() -> None:
    moment = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    tokens = (
        i18n.current_locale.set("ru"),
        render.current_tz.set(ZoneInfo("Europe/Moscow")),
        render.current_currency.set("RUB"),
    )
    try:
        assert render.ENV.filters["number"](1234567) == "1\xa0234\xa0567"
        assert render.ENV.filters["money"](Decimal("1234.5")) == "1\xa0234,50\xa0₽"
        # 21:30 UTC is already the next day in Moscow.
        assert render.ENV.filters["date"](moment, "short") == "02.03.2026"
        assert "00:30" in render.ENV.filters["dt"](moment)
    finally:
        render.current_currency.reset(tokens[2])
        render.current_tz.reset(tokens[1])
        i18n.current_locale.reset(tokens[0])
    assert render.ENV.filters["number"](1234567) == "1,234,567"
