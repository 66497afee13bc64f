"""Console "Customer value": the latest fit in words, the RFM grid with counts and revenue per
cell, the named classes, and a refit on demand for the roles that manage data."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from otklik.kit.time import utc_now
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.insights.support import buy, days_ago, fit_rows, generated_shop, person, scores
from tests.support.console import ConsoleClient, add_user

NOW = utc_now()
CELL = re.compile(
    r'<td class="lvl-(\d)" data-r="(\d)" data-f="(\d)" data-count="(\d+)"[^>]*>\s*'
    r'<span class="count">[^<]*</span>\s*<span class="revenue">([^<]*)</span>'
)


@pytest.fixture
def marketer(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as client:
        yield client


def test_before_any_fit_the_page_says_so_and_offers_a_refit(marketer: ConsoleClient) -> None:
    page = marketer.get("/insights")
    assert page.status_code == 200
    assert "The models have not been fitted yet" in page.text
    assert "every 24 hours" in page.text
    assert "No customer has been scored yet." in page.text
    assert 'action="/insights/refit"' in page.text
    assert '<a href="/insights" aria-current="page">Customer value</a>' in page.text


def test_refit_now_fits_and_the_page_shows_the_fit_grid_and_classes(
    marketer: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    shop = generated_shop(engine, tenant.id, now=NOW)
    done = marketer.post("/insights/refit", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/insights?refitted=ok"
    (fit,) = fit_rows(engine, tenant.id)
    assert fit["status"] == "ok"

    page = marketer.get("/insights?refitted=ok").text
    assert "The models are refitted." in page
    assert f"on {len(shop.people)} customers with orders" in page
    repeat = fit["quality"]["repeat_buyers"]
    assert f"{repeat} of them bought on more than one day" in page
    assert "converged in" in page and "Spend model (Gamma-Gamma): predicts spend" in page
    holdout = fit["quality"]["holdout"]
    assert f"those customers made {holdout['actual']}." in page

    cells = CELL.findall(page)
    assert len(cells) == 25
    rows = scores(engine, tenant.id).values()
    top = max(int(c[3]) for c in cells)
    for level, r, f, count, revenue in cells:
        inside = [s for s in rows if (s["r"], s["f"]) == (int(r), int(f))]
        assert int(count) == len(inside)
        assert (int(level) == 0) == (not inside) and (int(level) == 5) == (int(count) == top)
        spent = sum(s["monetary"] for s in inside)
        assert revenue.replace("RUB", "").replace(",", "").strip() == f"{spent:.2f}"
    champions = re.search(r'<tr data-class="champions">(.*?)</tr>', page, re.S)
    assert champions is not None
    expected = sum(1 for s in rows if s["rfm_class"] == "champions")
    assert f'<td class="num">{expected}</td>' in champions.group(1)
    assert "Bought recently and often" in champions.group(1)


def test_a_failed_fit_is_explained_in_words(
    marketer: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    buy(engine, tenant.id, person(engine, tenant.id), (days_ago(2, NOW), 100.0))
    done = marketer.post("/insights/refit", follow_redirects=False)
    assert done.headers["location"] == "/insights?refitted=failed"
    page = marketer.get("/insights").text
    assert "Not fitted" in page
    assert "Purchase model (BG/NBD) not fitted: too few customers have ordered yet." in page
    assert "Spend model (Gamma-Gamma) not fitted: fewer than 3 customers" in page
    assert page.count('data-count="1"') == 1  # RFM still scores the one customer


def test_viewers_read_the_page_but_cannot_refit(live: LiveServer, engine: Engine) -> None:
    tenant = make_tenant(engine)
    generated_shop(engine, tenant.id, customers=30, now=NOW)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get("/insights")
        assert page.status_code == 200 and 'action="/insights/refit"' not in page.text
        refused = viewer.post("/insights/refit")
        assert refused.status_code == 403 and "permission_denied" in refused.text
    assert fit_rows(engine, tenant.id) == []


def test_refit_needs_the_forms_token(
    marketer: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    forged = marketer.http.post("/insights/refit", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and "csrf_failed" in forged.text
    assert fit_rows(engine, tenant.id) == []


def test_the_page_is_in_russian_for_russian_readers(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    generated_shop(engine, tenant.id, customers=30, now=NOW)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as marketer:
        marketer.post("/insights/refit")
        page = marketer.get("/insights", headers={"accept-language": "ru"}).text
    assert "Ценность клиентов" in page and "Чемпионы" in page and "Сетка RFM" in page
