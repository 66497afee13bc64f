"""RFM scores by quantile, named segments, the leaving-customer rule and the console grid."""

from __future__ import annotations

import numpy as np
import pytest

from otklik.insights import rfm
from otklik.insights.rfm import Segment


def test_quintile_edges_and_scores_on_ten_values() -> None:
    values = np.arange(1, 11, dtype=float)
    edges = rfm.quantile_edges(values)
    assert edges.tolist() == pytest.approx([2.8, 4.6, 6.4, 8.2])
    assert rfm.score(values, edges).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_a_score_even_when_they_fill_several_bins() -> None:
    # Six one-time buyers out of ten: every edge up to the 60th percentile is 1.
    purchases = [1, 1, 1, 1, 1, 1, 2, 3, 5, 9]
    s = rfm.rfm_scores(np.zeros(10), purchases, purchases)
    assert s.frequency_edges.tolist() == pytest.approx([1.0, 1.0, 1.4, 3.4])
    assert s.frequency.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_recent_buyers_score_high_and_edges_are_reported_in_days() -> None:
    days = [1, 5, 10, 20, 40, 60, 90, 120, 200, 300]
    s = rfm.rfm_scores(days, np.ones(10), np.ones(10))
    assert s.recency.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert np.all(np.diff(s.recency_edges) > 0)
    assert s.recency_edges[0] == pytest.approx(9.0)  # 20th percentile of days


def test_segment_table_names_the_corners_and_covers_every_cell() -> None:
    r = [5, 5, 4, 3, 2, 1, 1, 1, 5, 4]
    f = [5, 1, 1, 2, 1, 1, 5, 3, 3, 5]
    assert rfm.segments(r, f) == [
        Segment.CHAMPIONS,
        Segment.NEW_CUSTOMERS,
        Segment.PROMISING,
        Segment.NEEDS_ATTENTION,
        Segment.HIBERNATING,
        Segment.LOST,
        Segment.CANT_LOSE,
        Segment.AT_RISK,
        Segment.POTENTIAL_LOYALISTS,
        Segment.LOYAL,
    ]
    all_r, all_f = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    assert set(rfm.segments(all_r.ravel(), all_f.ravel())) == set(Segment)


def test_other_bin_counts_map_onto_the_five_point_table() -> None:
    assert rfm.segments([10, 1], [10, 1], bins=10) == [Segment.CHAMPIONS, Segment.LOST]
    assert rfm.combine_fm([5, 1, 4], [4, 1, 1]).tolist() == [5, 1, 3]
    with pytest.raises(ValueError):
        rfm.segments([6], [1])


def test_grid_counts_customers_and_sums_revenue_per_cell() -> None:
    grid = rfm.rfm_grid([5, 5, 1, 3], [5, 5, 1, 2], [100.0, 50.0, 7.0, 3.0])
    assert grid.count.sum() == 4
    assert grid.count[4, 4] == 2 and grid.revenue[4, 4] == 150.0
    assert grid.count[0, 0] == 1 and grid.revenue[0, 0] == 7.0
    assert grid.revenue[2, 1] == 3.0


def test_usual_gap_is_the_median_of_distinct_purchase_day_gaps() -> None:
    # Customer 1: days 0, 10, 10 (same day), 30, 34 → gaps 10, 20, 4 → median 10.
    # Customer 2: days 5, 11 → median 6. Customer 3: one purchase → no gap.
    # Customer 4: days 0, 2, 10, 20 → gaps 2, 8, 10 → median 8; fed unsorted.
    gaps = rfm.usual_gaps(
        [1, 1, 1, 1, 1, 2, 2, 3, 4, 4, 4, 4],
        [0, 10, 10.5, 30, 34, 5, 11, 7, 20, 0, 10, 2],
    )
    assert gaps.customer.tolist() == [1, 2, 3, 4]
    assert gaps.median_gap[[0, 1, 3]].tolist() == [10, 6, 8]
    assert np.isnan(gaps.median_gap[2])
    assert gaps.last_day.tolist() == [34, 11, 7, 20]


def test_even_gap_counts_average_the_middle_pair() -> None:
    gaps = rfm.usual_gaps([1, 1, 1, 1, 1], [0, 1, 4, 10, 30])  # gaps 1, 3, 6, 20
    assert gaps.median_gap.tolist() == [4.5]


def test_leaving_when_away_longer_than_k_usual_gaps() -> None:
    since = [25, 15, 20, 400, 40]
    gap = [10, 10, 10, np.nan, np.nan]
    assert rfm.leaving(since, gap).tolist() == [True, False, False, False, False]
    assert rfm.leaving(since, gap, k=1.0).tolist() == [True, True, True, False, False]
    assert rfm.leaving(since, gap, fallback_gap=30).tolist() == [True, False, False, True, False]
