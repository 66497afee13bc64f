"""Live events in a real browser: an event sent by the Segment Python SDK appears without reload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


@pytest.fixture
def segment(live: LiveServer, tenant: Tenant) -> Iterator[Any]:
    """The documented module-level SDK, pointed at the live server and sending synchronously."""
    import segment.analytics as analytics

    errors: list[Any] = []
    saved = (analytics.write_key, analytics.host, analytics.sync_mode, analytics.on_error)
    analytics.write_key = tenant.write_key
    analytics.host = live.url
    analytics.sync_mode = True  # each call is posted before it returns
    analytics.on_error = lambda error, batch: errors.append(error)
    analytics.default_client = None
    try:
        yield analytics
    finally:
        analytics.default_client = None
        analytics.write_key, analytics.host, analytics.sync_mode, analytics.on_error = saved
    assert errors == []


def test_an_event_sent_by_the_sdk_appears_live_and_opens_its_detail(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page, pages: Pages, segment: Any
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "viewer"), "/events/live")
    expect(page.locator("#event-empty")).to_be_visible()

    segment.track("sdk-user-1", "Browser Saw This", {"note": "<b>not bold</b>"})

    row = page.locator("#event-rows tr", has_text="Browser Saw This")
    expect(row).to_have_count(1, timeout=10_000)  # polled, no reload
    expect(row).to_contain_text("sdk-user-1")
    expect(row).to_contain_text("track")
    expect(page.locator("#event-empty")).to_be_hidden()

    row.locator("td.event-name").click()
    expect(page.locator("h1")).to_have_text("track: Browser Saw This")
    payload = page.locator("#event-payload")
    expect(payload).to_contain_text('"note": "<b>not bold</b>"')
    expect(payload).to_contain_text('"name": "analytics-python"')
    log = pages.log_of(page)
    assert log.console_errors == [] and log.page_errors == []


def test_pause_holds_new_rows_until_resumed_and_filters_stay_applied(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page, segment: Any
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "viewer"), "/events/live")
    page.select_option("#f-type", "track")
    page.fill("#f-name", "Wanted")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{live.url}/events/live?type=track&name=Wanted&q=")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    segment.track("sdk-user-2", "Wanted Thing")
    segment.track("sdk-user-2", "Other Noise")
    page.wait_for_timeout(3_000)  # more than one poll interval
    expect(page.locator("#event-rows tr")).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#event-rows tr", has_text="Wanted Thing")).to_have_count(1, timeout=10_000)
    expect(page.locator("#event-rows tr", has_text="Other Noise")).to_have_count(0)


def test_rejected_input_shows_up_with_its_reason(
    live: LiveServer, engine: Engine, tenant: Tenant, page: Page
) -> None:
    sign_in(page, live, add_user(engine, tenant.id, "viewer"), "/events/live")
    page.get_by_role("tab", name="Rejected").click()
    expect(page.locator("#rejected-empty")).to_be_visible()

    answer = httpx.post(
        f"{live.url}/v1/batch",
        json={"batch": [{"type": "track", "userId": "u-1", "properties": {"x": 1}}]},
        auth=(tenant.write_key, ""),
    )
    assert answer.status_code == 200

    row = page.locator("#rejected-rows tr")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("missing_event")
    expect(row).to_contain_text("track needs an 'event' name")
    row.get_by_text("What was sent").click()
    expect(row.locator("pre")).to_contain_text('"userId": "u-1"')
