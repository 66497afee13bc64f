"""The per-customer summary: purchase days, not order rows, and paid repeat days for spend."""

from __future__ import annotations

import numpy as np
import pytest

from otklik.insights.summary import BadTransactions, collapse_days, day_numbers, summarize
from tests.insights import load_cdnow


def test_same_day_orders_are_one_purchase_and_first_day_is_not_a_repeat() -> None:
    # Customer 7: two orders on day 10 (10.2 and 10.9 are the same calendar day), one on 17,
    # one on 31. Customer 3: a single order.
    s = summarize(
        [7, 7, 7, 7, 3],
        [10.2, 10.9, 17.0, 31.5, 12.0],
        [5.0, 15.0, 30.0, 10.0, 8.0],
        calibration_end=38,
    )
    assert s.customer.tolist() == [3, 7]
    assert s.frequency.tolist() == [0, 2]
    assert s.recency.tolist() == [0, 21]
    assert s.T.tolist() == [26, 28]
    assert s.monetary.tolist() == [0, 20]  # mean of 30 and 10; the first day (20) is left out
    assert s.revenue.tolist() == [8, 60]


def test_zero_value_orders_count_as_purchases_but_not_as_spend() -> None:
    s = summarize([1, 1, 1, 1], [0, 5, 9, 12], [40.0, 0.0, 30.0, 10.0], calibration_end=14)
    assert s.frequency[0] == 3  # the free order on day 5 is a visit
    assert s.monetary[0] == 20  # mean of 30 and 10 only
    assert s.monetary_count[0] == 2


def test_orders_after_calibration_end_are_ignored_and_weeks_divide_by_seven() -> None:
    s = summarize(
        [1, 1, 1, 2], [0, 14, 30, 29], [1.0, 2.0, 3.0, 4.0], calibration_end=28, unit="weeks"
    )
    assert s.customer.tolist() == [1]  # customer 2 first bought after the end
    assert s.frequency[0] == 1
    assert s.recency[0] == pytest.approx(2.0)
    assert s.T[0] == pytest.approx(4.0)


def test_collapse_days_sums_amounts_per_day_and_indexes_customers() -> None:
    pd = collapse_days([2, 1, 2, 2], [3.5, 1.0, 3.0, 8.0], [1.0, 2.0, 4.0, 8.0])
    assert pd.customer.tolist() == [1, 2, 2]
    assert pd.day.tolist() == [1, 3, 8]
    assert pd.amount.tolist() == [2, 5, 8]
    assert pd.starts.tolist() == [0, 1, 3]


def test_bad_input_is_refused() -> None:
    with pytest.raises(BadTransactions):
        summarize([1], [0.0], [-5.0], calibration_end=1)
    with pytest.raises(BadTransactions):
        summarize([1, 2], [0.0], [1.0], calibration_end=1)
    with pytest.raises(BadTransactions):
        summarize([1], [np.nan], [1.0], calibration_end=1)


def test_empty_input_gives_an_empty_summary() -> None:
    s = summarize(np.array([], dtype=np.int64), [], [], calibration_end=10)
    assert len(s) == 0


def test_cdnow_calibration_summary_matches_the_papers_data_set() -> None:
    customer, day, dollars = load_cdnow()
    s = summarize(
        customer, day, dollars, calibration_end=day_numbers(["1997-09-30"])[0], unit="weeks"
    )
    # FHL 2005: 2,357 customers; 2,457 repeat transactions (6,919 rows are 6,696 purchase days
    # over the whole period); the Gamma-Gamma note's 946 repeat buyers; T of the first cohort
    # is 38.86 weeks.
    assert len(s) == 2357
    assert s.frequency.sum() == 2457
    assert int((s.frequency > 0).sum()) == 946
    assert s.T.max() == pytest.approx(38.857, abs=1e-3)
