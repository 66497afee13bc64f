"""Gamma-Gamma: reproduces Fader & Hardie (2013) on CDNOW and combines with BG/NBD into CLV.

The note fits the 946 repeat buyers of the calibration period on the mean of their repeat
transactions (purchase days with same-day rows summed, first purchase excluded).
"""

from __future__ import annotations

import numpy as np
import pytest

from otklik.insights import bgnbd, gamma_gamma
from otklik.insights.gamma_gamma import CorrelatedSpendError
from tests.insights.test_bgnbd import cdnow_fit, cdnow_weeks


def test_reproduces_the_published_cdnow_parameters_within_one_percent() -> None:
    s = cdnow_weeks()
    got = gamma_gamma.fit(s.monetary_count, s.monetary)
    assert got.converged
    assert got.n_customers == 946
    assert got.p == pytest.approx(6.25, rel=0.01)
    assert got.q == pytest.approx(3.74, rel=0.01)
    assert got.v == pytest.approx(15.44, rel=0.01)
    assert abs(got.correlation) < 0.3  # 0.11 on CDNOW: the independence assumption holds


def test_expected_spend_shrinks_towards_the_population_mean() -> None:
    params = gamma_gamma.GammaGammaParams(6.25, 3.74, 15.44, 0.0, True, 0, 946, 0.1)
    population = 6.25 * 15.44 / (3.74 - 1)
    one, many, none = gamma_gamma.expected_average_spend(params, [1, 50, 0], [100.0, 100.0, 0.0])
    assert population < one < many < 100.0
    assert none == pytest.approx(population)


def test_refuses_to_fit_when_spend_follows_frequency() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(1, 20, 500).astype(float)
    m = 10.0 * x + rng.normal(0, 1, 500)
    with pytest.raises(CorrelatedSpendError) as err:
        gamma_gamma.fit(x, m)
    assert err.value.correlation > 0.9
    assert err.value.details == {"correlation": err.value.correlation, "threshold": 0.3}


def test_clv_is_discounted_expected_purchases_times_expected_spend() -> None:
    s = cdnow_weeks()
    bg = cdnow_fit()
    gg = gamma_gamma.fit(s.monetary_count, s.monetary)
    weeks_per_month = 365.25 / 12 / 7
    args = (bg, gg, s.frequency, s.recency, s.T, s.monetary, s.monetary_count)
    undiscounted = gamma_gamma.customer_lifetime_value(
        *args, months=12, monthly_discount_rate=0.0, periods_per_month=weeks_per_month
    )
    spend = gamma_gamma.expected_average_spend(gg, s.monetary_count, s.monetary)
    purchases = bgnbd.expected_purchases(bg, 12 * weeks_per_month, s.frequency, s.recency, s.T)
    assert undiscounted == pytest.approx(spend * purchases, rel=1e-9)
    discounted = gamma_gamma.customer_lifetime_value(
        *args, months=12, monthly_discount_rate=0.01, periods_per_month=weeks_per_month
    )
    assert np.all(discounted <= undiscounted)
    assert np.all(discounted >= undiscounted / 1.01**12)
