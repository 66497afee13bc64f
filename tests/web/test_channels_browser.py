"""Channel settings in a real browser: an admin adds a logging email provider, sends a test
from its page and lands on the message, which the provider really sent."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from otklik.channels.logging_fake import OUTBOX
from tests.conftest import LiveServer, Tenant
from tests.delivery.support import settled, template
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_an_admin_adds_a_logging_email_provider_and_sends_a_test(
    live: LiveServer, engine: Engine, tenant: Tenant, http: httpx.Client, page: Page, pages: Pages
) -> None:
    key = template(
        http,
        tenant,
        purpose="transactional",
        content={"subject": "Browser test", "body": "<p>Hello</p>", "body_format": "html"},
    )
    admin = add_user(engine, tenant.id, "admin")
    sign_in(page, live, admin, "/settings/channels")
    page.wait_for_load_state("load")

    email = page.locator("#kind-email")
    expect(email).to_contain_text("No provider yet")
    email.get_by_label("Provider to add").select_option("logging")
    email.get_by_role("button", name="Add provider").click()

    expect(page.locator("h1")).to_have_text("New provider: Email")
    page.wait_for_load_state("load")
    page.fill("#ch-name", "Dev mail")
    expect(page.locator("#ch-default")).to_be_checked()  # the channel's first provider
    page.get_by_role("button", name="Add provider").click()

    expect(page.locator(".notice")).to_contain_text("The provider is added.")
    row = page.locator("#kind-email tr", has_text="Dev mail")
    expect(row).to_contain_text("Logging")
    expect(row).to_contain_text("default")
    row.get_by_role("link", name="Send test").click()

    expect(page.locator("h1")).to_have_text("Send a test through Dev mail")
    page.wait_for_load_state("load")
    expect(page.locator("#test-address")).to_have_value(admin.email)
    page.get_by_label("Template").select_option(label=f"{key} ({key})")  # name defaults to key
    page.fill("#test-address", "browser-test@shop.example")
    page.get_by_role("button", name="Send test").click()

    expect(page).to_have_url(re.compile(r"/messages/[0-9a-f-]{36}$"))
    message_id = page.url.rsplit("/", 1)[1]
    assert settled(http, tenant, message_id)["state"] == "sent"
    [sent] = [m for m in OUTBOX.items() if str(m.message_id) == message_id]
    assert (sent.to, sent.subject) == ("browser-test@shop.example", "Browser test")

    # The list stays readable on a phone: no sideways scrolling of the whole page.
    phone = pages.new_page(viewport=PHONE)
    sign_in(phone, live, admin, "/settings/channels")
    phone.wait_for_load_state("load")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert pages.log_of(page).page_errors == []
