"""The browser harness works end to end: real Chromium, real app behind a real server."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.support.browser import Pages


def test_api_docs_open_in_the_browser(live: LiveServer, page: Page, pages: Pages) -> None:
    response = page.goto(f"{live.url}/docs")
    assert response is not None
    assert response.ok, response.status
    expect(page).to_have_title("Otklik - Swagger UI")
    # The Swagger UI scripts come from a CDN: the harness keeps the page on this machine.
    assert all("127.0.0.1" not in url for url in pages.log_of(page).blocked)
    assert any(url.startswith("https://") for url in pages.log_of(page).blocked)


@pytest.mark.parametrize("browser_locale", ["ru-RU"])
def test_page_locale_is_selectable(live: LiveServer, page: Page) -> None:
    response = page.goto(f"{live.url}/health")
    assert response is not None
    assert response.request.all_headers()["accept-language"].startswith("ru-RU")
    assert page.evaluate("navigator.language") == "ru-RU"
    assert "ok" in (page.text_content("body") or "")
