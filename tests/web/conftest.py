"""Browser fixtures for the web console tests: Debian's headless Chromium driven by playwright.

- ``browser``: one Chromium for the whole session (see ``tests/support/browser.py``). A missing
  Chromium fails the tests with a message saying how to install it: CI must run them, so they
  are never skipped.
- ``page``: a page in a fresh context (own cookies), locale ``browser_locale`` (``en-US``;
  ``@pytest.mark.parametrize("browser_locale", ["ru-RU"])`` or an overriding fixture changes it).
- ``pages``: for tests that need more than one person or a phone-size viewport:
  ``pages.new_page(locale=..., viewport=PHONE, base_url=...)``.

The app under test is the ``live`` fixture of ``tests/conftest.py``: open ``f"{live.url}/..."``.
When a test fails, every page it opened is screenshotted under the pytest temporary directory
(``<basetemp>/browser-failures/``) and the path, the page's URL and its console errors are shown
with the failure.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import DEFAULT_LOCALE, BrowserUnavailable, Pages, chromium_path, launch

PAGES = pytest.StashKey[Pages]()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        executable = chromium_path()
    except BrowserUnavailable as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch(playwright, executable)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_locale() -> str:
    return DEFAULT_LOCALE


@pytest.fixture
def pages(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pages]:
    opened = Pages(browser, failure_dir=tmp_path_factory.getbasetemp() / "browser-failures")
    request.node.stash[PAGES] = opened
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(pages: Pages, browser_locale: str) -> Page:
    return pages.new_page(locale=browser_locale)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # The pages are still open here: fixture teardown runs after the call's report is made.
    opened = item.stash.get(PAGES, None)
    if opened is not None and opened.opened and report.failed and report.when != "teardown":
        report.sections.append(("browser", opened.report_failure(item.nodeid)))
    return report
