"""Keeping the translation catalogues in step with the texts marked in code and templates.

`scripts/i18n.py update` rewrites each locale's .po from what is marked now (keeping the
translations already made); `check` lists what is missing. A test runs `check`, so a text added
without its Russian translation fails the build instead of showing up in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from otklik.web.i18n import DEFAULT_LOCALE, LOCALE_DIR, LOCALES

WEB = Path(__file__).parent
METHOD_MAP = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS_MAP = {
    "templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "newstyle_gettext": "true",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
}
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass
class Problems:
    untranslated: list[str]
    placeholders: list[str]

    def __bool__(self) -> bool:
        return bool(self.untranslated or self.placeholders)


def extract() -> Catalog:
    template = Catalog(project="otklik", fuzzy=False)
    found = extract_from_dir(
        str(WEB), METHOD_MAP, OPTIONS_MAP, keywords=KEYWORDS, strip_comment_tags=True
    )
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.is_file():
        return Catalog(locale=locale, project="otklik", fuzzy=False)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def update() -> dict[str, int]:
    """Merge the extracted texts into every locale's .po; returns untranslated counts."""
    template = extract()
    missing: dict[str, int] = {}
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        catalog = load(locale)
        catalog.update(template, no_fuzzy_matching=True)
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, ignore_obsolete=True, width=100, sort_output=True)
        missing[locale] = len(check(locale).untranslated)
    return missing


def check(locale: str) -> Problems:
    catalog = load(locale)
    problems = Problems([], [])
    for message in extract():
        if not message.id:
            continue
        entry = catalog.get(message.id, message.context)
        # A plural entry is a tuple of forms: every form must be filled, not just one.
        if entry is None or entry.fuzzy or not all(_texts(entry.string)):
            problems.untranslated.append(_text(message.id))
            continue
        wanted = {name for text in _texts(message.id) for name in PLACEHOLDER.findall(text)}
        for target in _texts(entry.string):
            if set(PLACEHOLDER.findall(target)) - wanted:
                problems.placeholders.append(_text(message.id))
    return problems


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    """A message's forms: one text, or singular and plurals (a tuple or list in babel)."""
    if value is None:
        return [""]
    return [value] if isinstance(value, str) else list(value)


def _text(message_id: str | tuple[str, ...] | list[str]) -> str:
    return _texts(message_id)[0]
