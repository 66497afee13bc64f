"""A viewer finds out in the browser why a customer did not get a message."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.delivery.support import person, set_up, template
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in
from tests.web.test_messages import queue


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_a_viewer_filters_the_log_by_skipped_and_reads_why(
    live: LiveServer,
    http: httpx.Client,
    engine: Engine,
    tenant: Tenant,
    page: Page,
    pages: Pages,
) -> None:
    set_up(http, tenant)
    promo = template(http, tenant, key="autumn-sale")
    fan = person(live, http, tenant)
    stranger = person(live, http, tenant, consent=False, email="no-consent@example.org")
    queue(http, tenant, promo, fan)
    skipped = queue(http, tenant, promo, stranger)
    viewer = add_user(engine, tenant.id, "viewer")
    sign_in(page, live, viewer)

    page.get_by_role("link", name="Messages", exact=True).click()
    expect(page.locator("h1")).to_have_text("Messages")
    page.wait_for_load_state("load")
    rows = page.locator("table.message-log tbody tr")
    expect(rows).to_have_count(2)

    page.get_by_label("State", exact=True).select_option("skipped")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"state=skipped"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("no-consent@example.org")
    expect(rows.first).to_contain_text("Skipped")

    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(f"{live.url}/messages/{skipped['id']}")
    why = page.get_by_test_id("why")
    expect(why).to_contain_text("Why it was not sent")
    expect(why).to_contain_text("has not agreed to receive marketing messages")
    expect(why).to_contain_text("no_consent")
    page.get_by_test_id("customer-link").click()
    expect(page).to_have_url(f"{live.url}/customers/{stranger}")
    expect(page.locator('tr[data-channel="email"]')).to_contain_text("Not recorded yet")

    # The same story reads on a phone without sideways scrolling of the page.
    phone = pages.new_page(viewport=PHONE, base_url=live.url)
    sign_in(phone, live, viewer, f"/messages/{skipped['id']}")
    expect(phone.get_by_test_id("explanation")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width
