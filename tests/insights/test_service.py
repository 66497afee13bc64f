"""Refitting a workspace's customer models and keeping each customer's scores current."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from otklik.insights import service
from otklik.insights.rfm import Segment
from otklik.kit.db import read_tx, write_tx
from otklik.kit.time import utc_now
from tests.conftest import Tenant, make_tenant
from tests.insights.support import (
    NOW,
    buy,
    days_ago,
    delete_orders,
    erase,
    fit_rows,
    generated_shop,
    merge_into,
    person,
    refit,
    rescore,
    scores,
    set_status,
)

CLASSES = {s.value for s in Segment}


def test_a_refit_scores_every_customer_and_records_the_fit(engine: Engine, tenant: Tenant) -> None:
    shop = generated_shop(engine, tenant.id)
    result = refit(engine, tenant.id)

    assert result.status == "ok", result.error
    assert result.customers == result.scored == len(shop.people)
    rows = scores(engine, tenant.id)
    assert set(rows) == set(shop.people)
    for pid, row in rows.items():
        bought = shop.purchases[pid]
        assert row["frequency"] == len({t.date() for t, _ in bought})
        assert row["monetary"] == pytest.approx(sum(a for _, a in bought), abs=0.01)
        assert row["recency_days"] == (NOW.date() - max(t for t, _ in bought).date()).days
        assert {row["r"], row["f"], row["m"]} <= {1, 2, 3, 4, 5}
        assert row["rfm_class"] in CLASSES
        assert 0.0 <= row["p_alive"] <= 1.0
        assert row["expected_purchases"] >= 0.0 and row["clv"] >= 0.0
        assert row["scored_at"] == NOW
    # Many distinct classes: scoring is relative to the shop, not a constant.
    assert len({row["rfm_class"] for row in rows.values()}) >= 5

    (fit,) = fit_rows(engine, tenant.id)
    assert fit["id"] == result.id and fit["status"] == "ok" and fit["error"] is None
    assert fit["fitted_at"] == NOW and fit["customers"] == len(shop.people)
    assert set(fit["params"]["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(fit["params"]["gamma_gamma"]) == {"p", "q", "v"}
    assert len(fit["params"]["rfm"]["frequency_edges"]) == 4
    assert fit["params"]["unit"] == "days" and fit["params"]["horizon_days"] == 90
    quality = fit["quality"]
    assert quality["bgnbd"]["converged"] and quality["bgnbd"]["log_likelihood"] < 0
    assert quality["customers"] == len(shop.people)
    assert 0 < quality["repeat_buyers"] < len(shop.people)
    assert abs(quality["spend_frequency_correlation"]) < 0.3
    holdout = quality["holdout"]
    assert holdout["status"] == "ok" and holdout["actual"] > 0
    # The generated shop follows the model's own story, so the forecast is close.
    assert abs(holdout["error_pct"]) < 35


def test_frequent_recent_buyers_are_champions_and_one_old_order_is_lost(
    engine: Engine, tenant: Tenant
) -> None:
    generated_shop(engine, tenant.id)
    fan = person(engine, tenant.id)
    buy(engine, tenant.id, fan, *[(days_ago(d), 3000.0) for d in range(2, 200, 10)])
    gone = person(engine, tenant.id)
    buy(engine, tenant.id, gone, (days_ago(360), 700.0))

    refit(engine, tenant.id)
    rows = scores(engine, tenant.id)
    assert (rows[fan]["r"], rows[fan]["f"], rows[fan]["rfm_class"]) == (5, 5, "champions")
    assert (rows[gone]["r"], rows[gone]["f"], rows[gone]["rfm_class"]) == (1, 1, "lost")
    assert rows[fan]["p_alive"] > 0.9 and not rows[fan]["leaving"]
    assert rows[fan]["usual_gap_days"] == 10.0
    assert rows[fan]["clv"] > rows[gone]["clv"]
    # One purchase: BG/NBD cannot see a drop-out yet, and there is no gap of their own, but
    # they have been away far longer than the shop's usual gap.
    assert rows[gone]["p_alive"] == 1.0 and rows[gone]["usual_gap_days"] is None
    assert rows[gone]["leaving"]


def test_a_fit_that_cannot_be_made_is_recorded_with_its_reason_and_rfm_still_scores(
    engine: Engine, tenant: Tenant
) -> None:
    people = [person(engine, tenant.id) for _ in range(3)]
    for n, pid in enumerate(people):
        buy(
            engine, tenant.id, pid, *[(days_ago(5 + 30 * k), 100.0 * (n + 1)) for k in range(n + 1)]
        )

    result = refit(engine, tenant.id)

    assert result.status == "failed"
    assert result.error is not None and "at least 20" in result.error
    (fit,) = fit_rows(engine, tenant.id)
    assert fit["status"] == "failed" and fit["error"] == result.error
    assert fit["quality"]["bgnbd"] == {
        "status": "failed",
        "reason": "too_few_customers",
        "message": "3 customers with orders; the model needs at least 20",
    }
    assert fit["params"]["bgnbd"] is None
    rows = scores(engine, tenant.id)
    assert set(rows) == set(people)
    assert [rows[p]["f"] for p in people] == sorted(rows[p]["f"] for p in people)
    assert all(r["rfm_class"] in CLASSES and r["p_alive"] is None for r in rows.values())
    assert all(r["clv"] is None for r in rows.values())


def test_no_repeat_buyers_fail_the_purchase_model(engine: Engine, tenant: Tenant) -> None:
    for n in range(25):
        buy(engine, tenant.id, person(engine, tenant.id), (days_ago(n * 3), 500.0))
    result = refit(engine, tenant.id)
    assert result.status == "failed"
    assert fit_rows(engine, tenant.id)[0]["quality"]["bgnbd"]["reason"] == "no_repeat_buyers"
    assert result.scored == 25


def test_spend_that_grows_with_frequency_fits_purchases_but_not_spend(
    engine: Engine, tenant: Tenant
) -> None:
    for n in range(30):
        visits = 1 + n % 6
        spend = 100.0 * visits  # heavy buyers spend more per order: Gamma-Gamma refuses
        pid = person(engine, tenant.id)
        buy(engine, tenant.id, pid, *[(days_ago(3 + 20 * k + n), spend) for k in range(visits)])

    result = refit(engine, tenant.id)

    assert result.status == "partial"
    assert result.error is not None and "Gamma-Gamma" in result.error
    fit = fit_rows(engine, tenant.id)[0]
    assert fit["quality"]["gamma_gamma"]["reason"] == "spend_correlated"
    assert fit["quality"]["spend_frequency_correlation"] > 0.9
    rows = scores(engine, tenant.id).values()
    assert all(r["p_alive"] is not None and r["clv"] is None for r in rows)


def test_a_new_order_rescores_that_customer_without_refitting(
    engine: Engine, tenant: Tenant
) -> None:
    generated_shop(engine, tenant.id)
    gone = person(engine, tenant.id)
    buy(engine, tenant.id, gone, (days_ago(300), 500.0))
    first = refit(engine, tenant.id)
    before = scores(engine, tenant.id)
    assert before[gone]["rfm_class"] == "lost"

    buy(engine, tenant.id, gone, *[(days_ago(d), 9000.0) for d in (40, 25, 12, 3, 1)])
    later = NOW + timedelta(hours=2)
    assert rescore(engine, tenant.id, [gone], later) == 1

    after = scores(engine, tenant.id)
    row = after[gone]
    assert (row["frequency"], row["monetary"], row["recency_days"]) == (6, 45500.0, 1.0)
    assert (row["r"], row["f"], row["m"]) == (5, 5, 5)
    assert row["rfm_class"] == "champions"
    assert row["p_alive"] > 0.8
    assert row["expected_purchases"] > before[gone]["expected_purchases"]
    assert row["clv"] > before[gone]["clv"]
    assert row["usual_gap_days"] == 13.0 and row["scored_at"] == later
    # Nobody else moved, and no new fit was made.
    assert {k: v for k, v in after.items() if k != gone} == {
        k: v for k, v in before.items() if k != gone
    }
    fits = fit_rows(engine, tenant.id)
    assert [f["id"] for f in fits] == [first.id]


def test_rescoring_unchanged_customers_gives_what_the_refit_wrote(
    engine: Engine, tenant: Tenant
) -> None:
    shop = generated_shop(engine, tenant.id, customers=40)
    refit(engine, tenant.id)
    before = scores(engine, tenant.id)
    assert rescore(engine, tenant.id, shop.people) == 40
    after = scores(engine, tenant.id)
    for pid in shop.people:
        for key, value in before[pid].items():
            if isinstance(value, float):
                assert after[pid][key] == pytest.approx(value, rel=1e-9), key
            else:
                assert after[pid][key] == value, key


def test_rescore_before_any_fit_does_nothing(engine: Engine, tenant: Tenant) -> None:
    pid = person(engine, tenant.id)
    buy(engine, tenant.id, pid, (days_ago(1), 100.0))
    assert rescore(engine, tenant.id, [pid]) == 0
    assert scores(engine, tenant.id) == {}


def test_merged_profiles_orders_count_for_the_profile_they_were_merged_into(
    engine: Engine, tenant: Tenant
) -> None:
    generated_shop(engine, tenant.id, customers=30)
    root, phone, email = (person(engine, tenant.id) for _ in range(3))
    buy(engine, tenant.id, root, (days_ago(50), 1000.0))
    buy(engine, tenant.id, phone, (days_ago(20), 2000.0), (days_ago(50, NOW), 1.0))
    merge_into(engine, phone, root)

    refit(engine, tenant.id)
    rows = scores(engine, tenant.id)
    assert phone not in rows
    # Day 50 ordered on both profiles: one purchase day, its amounts added up.
    assert (rows[root]["frequency"], rows[root]["monetary"]) == (2, 3001.0)
    assert rows[root]["recency_days"] == 20

    # A later merge: the rescore of both ids moves the merged one's orders to the root.
    buy(engine, tenant.id, email, (days_ago(2), 400.0))
    rescore(engine, tenant.id, [email])
    assert scores(engine, tenant.id)[email]["frequency"] == 1
    merge_into(engine, email, root)
    rescore(engine, tenant.id, [email])
    rows = scores(engine, tenant.id)
    assert email not in rows
    assert (rows[root]["frequency"], rows[root]["recency_days"]) == (3, 2)
    with read_tx(engine) as conn:
        asked = service.profile_scores(conn, tenant.id, email)
    assert asked["profile_id"] == root and asked["requested_id"] == email


def test_zero_value_and_same_day_duplicate_orders(engine: Engine, tenant: Tenant) -> None:
    generated_shop(engine, tenant.id, customers=30)
    pid = person(engine, tenant.id)
    day = days_ago(10).replace(hour=9)
    buy(
        engine,
        tenant.id,
        pid,
        (day, 100.0),
        (day + timedelta(hours=3), 50.0),  # the same day: one purchase day of 150
        (day + timedelta(hours=3), 50.0),  # a resent duplicate the same day
        (days_ago(40), 0.0),  # a free sample is still a visit
    )
    refit(engine, tenant.id)
    row = scores(engine, tenant.id)[pid]
    assert (row["frequency"], row["monetary"], row["recency_days"]) == (2, 200.0, 10)
    assert row["usual_gap_days"] == 30.0


def test_purchase_days_follow_the_workspace_time_zone(engine: Engine) -> None:
    # 21:30 UTC is 00:30 the next day in Moscow, the same local day as 08:00 UTC then.
    evening, morning = days_ago(3).replace(hour=21, minute=30), days_ago(2).replace(hour=8)
    counted = {}
    for zone in ("UTC", "Europe/Moscow"):
        ws = make_tenant(engine, timezone=zone)
        pid = person(engine, ws.id)
        buy(engine, ws.id, pid, (evening, 10.0), (morning, 20.0))
        refit(engine, ws.id)
        counted[zone] = scores(engine, ws.id)[pid]["frequency"]
    assert counted == {"UTC": 2, "Europe/Moscow": 1}


def test_people_without_counted_orders_lose_their_scores(engine: Engine, tenant: Tenant) -> None:
    shop = generated_shop(engine, tenant.id, customers=30)
    refunded, erased, emptied = shop.people[:3]
    cancelled_only = person(engine, tenant.id)
    buy(engine, tenant.id, cancelled_only, (days_ago(3), 900.0), status="cancelled")
    refit(engine, tenant.id)
    assert cancelled_only not in scores(engine, tenant.id)

    set_status(engine, refunded, "refunded")
    erase(engine, erased)
    delete_orders(engine, emptied)
    assert rescore(engine, tenant.id, [refunded, erased, emptied]) == 0
    assert not {refunded, erased, emptied} & set(scores(engine, tenant.id))

    result = refit(engine, tenant.id, NOW + timedelta(days=1))
    assert set(scores(engine, tenant.id)) == set(shop.people[3:])
    assert result.scored == 27


def test_a_refit_reports_who_changed_class(engine: Engine, tenant: Tenant) -> None:
    shop = generated_shop(engine, tenant.id, customers=40)
    first = refit(engine, tenant.id)
    assert sorted(first.changed) == sorted(shop.people)  # all scored for the first time
    assert refit(engine, tenant.id).changed == []  # nothing new, nothing moved

    newcomer = person(engine, tenant.id)
    buy(engine, tenant.id, newcomer, (days_ago(1), 100.0))
    delete_orders(engine, shop.people[0])
    third = refit(engine, tenant.id)
    assert {newcomer, shop.people[0]} <= set(third.changed)
    rows = scores(engine, tenant.id)
    stayed = [p for p in shop.people[1:] if p not in third.changed]
    assert stayed, "adding one customer should not reclassify everyone"
    assert all(rows[p]["rfm_class"] is not None for p in stayed)


def test_orders_stored_while_a_fit_was_computed_are_scored_when_it_is_saved(
    engine: Engine, tenant: Tenant
) -> None:
    shop = generated_shop(engine, tenant.id, customers=30)
    late = shop.people[0]
    with read_tx(engine) as conn:
        prepared = service.compute_fit(conn, tenant.id, NOW)
    buy(engine, tenant.id, late, *[(days_ago(d), 100.0) for d in (1, 2, 3)])
    with write_tx(engine) as conn:
        service.save_fit(conn, prepared)
    expected = len(
        {t.date() for t, _ in shop.purchases[late]} | {days_ago(d).date() for d in (1, 2, 3)}
    )
    assert scores(engine, tenant.id)[late]["frequency"] == expected


def test_refit_is_due_without_a_fit_or_once_the_latest_is_old(
    engine: Engine, tenant: Tenant
) -> None:
    every = timedelta(hours=24)
    with read_tx(engine) as conn:
        assert service.refit_due(conn, tenant.id, NOW, every)
    refit(engine, tenant.id)  # an empty shop: failed, but a fit all the same
    with read_tx(engine) as conn:
        assert not service.refit_due(conn, tenant.id, NOW + timedelta(hours=23), every)
        assert service.refit_due(conn, tenant.id, NOW + every, every)
        assert service.refit_due(conn, make_tenant(engine).id, NOW, every)


def test_the_rfm_grid_counts_customers_and_revenue_per_cell_and_class(
    engine: Engine, tenant: Tenant
) -> None:
    generated_shop(engine, tenant.id)
    refit(engine, tenant.id)
    rows = scores(engine, tenant.id).values()
    with read_tx(engine) as conn:
        grid = service.rfm_grid(conn, tenant.id)

    assert grid.bins == 5 and len(grid.cells) == 25 and grid.fitted_at == NOW
    assert [(c.r, c.f) for c in grid.cells[:6]] == [(5, 1), (5, 2), (5, 3), (5, 4), (5, 5), (4, 1)]
    for cell in grid.cells:
        inside = [r for r in rows if (r["r"], r["f"]) == (cell.r, cell.f)]
        assert cell.customers == len(inside)
        assert cell.revenue == pytest.approx(sum(r["monetary"] for r in inside))
        assert all(r["rfm_class"] == cell.segment for r in inside)
    assert [c.name for c in grid.classes] == [s.value for s in Segment]
    for total in grid.classes:
        inside = [r for r in rows if r["rfm_class"] == total.name]
        assert total.customers == len(inside)
        assert total.leaving == sum(1 for r in inside if r["leaving"])
    assert grid.customers == len(rows)
    assert grid.revenue == pytest.approx(sum(r["monetary"] for r in rows))


def test_workspaces_do_not_see_each_others_customers(engine: Engine, tenant: Tenant) -> None:
    generated_shop(engine, tenant.id, customers=30)
    other = make_tenant(engine)
    refit(engine, other.id)
    assert scores(engine, other.id) == {}
    with read_tx(engine) as conn:
        assert service.rfm_grid(conn, other.id).customers == 0
        with pytest.raises(service.ProfileNotFound):
            service.profile_scores(conn, other.id, person(engine, tenant.id))


def test_bins_are_configurable(engine: Engine, tenant: Tenant) -> None:
    generated_shop(engine, tenant.id)
    refit(engine, tenant.id, bins=4)
    rows = scores(engine, tenant.id).values()
    assert {r["r"] for r in rows} <= {1, 2, 3, 4} and max(r["f"] for r in rows) <= 4
    with read_tx(engine) as conn:
        assert len(service.rfm_grid(conn, tenant.id).cells) == 16
    with pytest.raises(service.BadOptions), write_tx(engine) as conn:
        service.refit(conn, tenant.id, utc_now(), bins=1)


def test_two_refits_at_once_both_finish(engine: Engine, tenant: Tenant) -> None:
    shop = generated_shop(engine, tenant.id, customers=60)
    with read_tx(engine) as conn:
        prepared = [service.compute_fit(conn, tenant.id, NOW) for _ in range(2)]
    errors: list[BaseException] = []

    def save(one: service.PreparedFit) -> None:
        try:
            with write_tx(engine) as conn:
                service.save_fit(conn, one)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(one,)) for one in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert set(scores(engine, tenant.id)) == set(shop.people)
    assert len(fit_rows(engine, tenant.id)) == 2
