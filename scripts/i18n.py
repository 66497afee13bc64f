"""Translation catalogues: `update` merges newly marked texts into each .po, `check` lists gaps.

.venv/bin/python scripts/i18n.py update   # then translate the empty msgstr entries
.venv/bin/python scripts/i18n.py check
"""

from __future__ import annotations

import sys

from otklik.web import catalog
from otklik.web.i18n import DEFAULT_LOCALE, LOCALES


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        for locale, missing in catalog.update().items():
            print(f"{locale}: {missing} untranslated")
        return 0
    failed = False
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        problems = catalog.check(locale)
        for text in problems.untranslated:
            print(f"{locale}: untranslated: {text}")
        for text in problems.placeholders:
            print(f"{locale}: placeholder mismatch: {text}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
