"""From orders to fitted models and per-customer scores, on arrays (no store, no HTTP).

A *fit* learns what is shared by the whole customer base: BG/NBD and Gamma-Gamma parameters by
maximum likelihood, RFM quantile edges and the shop's usual gap between purchases. It is kept as
a JSON-able ``params`` dict. *Scoring* applies stored params to any set of customers, so a refit
and a later rescore of one customer who just ordered use exactly the same rules.

Time is counted in whole days of the workspace's time zone (the caller numbers the days).
Raw values stored per customer: ``recency_days`` (days since the last purchase day),
``frequency`` (purchase days; same-day orders count once) and ``monetary`` (total spend).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otklik.insights import bgnbd, gamma_gamma, rfm
from otklik.insights.bgnbd import BgNbdParams, ModelFitError
from otklik.insights.gamma_gamma import DAYS_PER_MONTH, CorrelatedSpendError, GammaGammaParams
from otklik.insights.summary import CustomerSummary, FloatArray, IntArray, collapse_days, summarize

OK, PARTIAL, FAILED = "ok", "partial", "failed"


@dataclass(frozen=True)
class Options:
    horizon_days: int = 90  # expected purchases over the next this many days
    bins: int = 5  # RFM scores run 1..bins (quintiles by default)
    clv_months: int = 12
    monthly_discount_rate: float = 0.01
    leaving_factor: float = 2.0  # "leaving" = away longer than this many usual gaps
    min_customers: int = 20  # fewer and the purchase model is not fitted at all
    max_correlation: float = 0.3  # Gamma-Gamma refuses spend that follows frequency
    holdout: bool = True  # also fit without the last horizon_days and check the forecast


@dataclass(frozen=True)
class Orders:
    """Parallel arrays, one entry per order; ``customer`` indexes into the caller's id list."""

    customer: IntArray
    day: FloatArray
    amount: FloatArray

    def until(self, today: int) -> Orders:
        keep = np.floor(self.day) <= today
        return Orders(self.customer[keep], self.day[keep], self.amount[keep])


@dataclass(frozen=True)
class Scores:
    """One entry per customer with an order, sorted by customer index; NaN where not known."""

    customer: IntArray
    recency_days: FloatArray
    frequency: IntArray
    monetary: FloatArray
    r: IntArray
    f: IntArray
    m: IntArray
    rfm_class: IntArray  # index into rfm.SEGMENTS
    p_alive: FloatArray
    expected_purchases: FloatArray
    clv: FloatArray
    usual_gap_days: FloatArray
    leaving: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.customer.shape[0])


@dataclass(frozen=True)
class Fit:
    status: str
    params: dict[str, Any]
    quality: dict[str, Any]
    error: str | None
    scores: Scores


class _Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def fit(orders: Orders, today: int, options: Options) -> Fit:
    """Fit every model on the orders up to ``today`` and score every customer with the result."""
    orders = orders.until(today)
    s = summarize(orders.customer, orders.day, orders.amount, calibration_end=today)
    raw = _rfm_values(s, today)
    edges = rfm.rfm_scores(*raw, bins=options.bins)
    gaps = rfm.usual_gaps(orders.customer, orders.day)
    known_gaps = gaps.median_gap[~np.isnan(gaps.median_gap)]
    fallback = float(np.median(known_gaps)) if known_gaps.size else None

    quality: dict[str, Any] = {
        "customers": len(s),
        "repeat_buyers": int(np.count_nonzero(s.frequency > 0)),
        "paid_repeat_buyers": int(np.count_nonzero(s.monetary_count > 0)),
        "spend_frequency_correlation": _correlation(s),
    }
    params: dict[str, Any] = {
        "unit": "days",
        "horizon_days": options.horizon_days,
        "clv_months": options.clv_months,
        "monthly_discount_rate": options.monthly_discount_rate,
        "rfm": {
            "bins": options.bins,
            "recency_edges": _floats(edges.recency_edges),
            "frequency_edges": _floats(edges.frequency_edges),
            "monetary_edges": _floats(edges.monetary_edges),
        },
        "leaving": {"factor": options.leaving_factor, "fallback_gap_days": fallback},
        "bgnbd": None,
        "gamma_gamma": None,
    }
    errors: list[str] = []
    try:
        started = time.perf_counter()
        purchases = _fit_purchases(s, options)
        params["bgnbd"] = {k: getattr(purchases, k) for k in ("r", "alpha", "a", "b")}
        quality["bgnbd"] = {
            "status": OK,
            "log_likelihood": purchases.log_likelihood,
            "converged": purchases.converged,
            "iterations": purchases.iterations,
            "fit_ms": _ms_since(started),
        }
    except _Failed as exc:
        quality["bgnbd"] = {"status": FAILED, "reason": exc.reason, "message": exc.message}
        errors.append(f"purchase model (BG/NBD): {exc.message}")
    try:
        started = time.perf_counter()
        spend = _fit_spend(s, options)
        params["gamma_gamma"] = {k: getattr(spend, k) for k in ("p", "q", "v")}
        quality["gamma_gamma"] = {
            "status": OK,
            "log_likelihood": spend.log_likelihood,
            "converged": spend.converged,
            "iterations": spend.iterations,
            "customers": spend.n_customers,
            "fit_ms": _ms_since(started),
        }
    except _Failed as exc:
        quality["gamma_gamma"] = {"status": FAILED, "reason": exc.reason, "message": exc.message}
        errors.append(f"spend model (Gamma-Gamma): {exc.message}")
    if options.holdout and params["bgnbd"] is not None:
        quality["holdout"] = holdout_check(orders, today, options)

    status = FAILED if params["bgnbd"] is None else PARTIAL if errors else OK
    scores = score(orders, today, params)
    return Fit(status, _clean(params), _clean(quality), "; ".join(errors) or None, scores)


def score(orders: Orders, today: int, params: dict[str, Any]) -> Scores:
    """Scores of every customer in ``orders`` as of ``today`` under a fit's stored params."""
    orders = orders.until(today)
    s = summarize(orders.customer, orders.day, orders.amount, calibration_end=today)
    recency, frequency, monetary = _rfm_values(s, today)
    spec = params["rfm"]
    bins = int(spec["bins"])
    # Recency ranks on minus the days, so recent buyers score high (see rfm.rfm_scores).
    r_edges = -np.asarray(spec["recency_edges"], dtype=np.float64)[::-1]
    r = rfm.score(-recency, r_edges)
    f = rfm.score(frequency, np.asarray(spec["frequency_edges"], dtype=np.float64))
    m = rfm.score(monetary, np.asarray(spec["monetary_edges"], dtype=np.float64))

    n = len(s)
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    clv = np.full(n, np.nan)
    purchases = _bgnbd(params.get("bgnbd"))
    if purchases is not None and n:
        p_alive = bgnbd.p_alive(purchases, s.frequency, s.recency, s.T)
        expected = bgnbd.expected_purchases(
            purchases, float(params["horizon_days"]), s.frequency, s.recency, s.T
        )
        spend = _gamma_gamma(params.get("gamma_gamma"))
        if spend is not None:
            clv = gamma_gamma.customer_lifetime_value(
                purchases,
                spend,
                s.frequency,
                s.recency,
                s.T,
                s.monetary,
                s.monetary_count,
                months=int(params["clv_months"]),
                monthly_discount_rate=float(params["monthly_discount_rate"]),
                periods_per_month=DAYS_PER_MONTH,
            )

    gaps = rfm.usual_gaps(orders.customer, orders.day)
    rule = params["leaving"]
    leaving = rfm.leaving(
        recency, gaps.median_gap, k=float(rule["factor"]), fallback_gap=rule["fallback_gap_days"]
    )
    return Scores(
        customer=s.customer,
        recency_days=recency,
        frequency=frequency.astype(np.int64),
        monetary=monetary,
        r=r,
        f=f,
        m=m,
        rfm_class=rfm.segment_codes(r, f, bins=bins),
        p_alive=p_alive,
        expected_purchases=expected,
        clv=clv,
        usual_gap_days=gaps.median_gap,
        leaving=leaving,
    )


def holdout_check(orders: Orders, today: int, options: Options) -> dict[str, Any]:
    """Fit on all but the last ``horizon_days`` and compare the forecast purchases in those
    days with what the same customers actually bought: a plain, honest accuracy figure."""
    days = options.horizon_days
    cal_end = today - days
    cal = summarize(orders.customer, orders.day, orders.amount, calibration_end=cal_end)
    if not len(cal) or cal_end - int(cal.first_day.min()) < days:
        return {"status": "skipped", "reason": "short_history", "days": days}
    try:
        purchases = _fit_purchases(cal, options)
        predicted = float(
            bgnbd.expected_purchases(
                purchases, float(days), cal.frequency, cal.recency, cal.T
            ).sum()
        )
    except _Failed as exc:
        return {"status": "skipped", "reason": exc.reason, "days": days}
    pd = collapse_days(orders.customer, orders.day, orders.amount)
    actual = int(np.count_nonzero((pd.day > cal_end) & np.isin(pd.customer, cal.customer)))
    return {
        "status": OK,
        "days": days,
        "customers": len(cal),
        "predicted": predicted,
        "actual": actual,
        "error_pct": (predicted - actual) / actual * 100.0 if actual else None,
    }


def _rfm_values(s: CustomerSummary, today: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Days since the last purchase day, purchase days, total spend."""
    return (today - s.last_day).astype(np.float64), s.frequency + 1.0, s.revenue


def _fit_purchases(s: CustomerSummary, options: Options) -> BgNbdParams:
    if len(s) < max(options.min_customers, 4):
        raise _Failed(
            "too_few_customers",
            f"{len(s)} customers with orders; the model needs at least "
            f"{max(options.min_customers, 4)}",
        )
    if not np.any(s.frequency > 0):
        raise _Failed("no_repeat_buyers", "nobody has bought on a second day yet")
    try:
        params = bgnbd.fit(s.frequency, s.recency, s.T)
    except ModelFitError as exc:
        raise _Failed("fit_failed", exc.message) from exc
    if abs(params.a - 1.0) < 1e-6:
        raise _Failed("fit_failed", "a = 1: expected purchases are undefined for this fit")
    return params


def _fit_spend(s: CustomerSummary, options: Options) -> GammaGammaParams:
    paid = int(np.count_nonzero((s.frequency > 0) & (s.monetary > 0)))
    if paid < 3:
        raise _Failed(
            "too_few_repeat_buyers", f"{paid} customers paid on a second day; need at least 3"
        )
    try:
        params = gamma_gamma.fit(
            s.monetary_count, s.monetary, max_correlation=options.max_correlation
        )
    except CorrelatedSpendError as exc:
        raise _Failed("spend_correlated", exc.message) from exc
    except ModelFitError as exc:
        raise _Failed("fit_failed", exc.message) from exc
    if params.q <= 1.0:
        raise _Failed("fit_failed", f"q = {params.q:.3f} <= 1: mean spend is not finite")
    return params


def _bgnbd(values: dict[str, float] | None) -> BgNbdParams | None:
    if not values:
        return None
    return BgNbdParams(
        r=values["r"],
        alpha=values["alpha"],
        a=values["a"],
        b=values["b"],
        log_likelihood=0.0,
        converged=True,
        iterations=0,
        n_customers=0,
    )


def _gamma_gamma(values: dict[str, float] | None) -> GammaGammaParams | None:
    if not values:
        return None
    return GammaGammaParams(
        p=values["p"],
        q=values["q"],
        v=values["v"],
        log_likelihood=0.0,
        converged=True,
        iterations=0,
        n_customers=0,
        correlation=0.0,
    )


def _correlation(s: CustomerSummary) -> float | None:
    keep = (s.monetary_count > 0) & (s.monetary > 0)
    x, m = s.monetary_count[keep], s.monetary[keep]
    if x.shape[0] < 3 or np.ptp(x) == 0 or np.ptp(m) == 0:
        return None
    return float(np.corrcoef(x, m)[0, 1])


def _floats(values: FloatArray) -> list[float]:
    return [float(v) for v in values]


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
