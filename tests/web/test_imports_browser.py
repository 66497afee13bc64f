"""A marketer imports a customers file with bad rows in a real browser: upload, map the columns,
watch the progress bar reach the end, read the rejected rows and download them as CSV.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from otklik.offline import jobs_runner
from tests.conftest import LiveServer, Tenant
from tests.offline.support import csv_file
from tests.support.browser import PHONE, Pages
from tests.support.console import add_user, sign_in

HEADER = ("Customer ID", "E-mail", "Phone", "Name", "Score")
ROWS = [
    ("b-1", "anna@shop.ru", "+7 912 000 00 01", "Анна", "5"),
    ("b-2", "ivan@", "", "Иван", "3"),  # invalid email
    ("b-3", "", "12", "Пётр", "1"),  # invalid phone
    ("", "nobody@shop.ru", "", "Некто", ""),  # no customer id
    ("b-5", "olga@shop.ru", "", "Ольга", "2"),
]


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


@pytest.fixture
def slow_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing takes a moment, so the page shows the job running before it is done."""
    real = jobs_runner.store

    def store(engine: Engine, rows: Any, progress: Any = None) -> int:
        time.sleep(1.5)
        return real(engine, rows, progress)

    monkeypatch.setattr(jobs_runner, "store", store)


def test_a_marketer_imports_customers_and_downloads_the_rejected_rows(
    live: LiveServer,
    engine: Engine,
    tenant: Tenant,
    page: Page,
    pages: Pages,
    tmp_path: Path,
    slow_store: None,
) -> None:
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_file(HEADER, ROWS))
    sign_in(page, live, add_user(engine, tenant.id, "marketer"))

    page.get_by_role("link", name="Imports").click()
    expect(page.locator("h1")).to_have_text("Imports")
    page.get_by_label("Customers").check()
    page.get_by_label("File").set_input_files(source)
    page.get_by_role("button", name="Upload and map columns").click()

    expect(page.locator("h1")).to_have_text("Map columns")
    expect(page.get_by_label("Field for column customer id")).to_have_value("external_id")
    expect(page.get_by_label("Field for column e-mail")).to_have_value("email")
    expect(page.get_by_label("Field for column name")).to_have_value("name")
    expect(page.get_by_label("Field for column score")).to_have_value("__trait__")
    page.get_by_label("Field for column score").select_option("__ignore__")
    page.get_by_role("button", name="Start the import").click()

    expect(page.locator(".notice")).to_have_text("The import has started.")
    box = page.locator("#import-progress")
    expect(box).to_have_attribute("data-finished", "false")  # polled every second ...
    bar = page.get_by_role("progressbar", name="Import progress")
    expect(box).to_have_attribute("data-finished", "true", timeout=20_000)  # ... until done
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(box.locator(".badge")).to_have_text("done")
    expect(page.locator('[data-total="stored"]')).to_have_text("2")
    expect(page.locator('[data-total="rejected"]')).to_have_text("3")
    rejected = page.locator("table.rejected tbody tr")
    expect(rejected).to_have_count(3)
    expect(rejected.nth(0)).to_contain_text("Not an email address")
    expect(rejected.nth(0)).to_contain_text("ivan@")
    expect(rejected.nth(1)).to_contain_text("invalid_phone")
    expect(rejected.nth(2)).to_contain_text("missing_external_id")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download rejected rows (CSV)").click()
    download = info.value
    assert download.suggested_filename.endswith("-rejected.csv")
    saved = tmp_path / "rejected.csv"
    download.save_as(saved)
    with saved.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [
        "row",
        "code",
        "field",
        "message",
        "customer id",
        "e-mail",
        "phone",
        "name",
        "score",
    ]
    assert [line[:2] for line in table[1:]] == [
        ["2", "invalid_email"],
        ["3", "invalid_phone"],
        ["4", "missing_external_id"],
    ]

    page.get_by_role("link", name="← Imports").click()
    expect(page.locator("table.imports tbody tr")).to_have_count(1)
    expect(page.locator("table.imports .badge")).to_have_text("done")
    log = pages.log_of(page)
    assert log.console_errors == [] and log.page_errors == []


def test_the_imports_page_fits_a_phone(
    live: LiveServer, engine: Engine, tenant: Tenant, pages: Pages
) -> None:
    phone = pages.new_page(viewport=PHONE)
    sign_in(phone, live, add_user(engine, tenant.id, "admin"))
    phone.goto(f"{live.url}/imports")
    expect(phone.get_by_label("File")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
