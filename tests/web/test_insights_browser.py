"""A marketer opens "Customer value", refits the models and reads the RFM heatmap in a browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from otklik.kit.time import utc_now
from tests.conftest import LiveServer, Tenant
from tests.insights.support import fit_rows, generated_shop, refit, scores
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in

# OTKLIK_SCREENSHOTS=docs/screenshots saves the page for the README.
SHOTS = os.environ.get("OTKLIK_SCREENSHOTS")


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_a_marketer_refits_and_reads_the_rfm_heatmap(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page, pages: Pages
) -> None:
    generated_shop(engine, tenant.id, customers=300, now=utc_now())
    sign_in(page, live, add_user(engine, tenant.id, "marketer"))

    page.get_by_role("link", name="Customer value").click()
    expect(page.locator("h1")).to_have_text("Customer value")
    expect(page.get_by_test_id("fit-summary")).to_contain_text("have not been fitted yet")

    page.get_by_role("button", name="Refit now").click()
    expect(page.locator(".notice")).to_have_text("The models are refitted.")
    expect(page.get_by_test_id("fit-status")).to_have_text("Fitted")
    expect(page.get_by_test_id("fit-summary")).to_contain_text("on 300 customers with orders")
    expect(page.get_by_test_id("fit-holdout")).to_contain_text("Forecast check")
    assert len(fit_rows(engine, tenant.id)) == 1

    # The heatmap is drawn (a canvas in the chart box) and the table folds away beneath it.
    chart = page.locator("#rfm-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("canvas")).to_have_count(1)
    box = chart.bounding_box()
    assert box is not None and box["height"] > 300 and box["width"] > 400
    expect(page.locator("details.rfm-table")).not_to_have_attribute("open", "")
    page.get_by_text("As a table").click()
    grid = page.get_by_test_id("rfm-grid")
    expect(grid).to_be_visible()
    rows = scores(engine, tenant.id).values()
    champions = sum(1 for s in rows if (s["r"], s["f"]) == (5, 5))
    expect(grid.locator('td[data-r="5"][data-f="5"] .count')).to_have_text(str(champions))

    classes = page.get_by_test_id("rfm-classes")
    expect(classes.locator("tbody tr")).to_have_count(10)
    expect(classes.locator('tr[data-class="lost"] th')).to_have_text("Lost")
    if SHOTS:
        page.get_by_text("As a table").click()  # the chart alone, as people see it first
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(SHOTS) / "rfm.png"), full_page=True)

    log = pages.log_of(page)
    assert log.console_errors == [] and log.page_errors == []


def test_without_echarts_the_table_is_the_grid(
    live: LiveServer, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    generated_shop(engine, tenant.id, customers=40, now=utc_now())
    page = pages.new_page()
    page.route("**/echarts.min.js*", lambda route: route.abort())
    sign_in(page, live, add_user(engine, tenant.id, "marketer"), "/insights")
    page.get_by_role("button", name="Refit now").click()
    expect(page.locator(".notice")).to_have_text("The models are refitted.")
    expect(page.locator("#rfm-chart")).to_be_hidden()
    expect(page.get_by_test_id("rfm-grid")).to_be_visible()
    expect(page.get_by_test_id("rfm-grid").locator("td[data-r]")).to_have_count(25)


def test_the_page_fits_a_phone_screen(
    live: LiveServer, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    now = utc_now()
    generated_shop(engine, tenant.id, customers=40, now=now)
    refit(engine, tenant.id, now)
    phone = pages.new_page(viewport=PHONE)
    sign_in(phone, live, add_user(engine, tenant.id, "viewer"), "/insights")
    expect(phone.get_by_role("button", name="Refit now")).to_have_count(0)
    expect(phone.locator("#rfm-chart canvas")).to_have_count(1)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
