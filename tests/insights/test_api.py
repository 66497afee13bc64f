"""The customer-value REST API: refit on demand, the latest fit, the RFM grid, a person's scores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine

from otklik.kit.time import utc_now
from tests.conftest import Tenant, make_tenant
from tests.insights.support import buy, days_ago, generated_shop, merge_into, person

# The API fits as of the real clock, so these histories end today.
NOW = utc_now()


def call(http: httpx.Client, tenant: Tenant, method: str, path: str, **kw: Any) -> httpx.Response:
    return http.request(method, f"/api/v1{path}", headers=tenant.bearer, **kw)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_before_any_fit_the_latest_fit_is_not_found(http: httpx.Client, tenant: Tenant) -> None:
    r = call(http, tenant, "GET", "/insights")
    assert r.status_code == 404 and r.json()["code"] == "insight_fit_not_found"
    grid = ok(call(http, tenant, "GET", "/insights/rfm"))
    assert grid["customers"] == 0 and grid["fitted_at"] is None and len(grid["cells"]) == 25


def test_refit_fits_scores_and_reports_the_fit(
    http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    shop = generated_shop(engine, tenant.id, now=NOW)
    done = ok(call(http, tenant, "POST", "/insights/refit"))
    assert done["status"] == "ok", done["error"]
    assert done["customers"] == done["scored"] == done["changed"] == len(shop.people)
    assert done["params"]["horizon_days"] == 90 and done["params"]["bgnbd"]["r"] > 0
    assert done["quality"]["bgnbd"]["converged"] is True
    assert done["quality"]["holdout"]["status"] == "ok"

    latest = ok(call(http, tenant, "GET", "/insights"))
    assert latest["id"] == done["id"] and latest["fitted_at"] == done["fitted_at"]
    assert latest["params"] == done["params"] and latest["quality"] == done["quality"]
    assert "scored" not in latest

    again = ok(call(http, tenant, "POST", "/insights/refit"))
    assert again["id"] != done["id"] and again["changed"] == 0


def test_the_rfm_grid_adds_up_to_every_customer(
    http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    shop = generated_shop(engine, tenant.id, now=NOW)
    ok(call(http, tenant, "POST", "/insights/refit"))
    grid = ok(call(http, tenant, "GET", "/insights/rfm"))

    assert grid["bins"] == 5 and len(grid["cells"]) == 25
    assert grid["cells"][0] == {**grid["cells"][0], "r": 5, "f": 1, "segment": "new_customers"}
    assert sum(c["customers"] for c in grid["cells"]) == grid["customers"] == len(shop.people)
    spent = sum(a for bought in shop.purchases.values() for _, a in bought)
    assert Decimal(grid["revenue"]) == Decimal(str(round(spent, 2)))
    assert sum(Decimal(c["revenue"]) for c in grid["cells"]) == Decimal(grid["revenue"])
    names = [c["name"] for c in grid["classes"]]
    assert names[0] == "champions" and names[-1] == "lost" and len(names) == 10
    for cls in grid["classes"]:
        in_cells = [c for c in grid["cells"] if c["segment"] == cls["name"]]
        assert cls["customers"] == sum(c["customers"] for c in in_cells)


def test_refit_options_are_checked(http: httpx.Client, engine: Engine, tenant: Tenant) -> None:
    generated_shop(engine, tenant.id, customers=30, now=NOW)
    done = ok(call(http, tenant, "POST", "/insights/refit", json={"bins": 3, "holdout": False}))
    assert done["params"]["rfm"]["bins"] == 3 and "holdout" not in done["quality"]
    assert len(ok(call(http, tenant, "GET", "/insights/rfm"))["cells"]) == 9
    for bad in ({"bins": 1}, {"horizon_days": 0}, {"bins": 5, "colour": "red"}):
        r = call(http, tenant, "POST", "/insights/refit", json=bad)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", bad


def test_a_failed_fit_is_an_answer_not_an_error(
    http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    pid = person(engine, tenant.id)
    buy(engine, tenant.id, pid, (days_ago(3, NOW), 250.0))
    done = ok(call(http, tenant, "POST", "/insights/refit"))
    assert done["status"] == "failed" and "at least 20" in done["error"]
    assert done["quality"]["bgnbd"]["reason"] == "too_few_customers"
    scores = ok(call(http, tenant, "GET", f"/profiles/{pid}/scores"))
    assert scores["rfm_class"] and scores["p_alive"] is None and scores["clv"] is None


def test_a_persons_scores(http: httpx.Client, engine: Engine, tenant: Tenant) -> None:
    generated_shop(engine, tenant.id, now=NOW)
    pid, merged, idle = (person(engine, tenant.id) for _ in range(3))
    buy(engine, tenant.id, pid, (days_ago(30, NOW), 1000.0), (days_ago(2, NOW), 234.5))
    buy(engine, tenant.id, merged, (days_ago(9, NOW), 10.0))
    merge_into(engine, merged, pid)
    ok(call(http, tenant, "POST", "/insights/refit"))

    scores = ok(call(http, tenant, "GET", f"/profiles/{pid}/scores"))
    assert scores["profile_id"] == scores["requested_id"] == str(pid)
    assert (scores["frequency"], scores["monetary"], scores["recency_days"]) == (3, "1244.50", 2)
    assert scores["r"] == 5 and scores["rfm_class"] in {"potential_loyalists", "champions"}
    assert 0 < scores["p_alive"] <= 1 and Decimal(scores["clv"]) > 0
    assert scores["usual_gap_days"] == 14.0 and scores["leaving"] is False

    via_merged = ok(call(http, tenant, "GET", f"/profiles/{merged}/scores"))
    assert via_merged["profile_id"] == str(pid) and via_merged["requested_id"] == str(merged)

    r = call(http, tenant, "GET", f"/profiles/{idle}/scores")
    assert r.status_code == 404 and r.json()["code"] == "profile_scores_not_found"
    other = make_tenant(engine)
    for who, unknown in ((tenant, "00000000-0000-4000-8000-000000000000"), (other, str(pid))):
        r = call(http, who, "GET", f"/profiles/{unknown}/scores")
        assert r.status_code == 404 and r.json()["code"] == "profile_not_found"


def test_the_api_needs_a_secret_key(http: httpx.Client, tenant: Tenant) -> None:
    assert http.post("/api/v1/insights/refit").status_code == 401
    r = http.get("/api/v1/insights/rfm", auth=(tenant.write_key, ""))
    assert r.status_code == 403 and r.json()["code"] == "secret_key_required"
