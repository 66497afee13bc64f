"""A marketer builds a segment in a real browser: conditions added by clicking, the live count
and its sample following every change, a problem shown at the condition it is about, then the
saved segment built in the background with the count the builder showed."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send
from tests.segments.support import event, identify, member_ids, settle
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def shop(live: LiveServer, http: httpx.Client, tenant: Tenant) -> dict[str, str]:
    send(
        http,
        tenant,
        identify("anna", 20, email="anna@example.com", city="Moscow", first_name="Anna"),
        identify("boris", 20, email="boris@example.com", city="Kazan", first_name="Boris"),
        identify("vera", 20, email="vera@example.com", city="Moscow", first_name="Vera"),
        identify("gleb", 20, email="gleb@example.com", city="Moscow", first_name="Gleb"),
        event("anna", "Order Completed", 9, total=1200),
        event("anna", "Order Completed", 4, total=800),
        event("anna", "Order Completed", 1, total=500),
        event("gleb", "Order Completed", 2, total=300),
        event("boris", "Order Completed", 3, total=9000),
        event("boris", "Order Completed", 2, total=9000),
    )
    settle(live)
    return {
        name: pid_of(http, tenant, "user_id", name) for name in ("anna", "boris", "vera", "gleb")
    }


def real_errors(pages: Pages, page: Page) -> list[str]:
    """What the page logged, less the 422 answers the live count gets for invalid rules."""
    log = pages.log_of(page)
    console = [t for t in log.console_errors if "status of 422" not in t]
    return console + log.page_errors


def test_a_marketer_builds_a_segment_by_clicking_and_sees_the_count_follow(
    live: LiveServer, engine: Engine, tenant: Tenant, http: httpx.Client, pages: Pages
) -> None:
    ids = shop(live, http, tenant)
    page = pages.new_page()
    sign_in(page, live, add_user(engine, tenant.id, "marketer"))
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    expect(page.locator("h1")).to_contain_text("New segment")
    live_box = page.get_by_test_id("live")
    expect(live_box).to_contain_text("Add a condition to see who matches.")

    builder = page.get_by_test_id("builder")
    builder.get_by_role("button", name="+ Condition").click()
    first = page.get_by_test_id("condition").nth(0)
    first.get_by_label("Trait name").fill("city")
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text("4")  # "city is set": everybody
    first.get_by_label("Operator").select_option("eq")
    first.get_by_label("Value").fill("moscow")
    expect(count).to_have_text("3")
    expect(page.get_by_test_id("live-took")).to_contain_text("ms")
    sample = page.get_by_test_id("live-sample")
    expect(sample.get_by_role("link")).to_have_count(3)
    expect(sample.get_by_role("link", name="Anna")).to_have_attribute(
        "href", f"/customers/{ids['anna']}"
    )

    builder.get_by_role("button", name="+ Condition").last.click()
    second = page.get_by_test_id("condition").nth(1)
    second.get_by_label("Kind of condition").select_option("event")
    expect(second.get_by_label("Event name")).to_have_value("Order Completed")
    expect(count).to_have_text("2")  # Anna and Gleb ordered in the last 30 days
    second.get_by_label("Number").fill("many")
    errors = second.get_by_test_id("condition-errors")
    expect(errors).to_be_visible()
    expect(errors.locator("li")).to_have_attribute("data-path", "rules.rules[1].value")
    expect(page.get_by_test_id("live-errors")).to_contain_text("#2:")
    second.get_by_label("Number").fill("2")
    expect(errors).to_be_hidden()
    expect(count).to_have_text("1")
    expect(sample.get_by_role("link")).to_have_count(1)
    expect(sample.get_by_role("link", name="Anna")).to_be_visible()

    # A group of "any of": Vera's email or the event rule above.
    builder.get_by_role("button", name="+ Group").last.click()
    group = page.locator('.seg-row[data-path="rules.rules[2]"]')
    expect(group.get_by_label("Group", exact=True)).to_have_value("any")
    third = page.get_by_test_id("condition").nth(2)
    third.get_by_label("Kind of condition").select_option("attribute")
    third.get_by_label("Field").select_option("email")
    third.get_by_label("Operator").select_option("starts_with")
    third.get_by_label("Value").fill("anna")
    expect(count).to_have_text("1")
    third.get_by_label("Value").fill("vera")
    expect(count).to_have_text("0")
    page.get_by_role("button", name="Remove the group").click()
    expect(count).to_have_text("1")

    page.get_by_label("Name", exact=True).fill("Moscow regulars")
    page.get_by_label("Description").fill("Moscow, two orders in 30 days")
    page.locator("summary", has_text="The rules as JSON").click()
    json_box = page.locator("#f-rules-json")
    expect(json_box).to_have_value(re.compile('"Order Completed"'))
    json_box.fill("{not json")
    page.get_by_role("button", name="Apply the JSON").click()
    expect(page.locator(".seg-json .field-error")).to_contain_text("This is not valid JSON.")
    page.locator("summary", has_text="The rules as JSON").click()  # closing drops the edit
    page.locator("summary", has_text="The rules as JSON").click()
    json_box.fill(json_box.input_value().replace('"moscow"', '"Kazan"'))
    page.get_by_role("button", name="Apply the JSON").click()
    expect(page.get_by_test_id("condition").nth(0).get_by_label("Value")).to_have_value("Kazan")
    expect(sample.get_by_role("link", name="Boris")).to_be_visible()
    page.get_by_test_id("condition").nth(0).get_by_label("Value").fill("moscow")
    expect(sample.get_by_role("link", name="Anna")).to_be_visible()
    expect(count).to_have_text("1")
    page.get_by_role("button", name="Create segment").click()

    expect(page.get_by_test_id("done")).to_contain_text("The segment is saved.")
    expect(page).to_have_url(re.compile(r"/segments/[0-9a-f-]{36}\?done=created"))
    # The page follows the build in the background, then shows the count the builder showed.
    expect(page.get_by_test_id("state")).to_have_text("Ready", timeout=20_000)
    expect(page.get_by_test_id("members-count")).to_have_text("1")
    segment_id = page.url.split("/segments/")[1].split("?")[0]
    assert member_ids(http, tenant, segment_id) == {ids["anna"]}
    # The saved tree is back in the builder, with its live count.
    expect(page.get_by_test_id("condition")).to_have_count(2)
    expect(page.get_by_test_id("condition").nth(0).get_by_label("Value")).to_have_value("moscow")
    expect(count).to_have_text("1")

    page.get_by_role("link", name="Members").click()
    expect(page.locator("tr[data-member]")).to_have_count(1)
    page.get_by_role("link", name="Anna").click()
    expect(page.get_by_test_id("customer-segments")).to_contain_text("Moscow regulars")
    page.get_by_role("link", name="Segments").first.click()
    expect(page.locator('tr[data-segment="Moscow regulars"]')).to_contain_text("Ready")
    assert real_errors(pages, page) == []


def test_the_builder_reads_on_a_phone_and_viewers_cannot_edit_it(
    live: LiveServer, engine: Engine, tenant: Tenant, http: httpx.Client, pages: Pages
) -> None:
    shop(live, http, tenant)
    rules = {
        "kind": "all",
        "rules": [
            {"kind": "trait", "field": "city", "op": "in", "value": ["Moscow", "Kazan"]},
            {"kind": "not", "rule": {"kind": "rfm", "classes": ["lost", "hibernating"]}},
            {"kind": "reachable", "channel": "email"},
        ],
    }
    r = http.post(
        "/api/v1/segments", json={"name": "Everyone", "rules": rules}, headers=tenant.bearer
    )
    assert r.status_code == 201, r.text
    segment_id = r.json()["id"]
    live.app.state.segments.drain()
    counted = http.post(
        "/api/v1/segments/preview", json={"rules": rules}, headers=tenant.bearer
    ).json()["count"]

    page = pages.new_page(viewport=PHONE)
    sign_in(page, live, add_user(engine, tenant.id, "viewer"), f"/segments/{segment_id}")
    conditions = page.get_by_test_id("condition")
    expect(conditions).to_have_count(3)
    expect(conditions.nth(0).get_by_label("Values, separated by commas")).to_have_value(
        "Moscow, Kazan"
    )
    expect(conditions.nth(1).get_by_label("Lost")).to_be_checked()
    expect(
        page.locator('.seg-row[data-path="rules.rules[1]"]').get_by_label("Group", exact=True)
    ).to_have_value("not")
    expect(conditions.nth(0).get_by_label("Trait name")).to_be_disabled()
    expect(page.get_by_test_id("save")).to_have_count(0)
    expect(page.get_by_test_id("live-count")).to_have_text(str(counted))
    expect(page.get_by_test_id("members-count")).to_have_text(str(counted))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    assert real_errors(pages, page) == []
