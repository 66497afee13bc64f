"""Signing in, the dashboard, role denial and the language switch in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.support.browser import PHONE, Pages
from tests.support.console import ConsoleUser, add_user, sign_in


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_an_admin_signs_in_sees_the_dashboard_chart_and_signs_out(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page, pages: Pages
) -> None:
    user = add_user(engine, tenant.id, "admin")
    sign_in(page, live, user)
    expect(page.locator("h1")).to_have_text(tenant.slug)
    expect(page.locator("#events-chart canvas")).to_have_count(1)
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_have_text("You are signed out.")
    log = pages.log_of(page)
    assert log.console_errors == [] and log.page_errors == []


def test_a_wrong_password_keeps_you_on_the_form_with_a_message(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    sign_in(page, live, ConsoleUser(user.email, "not-the-password", "viewer"), arrive=False)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.locator("#email")).to_have_value(user.email)


def test_a_viewer_does_not_see_admin_pages_and_is_refused_them(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    sign_in(page, live, user)
    expect(page.get_by_role("link", name="Customers")).to_be_visible()
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    expect(page.get_by_role("link", name="Imports")).to_have_count(0)
    response = page.goto(f"{live.url}/settings")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_the_sign_in_form_works_from_the_keyboard(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    user = add_user(engine, tenant.id, "operator")
    page.goto(f"{live.url}/login")
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(tenant.slug)


@pytest.mark.parametrize("browser_locale", ["ru-RU"])
def test_the_console_follows_the_browser_language_and_the_users_choice(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    user = add_user(engine, tenant.id, "marketer")
    page.goto(f"{live.url}/login")
    expect(page.get_by_role("button", name="Войти")).to_be_visible()
    sign_in(page, live, user)
    expect(page.get_by_role("link", name="Клиенты")).to_be_visible()
    page.select_option("#lang-select", "en")
    expect(page.get_by_role("link", name="Customers")).to_be_visible()
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_dashboard_fits_a_phone_screen(
    live: LiveServer, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    page = pages.new_page(viewport=PHONE)
    sign_in(page, live, add_user(engine, tenant.id, "viewer"))
    expect(page.locator("h1")).to_have_text(tenant.slug)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
