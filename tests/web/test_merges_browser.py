"""A marketer reviews a suggested duplicate, merges it after comparing, and undoes the merge."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import get, pid_of
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in
from tests.web.test_merges import two_olgas


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_a_marketer_compares_merges_and_undoes_in_the_browser(
    live: LiveServer,
    http: httpx.Client,
    engine: Engine,
    tenant: Tenant,
    page: Page,
    pages: Pages,
) -> None:
    first, second = two_olgas(live, http, tenant)
    sign_in(page, live, add_user(engine, tenant.id, "marketer"))

    page.get_by_role("link", name="Duplicates & merges").click()
    group = page.get_by_test_id("duplicate-group")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("Same phone")
    group.get_by_role("link", name="Compare side by side").click()

    expect(page.locator("h1")).to_have_text("Compare customers")
    page.wait_for_load_state("load")
    city = page.locator('table.compare tr[data-trait="city"]')
    expect(city).to_contain_text("differs")
    # The survivor's value is marked as winning, and follows the choice of survivor.
    expect(city.locator("td.wins")).to_have_text("Kazan")
    # Which of the two is "A" depends on their ids; choose by who they are.
    page.locator(f'input[name="winner"][value="{first}"]').check()
    expect(city.locator("td.wins")).to_have_text("Moscow")
    kept, replaced = page.locator('table.conflicts tr[data-trait="city"] td span:visible').all()
    expect(kept).to_have_text("Moscow")
    expect(replaced).to_have_text("Kazan")
    page.locator(f'input[name="winner"][value="{second}"]').check()

    merge_button = page.get_by_role("button", name="Merge customers")
    merge_button.click()
    # The browser will not send the form until the confirmation is ticked.
    expect(page.locator("h1")).to_have_text("Compare customers")
    page.get_by_label("I have compared both customers and want to merge them").check()
    merge_button.click()

    expect(page.locator(".notice")).to_have_text("The customers are merged.")
    row = page.locator("table.merge-log tbody tr").first
    expect(row).to_contain_text("Manual")
    expect(row).to_contain_text("In effect")
    assert get(http, tenant, f"/profiles/{first}")["id"] == second

    row.get_by_role("link", name="Undo…").click()
    expect(page.locator("h1")).to_have_text("Undo a merge")
    page.get_by_role("button", name="Yes, undo this merge").click()
    expect(page.locator(".notice")).to_have_text("The merge is undone.")
    expect(page.locator("table.merge-log tbody tr").first).to_contain_text("Undone")
    expect(page.get_by_role("link", name="Undo…")).to_have_count(0)
    assert pid_of(http, tenant, "user_id", "olga-1") == first
    assert get(http, tenant, f"/profiles/{first}")["merged_into"] is None

    log = pages.log_of(page)
    assert log.console_errors == [] and log.page_errors == []


def test_the_comparison_fits_a_phone_screen(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    first, second = two_olgas(live, http, tenant)
    phone = pages.new_page(viewport=PHONE)
    sign_in(phone, live, add_user(engine, tenant.id, "marketer"))
    phone.goto(f"{live.url}/duplicates/compare?a={first}&b={second}")
    expect(phone.get_by_role("button", name="Merge customers")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
