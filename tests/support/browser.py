"""Headless Chromium for tests that use the web console as a person would.

The browser is Debian's ``chromium`` package (``/usr/bin/chromium``, installed by
``scripts/setup.sh``), driven through Python playwright's own bundled driver with
``executable_path``. ``playwright install`` is never run: it downloads a browser build, which this
project's machines cannot fetch. ``OTKLIK_CHROMIUM`` points at another Chromium binary.

Usage (the fixtures in ``tests/web/conftest.py`` do this)::

    with sync_playwright() as pw:
        browser = launch(pw)
        pages = Pages(browser, failure_dir=tmp / "browser-failures")
        page = pages.new_page(locale="ru-RU")
        page.goto(f"{live.url}/login")
        ...
        pages.close()

Pages reach loopback addresses only: every other request (the CDN scripts of FastAPI's ``/docs``,
a web font) is aborted and noted, so a test never waits on the network and never sends traffic
off the machine. When a test fails, ``Pages.report_failure`` saves a screenshot of every page it
opened and returns what the pages logged (console errors, uncaught exceptions, blocked requests).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    ViewportSize,
)
from playwright.sync_api import Error as PlaywrightError

CHROMIUM_ENV = "OTKLIK_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = (
    "--no-sandbox",  # tests run as root in containers, where the setuid/user-ns sandbox is absent
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
DEFAULT_LOCALE = "en-US"
DEFAULT_TIMEZONE = "UTC"
# Fail a stuck click or wait in seconds, not after playwright's default 30 s.
ACTION_TIMEOUT_MS = 10_000
NAVIGATION_TIMEOUT_MS = 20_000
SCREENSHOT_TIMEOUT_MS = 5_000


class BrowserUnavailable(RuntimeError):
    """No Chromium binary to drive."""


def chromium_path() -> str:
    """The Chromium binary to launch; raises BrowserUnavailable, saying how to get one."""
    path = os.environ.get(CHROMIUM_ENV, "").strip() or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise BrowserUnavailable(
            f"no Chromium at {path}: run `bash scripts/setup.sh` (it installs Debian's chromium "
            f"package), or set {CHROMIUM_ENV} to a Chromium binary. "
            "Do not run `playwright install`: it downloads a browser, which is not allowed here."
        )
    return path


def launch(playwright: Playwright, executable: str | None = None) -> Browser:
    """Headless Chromium, with the flags that keep it quiet and off the network."""
    return playwright.chromium.launch(
        executable_path=executable or chromium_path(), headless=True, args=list(LAUNCH_ARGS)
    )


def is_local_url(url: str) -> bool:
    """True for URLs that stay on this machine: loopback hosts and in-page schemes."""
    parts = urlsplit(url)
    if parts.scheme in {"about", "data", "blob"}:
        return True
    if parts.scheme not in {"http", "https", "ws", "wss"}:
        return False
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class PageLog:
    """What a page reported while a test drove it; shown when the test fails."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"console error: {text}" for text in self.console_errors]
        out += [f"uncaught exception: {text}" for text in self.page_errors]
        out += [f"blocked off-machine request: {url}" for url in self.blocked]
        return out


@dataclass
class Pages:
    """Opens pages in fresh browser contexts, closes them, and reports on them when a test fails.

    Each page gets its own context: its own cookies and storage, so two pages are two people
    (an admin and a viewer, say) and nothing leaks from one test to the next.
    """

    browser: Browser
    failure_dir: Path
    opened: list[tuple[Page, PageLog]] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def new_page(
        self,
        *,
        base_url: str | None = None,
        locale: str = DEFAULT_LOCALE,
        viewport: ViewportSize = DESKTOP,
        timezone_id: str = DEFAULT_TIMEZONE,
    ) -> Page:
        """A page in a new context. ``locale`` sets navigator.language and Accept-Language."""
        context = self.browser.new_context(
            base_url=base_url, locale=locale, viewport=viewport, timezone_id=timezone_id
        )
        self.contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        log = PageLog()

        def only_local(route: Route) -> None:
            url = route.request.url
            if is_local_url(url):
                route.continue_()
            else:
                log.blocked.append(url)
                route.abort("blockedbyclient")

        def on_console(message: ConsoleMessage) -> None:
            # A request this harness aborted is already listed in ``blocked``.
            if message.type == "error" and "ERR_BLOCKED_BY_CLIENT" not in message.text:
                log.console_errors.append(message.text)

        def on_page_error(error: PlaywrightError) -> None:
            log.page_errors.append(f"{error.name}: {error.message}")

        context.route("**/*", only_local)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        self.opened.append((page, log))
        return page

    def log_of(self, page: Page) -> PageLog:
        for opened, log in self.opened:
            if opened is page:
                return log
        raise KeyError("page was not opened by this Pages")

    def report_failure(self, name: str) -> str:
        """Screenshot every open page into ``failure_dir``; the text to show with the failure."""
        self.failure_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-120:] or "test"
        lines: list[str] = []
        for number, (page, log) in enumerate(self.opened, start=1):
            label = f"page {number}" if len(self.opened) > 1 else "page"
            if page.is_closed():
                lines.append(f"{label}: closed")
                lines += [f"  {line}" for line in log.lines()]
                continue
            path = self.failure_dir / f"{stem}-{number}.png"
            try:
                page.screenshot(path=path, full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
                shot = str(path)
            except PlaywrightError as exc:
                shot = f"(screenshot failed: {exc.message})"
            lines.append(f"{label}: {page.url}")
            lines.append(f"  screenshot: {shot}")
            lines += [f"  {line}" for line in log.lines()]
        return "\n".join(lines)

    def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(PlaywrightError):
                context.close()
        self.contexts.clear()
        self.opened.clear()
