"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Each customer buys as a Poisson process with rate λ ~ Gamma(r, α) while alive and, after any
purchase, drops out with probability p ~ Beta(a, b). Inputs per customer are the summary of
:mod:`otklik.insights.summary`: ``x`` = repeat purchases (frequency), ``t_x`` = recency and ``T``
= age, all in the same time unit; the fitted rates are per that unit.

The log-likelihood is written as A1 + A2 + log(exp(A3) + [x > 0]·exp(A4)) (eq. 6 of the paper)
and evaluated with gammaln/betaln and logaddexp, so heavy buyers or old customers never overflow.
The fit maximises it over log-parameters (keeping them positive without bounds) with L-BFGS-B
and an analytic gradient, because numeric gradients cost five likelihood passes per step and a
million-customer shop would then take minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from otklik.kit.errors import Unprocessable

FloatArray = npt.NDArray[np.float64]

# Starting points in log-parameter space (r, alpha, a, b); the first suits most shops, the
# others rescue fits where the optimiser stalls on a flat ridge.
_STARTS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.0, 0.0),
    (np.log(0.5), np.log(5.0), np.log(0.5), np.log(2.0)),
    (np.log(2.0), np.log(20.0), np.log(2.0), np.log(5.0)),
)


class ModelFitError(Unprocessable):
    code = "model_fit_failed"


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    iterations: int
    n_customers: int


def _as_arrays(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    t = np.asarray(T, dtype=np.float64)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > t):
        raise ModelFitError("need frequency >= 0 and 0 <= recency <= T for every customer")
    return x, t_x, t


def _terms(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """(A1 + A2, A3, A4, x > 0); A4 is -inf where x == 0 so logaddexp drops it."""
    repeat = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    # b + x - 1 can be <= 0 only where x == 0, which the mask discards; feed it a harmless 1.
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2, a3, a4, repeat


def log_likelihood(
    r: float,
    alpha: float,
    a: float,
    b: float,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Per-customer log-likelihood; ``.sum()`` is the model's log-likelihood."""
    x, t_x, t = _as_arrays(frequency, recency, T)
    base, a3, a4, _ = _terms(r, alpha, a, b, x, t_x, t)
    out: FloatArray = base + np.logaddexp(a3, a4)
    return out


def _neg_ll_and_grad(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood over customers and its gradient in log-parameters."""
    r, alpha, a, b = np.exp(theta)
    base, a3, a4, repeat = _terms(r, alpha, a, b, x, t_x, T)
    ll = base + np.logaddexp(a3, a4)
    # Share of the second (dropped-out-after-last-purchase) term in the sum of the two.
    s = special.expit(a4 - a3)
    dig_abx = special.digamma(a + b + x)
    d_r = (
        special.digamma(r + x)
        - special.digamma(r)
        + np.log(alpha)
        - (1 - s) * np.log(alpha + T)
        - s * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - (1 - s) * (r + x) / (alpha + T) - s * (r + x) / (alpha + t_x)
    d_a = special.digamma(a + b) - dig_abx + s / a
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    d_b = (
        special.digamma(b + x)
        - dig_abx
        - special.digamma(b)
        + special.digamma(a + b)
        - np.where(repeat, s / b_x1, 0.0)
    )
    total = w.sum()
    # Chain rule to log scale: d/d(log θ) = θ · d/dθ.
    grad = np.array([r * (w @ d_r), alpha * (w @ d_alpha), a * (w @ d_a), b * (w @ d_b)])
    return float(-(w @ ll) / total), -grad / total


def compress(
    x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.intp]]:
    """Unique (x, t_x, T) rows with their counts: many customers share one (e.g. all one-timers
    acquired on the same day), and each likelihood pass then costs per distinct row only.
    ``inverse`` maps every input row to its unique row, to spread per-row results back."""
    # lexsort + run boundaries: several times faster than np.unique(axis=0) on a million rows.
    order = np.lexsort((T, t_x, x))
    xs, ts, Ts = x[order], t_x[order], T[order]
    new = np.ones(xs.shape[0], dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1]) | (Ts[1:] != Ts[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, xs.shape[0])).astype(np.float64)
    inverse = np.empty(xs.shape[0], dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return xs[starts], ts[starts], Ts[starts], counts, inverse


def fit(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    max_iterations: int = 500,
) -> BgNbdParams:
    """Maximum-likelihood fit; tries the next start point only if a fit fails to converge."""
    x, t_x, t = _as_arrays(frequency, recency, T)
    if x.shape[0] < 4 or not np.any(x > 0):
        raise ModelFitError("BG/NBD needs at least 4 customers and some repeat purchases")
    cx, ctx, ct, w, _ = compress(x, t_x, t)

    best: optimize.OptimizeResult | None = None
    for start in _STARTS:
        res = optimize.minimize(
            _neg_ll_and_grad,
            np.array(start),
            args=(cx, ctx, ct, w),
            jac=True,
            method="L-BFGS-B",
            # Keep exp(θ) finite: rates beyond e^±15 mean the data cannot identify the model.
            bounds=[(-15.0, 15.0)] * 4,
            options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
        if res.success and np.isfinite(res.fun):
            break
    if best is None:
        raise ModelFitError("BG/NBD fit failed: the likelihood is not finite at any start point")
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BgNbdParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=float(-best.fun * w.sum()),
        converged=bool(best.success),
        iterations=int(best.nit),
        n_customers=int(x.shape[0]),
    )


def p_alive(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(still alive | x, t_x, T) (paper eq. 13). It is 1 when x == 0: in BG/NBD a customer can
    only drop out right after a purchase, and the first purchase does not count."""
    x, t_x, t = _as_arrays(frequency, recency, T)
    _, a3, a4, _ = _terms(params.r, params.alpha, params.a, params.b, x, t_x, t)
    out: FloatArray = special.expit(a3 - a4)
    return out


def _check_a(a: float) -> None:
    # Eqs. 7 and 10 divide by a − 1; the limit at a = 1 is finite but the closed form is not.
    if abs(a - 1.0) < 1e-9:
        raise ModelFitError("a = 1 exactly: the closed-form expectations are undefined")


def expected_purchases(
    params: BgNbdParams,
    t: float | FloatArray,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """E[purchases in the next ``t`` periods | x, t_x, T] (paper eq. 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    _check_a(a)
    x, t_x, age = _as_arrays(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, horizon / (alpha + age + horizon))
    # ((α+T)/(α+T+t))^(r+x) through logs: the power underflows cleanly instead of 0·inf.
    ratio = np.exp((r + x) * (np.log(alpha + age) - np.log(alpha + age + horizon)))
    bracket = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ratio * hyp)
    out: FloatArray = bracket * p_alive(params, x, t_x, age)
    return out


def expected_purchases_new_customer(params: BgNbdParams, t: float | FloatArray) -> FloatArray:
    """E[X(t)]: expected repeat purchases of a just-acquired customer in ``t`` periods (eq. 7)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    _check_a(a)
    horizon = np.asarray(t, dtype=np.float64)
    hyp = special.hyp2f1(r, b, a + b - 1.0, horizon / (alpha + horizon))
    ratio = np.exp(r * (np.log(alpha) - np.log(alpha + horizon)))
    out: FloatArray = (a + b - 1.0) / (a - 1.0) * (1.0 - ratio * hyp)
    return out
