#!/usr/bin/env python3
"""Screenshots of the web console's main pages, for the README and docs/screenshots/.

Signs in through the ``/login`` form (fields ``email`` and ``password``, a ``type=submit``
button), then saves one PNG per path at 1280x800, named after the path (``/`` → ``home.png``,
``/events/live`` → ``events-live.png``), and one phone-size (390x844) shot of ``/customers``
(``customers-phone.png``)::

    .venv/bin/python scripts/screenshots.py --base-url http://127.0.0.1:8000 \\
        --email admin@example.com --password 'secret' --out docs/screenshots

The password may come from ``OTKLIK_SCREENSHOTS_PASSWORD`` instead of the command line.

The browser is Debian's chromium (``scripts/setup.sh`` installs it; ``OTKLIK_CHROMIUM`` picks
another binary), driven by Python playwright's bundled driver: ``playwright install`` is never
needed. Only requests to the base URL's own origin go out; the console ships its scripts, so
anything else is a bug, and is reported. A page that answers with an error, or sends the browser
back to the sign-in form, gets no PNG (a good old shot is kept) and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    StorageState,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

DEFAULT_PATHS = ("/", "/customers", "/events/live", "/imports", "/duplicates", "/settings")
PHONE_PATHS = ("/customers",)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
LOGIN_PATH = "/login"
CHROMIUM_ENV = "OTKLIK_CHROMIUM"
PASSWORD_ENV = "OTKLIK_SCREENSHOTS_PASSWORD"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
TIMEOUT_MS = 20_000
# Live views keep a connection open (polling, server-sent events): "network idle" may never come.
IDLE_WAIT_MS = 5_000


class ScreenshotError(Exception):
    """A step failed in a way that makes the remaining shots pointless."""


def shot_name(path: str) -> str:
    """The PNG's stem for a console path: ``/`` → ``home``, ``/events/live`` → ``events-live``."""
    parts = urlsplit(path)
    text = parts.path.strip("/") + (f"-{parts.query}" if parts.query else "")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "home"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_ENV, "").strip() or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ScreenshotError(
            f"no Chromium at {path}: run `bash scripts/setup.sh` (it installs Debian's chromium "
            f"package) or set {CHROMIUM_ENV}; `playwright install` is not used"
        )
    return path


@dataclass
class Shooter:
    """Opens signed-in pages on one console and saves their screenshots."""

    browser: Browser
    base_url: str
    out: Path
    locale: str
    settle_ms: int
    full_page: bool
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def new_context(
        self, viewport: ViewportSize, *, phone: bool = False, state: StorageState | None = None
    ) -> BrowserContext:
        context = self.browser.new_context(
            viewport=viewport,
            locale=self.locale,
            is_mobile=phone,
            has_touch=phone,
            storage_state=state,
        )
        context.set_default_timeout(TIMEOUT_MS)
        own_origin = origin_of(self.base_url)

        def same_origin_only(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).scheme in {"data", "blob", "about"} or origin_of(url) == own_origin:
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort("blockedbyclient")

        context.route("**/*", same_origin_only)
        return context

    def sign_in(self, context: BrowserContext, email: str, password: str) -> None:
        page = context.new_page()
        response = page.goto(self.url(LOGIN_PATH))
        if response is None or not response.ok:
            status = response.status if response is not None else "no response"
            raise ScreenshotError(f"{self.url(LOGIN_PATH)} answered {status}")
        form = page.locator("form").filter(has=page.locator("input[name=password]")).first
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=password]").fill(password)
        # A failed sign-in may be shown in place, without a navigation: the check below tells.
        with (
            contextlib.suppress(PlaywrightTimeoutError),
            page.expect_navigation(timeout=TIMEOUT_MS),
        ):
            form.locator("[type=submit]").first.click()
        if urlsplit(page.url).path == LOGIN_PATH:
            alert = page.locator("[role=alert], .error, .errors").first
            said = alert.inner_text(timeout=1_000).strip() if alert.count() else ""
            hint = "wrong email or password? a Secure session cookie over plain http?"
            raise ScreenshotError(f"sign-in did not leave {LOGIN_PATH}: {said or hint}")
        page.close()

    def settle(self, page: Page) -> None:
        with contextlib.suppress(PlaywrightTimeoutError):
            page.wait_for_load_state("networkidle", timeout=IDLE_WAIT_MS)
        page.evaluate("() => document.fonts ? document.fonts.ready.then(() => true) : true")
        page.wait_for_timeout(self.settle_ms)  # charts draw with a short JS animation

    def shoot(self, context: BrowserContext, path: str, name: str) -> None:
        page = context.new_page()
        try:
            response = page.goto(self.url(path))
            if response is None or not response.ok:
                status = response.status if response is not None else "no response"
                self.problems.append(f"{path}: answered {status}; no screenshot")
                return
            if urlsplit(page.url).path == LOGIN_PATH:
                self.problems.append(f"{path}: sent back to {LOGIN_PATH}; no screenshot")
                return
            self.settle(page)
            target = self.out / f"{name}.png"
            page.screenshot(
                path=target, full_page=self.full_page, animations="disabled", caret="hide"
            )
            self.saved.append(target)
            print(f"saved {target}  ({path})")
        except PlaywrightError as exc:
            self.problems.append(f"{path}: {exc.message.splitlines()[0]}")
        finally:
            page.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Sign in to the web console and save screenshots of its main pages."
    )
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password", default=os.environ.get(PASSWORD_ENV), help=f"or set {PASSWORD_ENV}"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument(
        "--path",
        dest="paths",
        action="append",
        metavar="PATH",
        help=f"a page to shoot at 1280x800 (repeat; default: {' '.join(DEFAULT_PATHS)})",
    )
    parser.add_argument(
        "--phone-path",
        dest="phone_paths",
        action="append",
        metavar="PATH",
        help=f"a page to shoot at 390x844 (repeat; default: {' '.join(PHONE_PATHS)})",
    )
    parser.add_argument("--locale", default="en-US", help="browser language (Accept-Language)")
    parser.add_argument("--settle-ms", type=int, default=1_200, help="wait before each shot")
    parser.add_argument("--full-page", action="store_true", help="whole page, not the viewport")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error(f"--password or {PASSWORD_ENV} is required")
    scheme = urlsplit(args.base_url).scheme
    if scheme not in {"http", "https"}:
        parser.error("--base-url must start with http:// or https://")
    args.base_url = args.base_url.rstrip("/")
    args.paths = args.paths or list(DEFAULT_PATHS)
    args.phone_paths = args.phone_paths if args.phone_paths is not None else list(PHONE_PATHS)
    return args


def plan(paths: Sequence[str], phone_paths: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(path, file stem, phone?) for every shot; refuses two shots with one file name."""
    shots = [(path, shot_name(path), False) for path in paths]
    shots += [(path, shot_name(path) + "-phone", True) for path in phone_paths]
    seen: dict[str, str] = {}
    for path, name, _ in shots:
        if name in seen and seen[name] != path:
            raise ScreenshotError(f"{seen[name]} and {path} would both be saved as {name}.png")
        seen[name] = path
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        shots = plan(args.paths, args.phone_paths)
        executable = chromium_path()
    except ScreenshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(LAUNCH_ARGS)
        )
        shooter = Shooter(
            browser, args.base_url, args.out, args.locale, args.settle_ms, args.full_page
        )
        try:
            desktop = shooter.new_context(DESKTOP)
            shooter.sign_in(desktop, args.email, args.password)
            # The phone shares the signed-in session: same cookies, its own viewport.
            phone = shooter.new_context(PHONE, phone=True, state=desktop.storage_state())
            for path, name, on_phone in shots:
                shooter.shoot(phone if on_phone else desktop, path, name)
        except (ScreenshotError, PlaywrightError) as exc:
            text = exc.message if isinstance(exc, PlaywrightError) else str(exc)
            print(f"error: {text}", file=sys.stderr)
            return 2
        finally:
            browser.close()
    for url in sorted(set(shooter.blocked)):
        print(f"warning: blocked a request off the console's origin: {url}", file=sys.stderr)
    for problem in shooter.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(shooter.saved)} of {len(shots)} screenshots saved in {args.out}")
    return 1 if shooter.problems else 0


if __name__ == "__main__":
    sys.exit(main())
