"""Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").

A customer's transaction values are Gamma(p, ν) around a personal mean, with ν ~ Gamma(q, γ)
across customers (``v`` below is the paper's γ). Only the mean spend ``m`` over ``x`` paid
repeat transactions enters the likelihood, so it fits on repeat buyers only. The model assumes
spend is independent of purchase frequency; :func:`fit` checks that and refuses otherwise,
because a CLV that multiplies two dependent predictions would be silently biased.

:func:`customer_lifetime_value` joins it to BG/NBD: expected purchases per month from the
purchase model times expected spend per purchase, discounted monthly (the usual DCF form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from otklik.insights.bgnbd import BgNbdParams, ModelFitError, compress, expected_purchases

FloatArray = npt.NDArray[np.float64]

DAYS_PER_MONTH = 365.25 / 12


class CorrelatedSpendError(ModelFitError):
    code = "spend_frequency_correlated"

    def __init__(self, correlation: float, threshold: float) -> None:
        super().__init__(
            f"frequency and mean spend of repeat buyers correlate at {correlation:.3f} "
            f"(|r| > {threshold}); the Gamma-Gamma model assumes they are independent",
            details={"correlation": correlation, "threshold": threshold},
        )
        self.correlation = correlation


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float
    log_likelihood: float
    converged: bool
    iterations: int
    n_customers: int
    correlation: float  # Pearson r of frequency vs mean spend over the fitted customers


def _repeat_buyers(
    frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    return x[keep], m[keep]


def log_likelihood(
    p: float, q: float, v: float, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of mean spend ``monetary`` over ``frequency`` transactions
    (customers with no paid repeat purchase are left out)."""
    x, m = _repeat_buyers(frequency, monetary)
    out: FloatArray = (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1.0) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(v + m * x)
    )
    return out


def _neg_ll_and_grad(theta: FloatArray, x: FloatArray, m: FloatArray) -> tuple[float, FloatArray]:
    p, q, v = np.exp(theta)
    ll = log_likelihood(p, q, v, x, m)
    dig_pxq = special.digamma(p * x + q)
    log_vmx = np.log(v + m * x)
    d_p = x * (dig_pxq - special.digamma(p * x) + np.log(m) + np.log(x) - log_vmx)
    d_q = dig_pxq - special.digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (p * x + q) / (v + m * x)
    n = x.shape[0]
    grad = np.array([p * d_p.sum(), q * d_q.sum(), v * d_v.sum()])
    return float(-ll.sum() / n), -grad / n


def fit(
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    *,
    max_correlation: float = 0.3,
    max_iterations: int = 500,
) -> GammaGammaParams:
    """MLE of (p, q, v) on customers with frequency > 0 and monetary > 0.

    ``frequency`` must be the number of transactions ``monetary`` is the mean of — with
    :mod:`otklik.insights.summary` that is ``monetary_count`` (equal to ``frequency`` unless some
    repeat days were free).
    """
    x, m = _repeat_buyers(frequency, monetary)
    if x.shape[0] < 3:
        raise ModelFitError("Gamma-Gamma needs at least 3 repeat buyers with paid purchases")
    corr = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 and np.ptp(m) > 0 else 0.0
    if abs(corr) > max_correlation:
        raise CorrelatedSpendError(corr, max_correlation)

    # Start q above 1 (the expected-spend formula needs q > 1) and v near the spend scale.
    start = np.log([1.0, 2.0, float(np.mean(m))])
    res = optimize.minimize(
        _neg_ll_and_grad,
        start,
        args=(x, m),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-15.0, 15.0), (-15.0, 15.0), (-15.0, 25.0)],
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    if not np.isfinite(res.fun):
        raise ModelFitError("Gamma-Gamma fit failed: the likelihood is not finite")
    p, q, v = (float(t) for t in np.exp(res.x))
    return GammaGammaParams(
        p=p,
        q=q,
        v=v,
        log_likelihood=float(-res.fun * x.shape[0]),
        converged=bool(res.success),
        iterations=int(res.nit),
        n_customers=int(x.shape[0]),
        correlation=corr,
    )


def expected_average_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> FloatArray:
    """E[spend per transaction | x, m] (note eq. 5): a weighted mean of the population mean
    p·v/(q−1) and the customer's own mean; customers with no paid repeat get the population mean.
    """
    p, q, v = params.p, params.q, params.v
    if q <= 1.0:
        raise ModelFitError(f"q = {q:.3f} <= 1: the population mean spend is not finite")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    x = np.where(m > 0, x, 0.0)
    out: FloatArray = p * (v + x * m) / (p * x + q - 1.0)
    return out


def customer_lifetime_value(
    purchase_model: BgNbdParams,
    spend_model: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary: npt.ArrayLike,
    monetary_count: npt.ArrayLike | None = None,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    periods_per_month: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Discounted value of the next ``months`` months per customer.

    CLV = Σ_{i=1..months} spend · (E[Y(i·k)] − E[Y((i−1)·k)]) / (1 + d)^i, where k is
    ``periods_per_month`` in the BG/NBD time unit (30.44 for days, 4.35 for weeks), E[Y] the
    BG/NBD conditional expectation and spend the Gamma-Gamma conditional mean.
    """
    if months < 1 or periods_per_month <= 0 or monthly_discount_rate <= -1:
        raise ModelFitError("need months >= 1, periods_per_month > 0, discount rate > -1")
    x = np.asarray(frequency, dtype=np.float64)
    spend = expected_average_spend(
        spend_model, x if monetary_count is None else monetary_count, monetary
    )
    # Expected purchases depend on (x, t_x, T) only: evaluate hyp2f1 once per distinct triple.
    ux, utx, uT, _, inverse = compress(
        x, np.asarray(recency, dtype=np.float64), np.asarray(T, dtype=np.float64)
    )
    discounted = np.zeros_like(ux)
    previous = np.zeros_like(ux)
    for i in range(1, months + 1):
        cumulative = expected_purchases(purchase_model, i * periods_per_month, ux, utx, uT)
        discounted += (cumulative - previous) / (1.0 + monthly_discount_rate) ** i
        previous = cumulative
    out: FloatArray = spend * discounted[inverse]
    return out
