"""An operator finds a customer by part of their email as they type, opens the card, pages the
timeline, opens an event, and edits a trait - in a real browser; the list also works on a phone."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import get, pid_of, send, track
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in
from tests.web.test_customers import recent, shop


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_an_operator_searches_opens_the_card_pages_the_timeline_and_reads_an_event(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant, page: Page
) -> None:
    people = shop(live, http, tenant)
    steps = [track(f"Step {n}", n, userId="olga-1") for n in range(30)]
    send(http, tenant, *steps, {**track("Note", 99, userId="olga-1"), "timestamp": recent(0)})
    live.drain()
    sign_in(page, live, add_user(engine, tenant.id, "operator"))

    page.get_by_role("link", name="Customers").click()
    expect(page.locator("tr[data-customer]")).to_have_count(4)
    # Live search: typing alone (no Enter) narrows the list and puts the search in the URL.
    page.get_by_label("Search by email, phone, name or any identifier").press_sequentially(
        "IVANOVA@exa", delay=20
    )
    expect(page.locator("tr[data-customer]")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/customers\?q=IVANOVA%40exa"))
    row = page.locator("tr[data-customer]")
    expect(row).to_contain_text("olga.ivanova@example.com")

    row.get_by_role("link", name="Ольга Иванова").click()
    expect(page.get_by_test_id("customer-name")).to_have_text("Ольга Иванова")
    expect(page.locator('[data-trait="city"]')).to_have_text("Москва")
    items = page.locator("ol.timeline li.tl-item")
    expect(items).to_have_count(25)
    page.get_by_test_id("timeline-more").click()
    expect(items).to_have_count(33)  # 30 steps, the note, the order, the identify
    expect(page.get_by_test_id("timeline-more")).to_have_count(0)

    page.locator("ol.timeline").get_by_role("link", name="Note").click()
    expect(page.locator("h1")).to_have_text("Note")
    expect(page.get_by_test_id("payload")).to_contain_text('"event": "Note"')

    page.go_back()
    page.get_by_text("Edit a trait").click()
    page.get_by_label("Trait", exact=True).fill("tier")
    page.get_by_label("Kind of value").select_option("json")
    page.get_by_label("Value", exact=True).fill('{"level": "gold"}')
    page.get_by_role("button", name="Save trait").click()
    expect(page.locator(".notice")).to_have_text("The customer's traits are saved.")
    expect(page.locator('[data-trait="tier"]')).to_contain_text('"level": "gold"')
    assert get(http, tenant, f"/profiles/{people['olga']}")["traits"]["tier"] == {"level": "gold"}


def test_filters_and_search_work_without_htmx_and_on_a_phone(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    shop(live, http, tenant)
    user = add_user(engine, tenant.id, "viewer")
    page = pages.new_page(viewport=PHONE)
    # Without htmx the form is a plain GET form and the links plain links.
    page.route("**/htmx.min.js*", lambda route: route.abort())
    page.goto(f"{live.url}/login")
    page.fill("#email", user.email)
    page.fill("#password", user.password)
    page.click("button[type=submit]")
    page.goto(f"{live.url}/customers")
    page.get_by_label("With orders").check()
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"has_orders=1"))
    expect(page.locator("tr[data-customer]")).to_have_count(1)
    page.get_by_label("Search by email, phone, name or any identifier").fill("8 912 345")
    page.get_by_label("Search by email, phone, name or any identifier").press("Enter")
    expect(page.locator("tr[data-customer]")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, width
    assert pid_of(http, tenant, "user_id", "olga-1")
