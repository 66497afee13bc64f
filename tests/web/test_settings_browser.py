"""Settings in a real browser: a key shown once, revoked after a confirmation; viewers refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.support.browser import Pages
from tests.support.console import add_user, sign_in


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page, pages: Pages
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "admin"), "/settings/keys")
    expect(page.locator("h2", has_text="API keys")).to_be_visible()
    page.select_option("#key-kind", "write")
    page.fill("#key-name", "Browser shop")
    page.get_by_role("button", name="Create key").click()

    expect(page.get_by_role("alert")).to_contain_text("shown only this once")
    token = page.locator("#new-token").input_value()
    assert token.startswith("wk_")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    expect(page.locator("#sdk-js pre")).to_contain_text(f'analytics.load("{token}"')

    page.get_by_role("link", name="Done: back to the keys").click()
    row = page.locator("tr", has_text="Browser shop")
    expect(row).to_contain_text(token[:10])
    assert token not in page.content()

    sent = httpx.post(f"{live.url}/v1/batch", json={"batch": []}, auth=(token, ""))
    assert sent.status_code == 200

    page.goto(f"{live.url}/settings/keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="Browser shop").get_by_role("button", name="Revoke").click()
    expect(page.locator(".notice")).to_contain_text("The key is revoked.")
    expect(page.locator("tr", has_text="Browser shop")).to_contain_text("revoked")
    refused = httpx.post(f"{live.url}/v1/batch", json={"batch": []}, auth=(token, ""))
    assert refused.status_code == 401
    log = pages.log_of(page)
    assert log.page_errors == []


def test_a_revoke_cancelled_in_the_dialog_keeps_the_key(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "admin"), "/settings/keys")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("tr", has_text="default write key").get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="default write key")).to_contain_text("active")
    ok = httpx.post(f"{live.url}/v1/batch", json={"batch": []}, auth=(tenant.write_key, ""))
    assert ok.status_code == 200


def test_an_admin_saves_settings_and_sees_field_errors(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "admin"), "/settings")
    page.fill("#ws-name", "")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#name-error")).to_have_text("Enter a name.")
    expect(page.locator("#ws-name")).to_have_attribute("aria-invalid", "true")

    page.fill("#ws-name", "Browser Shop")
    page.select_option("#ws-timezone", "Europe/Moscow")
    page.select_option("#ws-currency", "EUR")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    expect(page.locator("#ws-timezone")).to_have_value("Europe/Moscow")
    expect(page.locator(".workspace-name")).to_have_text("Browser Shop")


def test_the_last_admin_is_told_why_they_cannot_step_down(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    admin = add_user(engine, tenant.id, "admin")
    sign_in(page, live, admin, "/settings/users")
    row = page.locator("tr", has_text=admin.email)
    row.locator("select").select_option("viewer")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator("#users-error")).to_contain_text("must keep at least one admin")


def test_a_viewer_gets_the_not_allowed_page_for_settings(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "viewer"))
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    for path in ("/settings", "/settings/keys", "/settings/users"):
        response = page.goto(f"{live.url}{path}")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator("code")).to_have_text("permission_denied")
