"""English and Russian for the console: gettext catalogues kept as .po files.

The .po files are compiled in memory when first used, so there is no build step and no
compiled .mo file to keep in step with its source.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: tuple[str, ...] = ("en", "ru")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
# Remembers the language picked before signing in (and beside the account's choice).
LANG_COOKIE = "otklik_lang"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def gettext(message: str) -> str:
    return translations(current_locale.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ungettext(singular, plural, n)


def supported(locale: str | None) -> str | None:
    if not locale:
        return None
    code = locale.strip().replace("_", "-").split("-")[0].lower()
    return code if code in LOCALES else None


def negotiate(accept_language: str | None) -> str:
    """The best of our locales for an Accept-Language header, by its q-values."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = supported(tag)
        if code and quality > 0:
            choices.append((-quality, position, code))
    return min(choices)[2] if choices else DEFAULT_LOCALE


def choose(account: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The account's choice, else the one remembered in the browser, else its languages."""
    return supported(account) or supported(cookie) or negotiate(accept_language)


def babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)
