"""Console imports: upload a customers or orders file, map its columns, watch it run, read the
report with the rejected rows and why, download them as CSV. Running the same file again
stores nothing and leaves profiles as they were. Only admins and marketers may import.
"""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from otklik.config import Settings
from tests.conftest import LiveServer, Tenant, make_tenant, serve
from tests.offline.support import csv_file, event_count
from tests.profiles.support import lookup
from tests.support.console import ConsoleClient, add_user

# Headers as a CRM export writes them: none is the importer's own name, all are recognised.
HEADER = ("Customer ID", "E-mail", "Телефон", "First Name", "City", "Score")
ROWS = [
    ("k-1", "anna@shop.ru", "+7 912 000 00 01", "Анна", "Москва", "5"),
    ("k-2", "ivan@", "", "Иван", "Тверь", "3"),  # invalid email
    ("k-3", "", "12", "Пётр", "Омск", "1"),  # invalid phone
    ("", "orphan@shop.ru", "", "Некто", "", ""),  # no customer id
    ("k-5", '=HYPERLINK("http://evil")', "", "Ева", "", ""),  # a formula, and no email
    ("k-6", "olga@shop.ru", "", "Ольга", "Пермь", ""),
]
SUGGESTED = ["external_id", "email", "phone", "first_name", "city", "__trait__"]
REJECTED = [
    (2, "invalid_email"),
    (3, "invalid_phone"),
    (4, "missing_external_id"),
    (5, "invalid_email"),
]
SELECT = re.compile(r'<select id="field-\d+" name="field"[^>]*>(.*?)</select>', re.S)
SELECTED = re.compile(r'<option value="([^"]*)" selected>')


def customers_file(rows: Sequence[Sequence[Any]] = ROWS) -> bytes:
    return csv_file(HEADER, rows)


@pytest.fixture
def marketer(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as client:
        yield client


def upload(
    client: ConsoleClient, body: bytes, *, kind: str = "customers", name: str = "people.csv"
) -> httpx.Response:
    return client.post("/imports", data={"kind": kind}, files={"file": (name, body, "text/csv")})


def suggested(page: str) -> list[str]:
    out = []
    for options in SELECT.findall(page):
        found = SELECTED.search(options)
        assert found, options
        out.append(found.group(1))
    return out


def job_id_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    found = re.fullmatch(r"/imports/([0-9a-f-]{36})/mapping", location)
    assert found, location
    return found.group(1)


def wait_done(client: ConsoleClient, job_id: str, timeout: float = 60) -> str:
    """Polls the progress fragment as the page does until it stops asking to be polled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = client.get(f"/imports/{job_id}/progress", headers={"HX-Request": "true"})
        assert fragment.status_code == 200, fragment.text
        if 'data-finished="true"' in fragment.text:
            assert "hx-trigger" not in fragment.text
            return fragment.text
        assert 'hx-trigger="every 1s"' in fragment.text
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def imported(
    client: ConsoleClient,
    body: bytes,
    *,
    kind: str = "customers",
    name: str = "people.csv",
    fields: list[str] | None = None,
) -> tuple[str, str]:
    """Upload, map (as suggested unless told), run to the end: (job id, final fragment)."""
    job_id = job_id_of(upload(client, body, kind=kind, name=name))
    page = client.get(f"/imports/{job_id}/mapping")
    assert page.status_code == 200, page.text
    r = client.post(f"/imports/{job_id}/mapping", data={"field": fields or suggested(page.text)})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/imports/{job_id}?notice=import_started"
    return job_id, wait_done(client, job_id)


def total(fragment: str, name: str) -> int:
    found = re.search(rf'data-total="{name}">([^<]*)<', fragment)
    assert found, name
    return int(re.sub(r"\D", "", found.group(1)))


def rejected_rows(page: str) -> list[tuple[int, str]]:
    rows = re.findall(r'<tr data-row="(\d+)">.*?<code class="small">([a-z_]+)</code>', page, re.S)
    return [(int(row), code) for row, code in rows]


def download(client: ConsoleClient, job_id: str) -> list[list[str]]:
    r = client.get(f"/imports/{job_id}/rejected.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="import-{job_id}-rejected.csv"'
    )
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def profile(live: LiveServer, tenant: Tenant, user_id: str) -> dict[str, Any] | None:
    with httpx.Client(base_url=live.url) as http:
        return lookup(http, tenant, "user_id", user_id)


# -- the whole path ------------------------------------------------------------------------


def test_columns_are_mapped_as_suggested_and_bad_rows_are_reported_with_reasons(
    live: LiveServer, tenant: Tenant, marketer: ConsoleClient
) -> None:
    job_id = job_id_of(upload(marketer, customers_file()))
    page = marketer.get(f"/imports/{job_id}/mapping")
    assert page.status_code == 200
    assert suggested(page.text) == SUGGESTED
    assert "anna@shop.ru" in page.text  # the first rows are shown beside their columns
    assert 'for="field-0"' in page.text  # every select has a label

    r = marketer.post(f"/imports/{job_id}/mapping", data={"field": SUGGESTED})
    assert r.status_code == 303
    fragment = wait_done(marketer, job_id)

    assert [total(fragment, n) for n in ("rows", "accepted", "stored", "rejected")] == [6, 2, 2, 4]
    assert rejected_rows(fragment) == REJECTED
    assert "&#39;ivan@&#39; is not an email address" in fragment
    assert "Not a phone number" in fragment
    page = marketer.get(f"/imports/{job_id}")
    assert page.status_code == 200
    assert rejected_rows(page.text) == REJECTED
    assert "<b>e-mail</b>: ivan@" in page.text  # the row's values as the file had them
    live.drain()
    anna = profile(live, tenant, "k-1")
    assert anna is not None
    assert (anna["email"], anna["phone"]) == ("anna@shop.ru", "+79120000001")
    assert anna["traits"]["firstName"] == "Анна"
    assert anna["traits"]["score"] == "5"  # an unknown column kept as a trait
    assert profile(live, tenant, "k-2") is None
    listing = marketer.get("/imports").text
    assert f'href="/imports/{job_id}"' in listing
    assert 'data-status="done"' in listing
    assert marketer.user.email in listing


def test_the_rejected_rows_download_as_csv_that_no_spreadsheet_runs(
    marketer: ConsoleClient,
) -> None:
    job_id, _ = imported(marketer, customers_file())

    table = download(marketer, job_id)

    assert table[0] == ["row", "code", "field", "message", *(h.lower() for h in HEADER)]
    assert [(int(line[0]), line[1]) for line in table[1:]] == REJECTED
    assert table[1][2:4] == ["email", "'ivan@' is not an email address"]
    assert table[1][4:] == ["k-2", "ivan@", "", "Иван", "Тверь", "3"]
    formula = table[4]
    assert formula[5] == '\'=HYPERLINK("http://evil")'  # quoted: shown as text, never run


def test_importing_the_same_file_again_stores_nothing_and_changes_no_profile(
    live: LiveServer, engine: Engine, tenant: Tenant, marketer: ConsoleClient
) -> None:
    first, fragment = imported(marketer, customers_file())
    assert total(fragment, "stored") == 2
    live.drain()
    events = event_count(engine, tenant.id)
    before = [profile(live, tenant, uid) for uid in ("k-1", "k-6")]

    second, fragment = imported(marketer, customers_file())

    assert second != first
    assert total(fragment, "accepted") == 2
    assert total(fragment, "stored") == 0
    assert "2 already imported before" in fragment
    assert "nothing changed" in fragment
    live.drain()
    assert event_count(engine, tenant.id) == events
    assert [profile(live, tenant, uid) for uid in ("k-1", "k-6")] == before


def test_an_orders_file_with_its_own_column_names_imports_orders(
    live: LiveServer, tenant: Tenant, marketer: ConsoleClient
) -> None:
    imported(marketer, csv_file(("id", "email"), [("k-1", "anna@shop.ru")]))
    body = csv_file(
        ("Номер заказа", "Клиент", "Дата", "Сумма", "Артикул", "Кол-во", "Цена", "Note"),
        [
            ("o-1", "k-1", "2026-03-01", "1500", "SKU-A", "3", "500", "x"),
            ("o-2", "k-1", "31.02.2026", "100", "SKU-B", "1", "100", ""),  # no such day
        ],
    )
    job_id = job_id_of(upload(marketer, body, kind="orders", name="orders.csv"))
    fields = suggested(marketer.get(f"/imports/{job_id}/mapping").text)
    assert fields == [
        "order_id",
        "customer_external_id",
        "placed_at",
        "total",
        "sku",
        "quantity",
        "price",
        "__ignore__",
    ]
    marketer.post(f"/imports/{job_id}/mapping", data={"field": fields})
    fragment = wait_done(marketer, job_id)

    assert [total(fragment, n) for n in ("rows", "accepted", "stored", "rejected")] == [2, 1, 1, 1]
    assert rejected_rows(fragment) == [(2, "invalid_date")]
    live.drain()
    anna = profile(live, tenant, "k-1")
    assert anna is not None
    assert anna["aggregates"]["orders_count"] == 1


def test_a_json_lines_file_is_imported_too(
    live: LiveServer, tenant: Tenant, marketer: ConsoleClient
) -> None:
    body = b'{"external_id": "j-1", "email": "j1@shop.ru"}\nnot json\n'
    _, fragment = imported(marketer, body, name="people.jsonl")

    assert [total(fragment, n) for n in ("rows", "accepted", "rejected")] == [2, 1, 1]
    assert rejected_rows(fragment) == [(2, "invalid_row")]


# -- bad input -------------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_refused_with_a_clear_message(
    marketer: ConsoleClient,
) -> None:
    body = "external_id,first_name\nk-1,Анна\n".encode("cp1251")

    r = upload(marketer, body)

    assert r.status_code == 422
    assert 'data-code="invalid_encoding"' in r.text
    assert "not UTF-8" in r.text
    assert "No imports yet." in r.text  # nothing was kept


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("people.xlsx", b"PK\x03\x04", "unsupported_format"),
        ("people.csv", b"", "empty_file"),
        ("people.csv", b"external_id,email\n", "empty_file"),
        ("people.json", b'{"external_id": "x"}', "invalid_json"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_in_the_page(
    marketer: ConsoleClient, name: str, body: bytes, code: str
) -> None:
    r = upload(marketer, body, name=name)

    assert r.status_code == 422
    assert f'data-code="{code}"' in r.text
    assert 'role="alert"' in r.text


def test_a_file_must_be_chosen_and_the_kind_known(marketer: ConsoleClient) -> None:
    r = marketer.post("/imports", data={"kind": "customers"})
    assert r.status_code == 422
    assert 'data-code="no_file"' in r.text
    r = upload(marketer, customers_file(), kind="products")
    assert r.status_code == 422
    assert 'data-code="unknown_import"' in r.text


def test_a_file_over_the_size_limit_is_refused(
    settings: Settings, engine: Engine, tenant: Tenant
) -> None:
    small = settings.model_copy(update={"import_max_bytes": 100})
    with (
        serve(small, engine) as server,
        ConsoleClient(server.url, add_user(engine, tenant.id, "admin")) as admin,
    ):
        assert "up to 100 B" in admin.get("/imports").text

        r = upload(admin, customers_file())

        assert r.status_code == 413
        assert 'data-code="payload_too_large"' in r.text
        assert "larger than the limit of 100 B" in r.text
        assert upload(admin, csv_file(("external_id",), [("k-1",)])).status_code == 303


def test_the_mapping_must_name_the_required_fields_once(marketer: ConsoleClient) -> None:
    job_id = job_id_of(upload(marketer, customers_file()))
    twice = ["external_id", "email", "email", "first_name", "city", "__trait__"]

    r = marketer.post(f"/imports/{job_id}/mapping", data={"field": twice})

    assert r.status_code == 422
    assert 'data-code="field_twice"' in r.text
    assert suggested(r.text) == twice  # the form keeps what was chosen
    without_id = ["__ignore__", "email", "phone", "first_name", "city", "__trait__"]
    r = marketer.post(f"/imports/{job_id}/mapping", data={"field": without_id})
    assert r.status_code == 422
    assert 'data-code="field_missing"' in r.text
    assert "external_id" in r.text
    r = marketer.post(f"/imports/{job_id}/mapping", data={"field": ["email"]})
    assert r.status_code == 422
    # Still waiting for its mapping: the job page sends people back to it.
    r = marketer.get(f"/imports/{job_id}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/imports/{job_id}/mapping"


def test_a_finished_import_is_neither_mapped_again_nor_run_again(
    marketer: ConsoleClient,
) -> None:
    job_id, fragment = imported(marketer, customers_file())
    assert "Run again" not in fragment

    r = marketer.post(f"/imports/{job_id}/mapping", data={"field": SUGGESTED})
    assert r.status_code == 303
    assert r.headers["location"] == f"/imports/{job_id}"
    r = marketer.post(f"/imports/{job_id}/rerun")
    assert r.status_code == 409
    assert 'data-code="import_not_rerunnable"' in r.text


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_and_marketers_may_import(
    live: LiveServer, engine: Engine, tenant: Tenant, marketer: ConsoleClient, role: str
) -> None:
    job_id, _ = imported(marketer, customers_file())
    with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as client:
        assert 'href="/imports"' not in client.get("/").text
        answers = [
            client.get("/imports"),
            upload(client, customers_file()),
            client.get(f"/imports/{job_id}"),
            client.get(f"/imports/{job_id}/mapping"),
            client.post(f"/imports/{job_id}/mapping", data={"field": SUGGESTED}),
            client.get(f"/imports/{job_id}/progress"),
            client.get(f"/imports/{job_id}/rejected.csv"),
            client.post(f"/imports/{job_id}/rerun"),
        ]
    for r in answers:
        assert r.status_code == 403, (r.request.url, r.status_code)
        assert "<code>permission_denied</code>" in r.text


def test_another_workspaces_import_is_not_found(
    live: LiveServer, engine: Engine, marketer: ConsoleClient
) -> None:
    job_id, _ = imported(marketer, customers_file())
    other = make_tenant(engine)
    with ConsoleClient(live.url, add_user(engine, other.id, "admin")) as client:
        assert job_id not in client.get("/imports").text
        for r in [
            client.get(f"/imports/{job_id}"),
            client.get(f"/imports/{job_id}/mapping"),
            client.post(f"/imports/{job_id}/mapping", data={"field": SUGGESTED}),
            client.get(f"/imports/{job_id}/progress"),
            client.get(f"/imports/{job_id}/rejected.csv"),
            client.post(f"/imports/{job_id}/rerun"),
            client.get(f"/imports/{uuid.uuid4()}"),
            client.get("/imports/not-an-id"),
        ]:
            assert r.status_code == 404, (r.request.url, r.status_code)
            assert "<code>import_not_found</code>" in r.text


def test_uploads_need_the_forms_csrf_token(marketer: ConsoleClient) -> None:
    r = marketer.http.post(
        "/imports",
        data={"kind": "customers"},
        files={"file": ("people.csv", customers_file(), "text/csv")},
    )
    assert r.status_code == 403
    assert "<code>csrf_failed</code>" in r.text
