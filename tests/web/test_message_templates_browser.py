"""A marketer writes templates in a real browser: the SMS part counter and the preview follow
the typing, a save becomes a new version, and an email preview shows the rendered subject."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_a_marketer_writes_an_sms_and_sees_the_parts_and_preview_follow_the_typing(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "marketer"))
    page.get_by_role("link", name="Templates").click()
    page.get_by_label("New template for").select_option("sms")
    page.get_by_role("button", name="New template").click()
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_contain_text("New template")

    page.get_by_label("Name").fill("Order shipped")
    page.get_by_label("Key").fill("order-shipped")
    page.get_by_label("Purpose").select_option("transactional")
    text = page.get_by_label("Text", exact=True)
    text.press_sequentially("Привет, {{ profile.first_name }}! ", delay=5)
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_test_id("preview-text")).to_have_text("Привет, Анна! ")
    expect(preview.get_by_test_id("sms-encoding")).to_have_text("UCS-2")
    expect(preview.get_by_test_id("sms-parts")).to_have_text("1")

    # 14 rendered characters so far; 57 more make 71, one past what one UCS-2 SMS holds.
    text.press_sequentially("Ж" * 57, delay=2)
    expect(preview.get_by_test_id("sms-chars")).to_have_text("71")
    expect(preview.get_by_test_id("sms-parts")).to_have_text("2")
    text.press("Backspace")
    expect(preview.get_by_test_id("sms-parts")).to_have_text("1")

    # A typo shows as an error with its line while typing, before any save.
    text.press_sequentially(" {{ oops", delay=5)
    expect(preview.get_by_test_id("preview-error")).to_contain_text("Line 1:")
    for _ in range(len(" {{ oops")):
        text.press("Backspace")
    expect(preview.get_by_test_id("sms-parts")).to_have_text("1")

    page.get_by_role("button", name="Create template").click()
    expect(page.locator(".notice")).to_have_text("The template is created.")
    expect(page).to_have_url(re.compile(r"/templates/[0-9a-f-]{36}\?notice=template_created"))

    page.wait_for_load_state("load")
    text = page.get_by_label("Text", exact=True)
    text.fill("Hi {{ profile.first_name }}, your order is on its way")
    expect(page.get_by_test_id("preview-text")).to_have_text("Hi Анна, your order is on its way")
    expect(page.get_by_test_id("sms-encoding")).to_have_text("UCS-2")  # the name is Cyrillic
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator(".notice")).to_have_text("Saved as a new version.")
    expect(page.locator("#versions tr[data-version]")).to_have_count(2)


def test_an_email_preview_shows_the_rendered_subject_and_body(
    live: LiveServer, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    page = pages.new_page(viewport=PHONE)
    sign_in(page, live, add_user(engine, tenant.id, "marketer"), "/templates/new?channel=email")
    page.wait_for_load_state("load")
    page.get_by_label("Subject", exact=True).fill("Скидка для {{ profile.first_name }}")
    page.get_by_label("Body", exact=True).fill(
        "<h1>{{ profile.traits.city }}</h1><p>{{ unsubscribe_url }}</p>"
    )
    expect(page.get_by_test_id("preview-subject")).to_have_text("Скидка для Анна")
    frame = page.frame_locator("iframe[data-testid=preview-html]")
    expect(frame.locator("h1")).to_have_text("Москва")
    # Nothing sticks out sideways on a phone.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
