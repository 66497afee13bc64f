"""RFM scores, named RFM segments, the "leaving customer" rule and the console's R×F grid.

Here *recency* is what marketers mean by it — time since the last purchase, smaller is better —
not BG/NBD's recency (first to last purchase). Scores run 1..bins, higher is better on every axis.

Scoring is by quantile edges of the whole customer base: edge k is the k/bins quantile, and a
value's score is 1 + the number of edges strictly below it. Equal values therefore always get the
same score, and a mass of ties (say 60 % one-time buyers) all land in the lowest score they reach
instead of being split arbitrarily across bins; some scores may then be empty, which is honest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from otklik.insights.summary import FloatArray, IntArray, collapse_days


class Segment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW_CUSTOMERS = "new_customers"
    PROMISING = "promising"
    NEEDS_ATTENTION = "needs_attention"
    AT_RISK = "at_risk"
    CANT_LOSE = "cant_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"


_C, _L, _P, _N = (
    Segment.CHAMPIONS,
    Segment.LOYAL,
    Segment.POTENTIAL_LOYALISTS,
    Segment.NEW_CUSTOMERS,
)
_PR, _NA, _AR = Segment.PROMISING, Segment.NEEDS_ATTENTION, Segment.AT_RISK
_CL, _H, _LO = Segment.CANT_LOSE, Segment.HIBERNATING, Segment.LOST

# Segment by (R, F) on a 1..5 scale; row = R (5 = bought most recently), column = F.
# Every cell is named, so each scored customer lands in exactly one segment.
#
#   R\F   1             2             3             4           5
#   5     new           potential     potential     champions   champions
#   4     promising     potential     potential     loyal       loyal
#   3     needs_attn    needs_attn    needs_attn    loyal       loyal
#   2     hibernating   hibernating   at_risk       at_risk     cant_lose
#   1     lost          lost          at_risk       at_risk     cant_lose
SEGMENT_TABLE: tuple[tuple[Segment, ...], ...] = (
    (_LO, _LO, _AR, _AR, _CL),  # R = 1
    (_H, _H, _AR, _AR, _CL),  # R = 2
    (_NA, _NA, _NA, _L, _L),  # R = 3
    (_PR, _P, _P, _L, _L),  # R = 4
    (_N, _P, _P, _C, _C),  # R = 5
)
SEGMENTS: tuple[Segment, ...] = tuple(Segment)
_TABLE_CODES = np.array([[SEGMENTS.index(s) for s in row] for row in SEGMENT_TABLE])


@dataclass(frozen=True)
class RfmScores:
    recency: IntArray
    frequency: IntArray
    monetary: IntArray
    # The quantile edges used, so the console can show "R = 5 means bought within N days".
    recency_edges: FloatArray
    frequency_edges: FloatArray
    monetary_edges: FloatArray


@dataclass(frozen=True)
class RfmGrid:
    """Customers and revenue per (R, F) cell; ``count[r - 1, f - 1]``."""

    count: IntArray
    revenue: FloatArray


def quantile_edges(values: npt.ArrayLike, bins: int = 5) -> FloatArray:
    if bins < 2:
        raise ValueError("bins must be >= 2")
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(bins - 1)
    out: FloatArray = np.quantile(v, np.arange(1, bins) / bins)
    return out


def score(values: npt.ArrayLike, edges: FloatArray) -> IntArray:
    """1 + the number of edges strictly below each value (ties share a score)."""
    v = np.asarray(values, dtype=np.float64)
    out: IntArray = np.searchsorted(edges, v, side="left").astype(np.int64) + 1
    return out


def rfm_scores(
    days_since_last: npt.ArrayLike,
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    *,
    bins: int = 5,
) -> RfmScores:
    """Scores for every customer; pass purchase counts (or repeat counts) and total or mean spend
    — the ranking is what matters. Recency is negated so that recent buyers score high."""
    neg_recency = -np.asarray(days_since_last, dtype=np.float64)
    r_edges = quantile_edges(neg_recency, bins)
    f_edges = quantile_edges(frequency, bins)
    m_edges = quantile_edges(monetary, bins)
    return RfmScores(
        recency=score(neg_recency, r_edges),
        frequency=score(frequency, f_edges),
        monetary=score(monetary, m_edges),
        recency_edges=-r_edges[::-1],  # back in days, ascending
        frequency_edges=f_edges,
        monetary_edges=m_edges,
    )


def combine_fm(frequency_score: npt.ArrayLike, monetary_score: npt.ArrayLike) -> IntArray:
    """One FM score (rounded half up mean of F and M), to segment on (R, FM) instead of (R, F)."""
    f = np.asarray(frequency_score, dtype=np.int64)
    m = np.asarray(monetary_score, dtype=np.int64)
    out: IntArray = (f + m + 1) // 2
    return out


def _to_five(scores: npt.ArrayLike, bins: int) -> IntArray:
    s = np.asarray(scores, dtype=np.int64)
    if np.any(s < 1) or np.any(s > bins):
        raise ValueError(f"scores must be within 1..{bins}")
    # The table is on a 1..5 scale; other scales map proportionally (e.g. 1..10 → ceil(s/2)).
    out: IntArray = np.ceil(s * 5 / bins).astype(np.int64)
    return out


def segment_codes(r_score: npt.ArrayLike, f_score: npt.ArrayLike, *, bins: int = 5) -> IntArray:
    """Index into :data:`SEGMENTS` per customer (compact for storing a million of them)."""
    r = _to_five(r_score, bins)
    f = _to_five(f_score, bins)
    out: IntArray = _TABLE_CODES[r - 1, f - 1]
    return out


def segments(r_score: npt.ArrayLike, f_score: npt.ArrayLike, *, bins: int = 5) -> list[Segment]:
    return [SEGMENTS[c] for c in segment_codes(r_score, f_score, bins=bins)]


def rfm_grid(
    r_score: npt.ArrayLike, f_score: npt.ArrayLike, revenue: npt.ArrayLike, *, bins: int = 5
) -> RfmGrid:
    r = np.asarray(r_score, dtype=np.int64)
    f = np.asarray(f_score, dtype=np.int64)
    cell = (r - 1) * bins + (f - 1)
    if np.any((r < 1) | (r > bins) | (f < 1) | (f > bins)):
        raise ValueError(f"scores must be within 1..{bins}")
    count = np.bincount(cell, minlength=bins * bins).reshape(bins, bins).astype(np.int64)
    money = np.bincount(cell, weights=np.asarray(revenue, dtype=np.float64), minlength=bins * bins)
    return RfmGrid(count=count, revenue=money.reshape(bins, bins).astype(np.float64))


@dataclass(frozen=True)
class UsualGaps:
    customer: IntArray
    median_gap: FloatArray  # days; NaN for customers with a single purchase day
    last_day: IntArray


def usual_gaps(customer: npt.ArrayLike, day: npt.ArrayLike) -> UsualGaps:
    """Each customer's median gap in days between consecutive purchase days (same-day orders
    count once, so a split order does not make the usual gap look like zero)."""
    pd = collapse_days(customer, day, np.zeros(np.shape(day)))
    starts, ends = pd.starts[:-1], pd.starts[1:]
    n = starts.shape[0]
    gaps = np.diff(pd.day).astype(np.float64)
    # Gaps across a customer boundary are not gaps; owner of gap j is the customer of day j + 1.
    owner = np.repeat(np.arange(n), ends - starts)[1:]
    valid = np.ones(gaps.shape[0], dtype=bool)
    valid[starts[1:] - 1] = False
    gaps, owner = gaps[valid], owner[valid]
    # Sort gaps within each customer, then read the middle one or two: a vectorised median.
    order = np.lexsort((gaps, owner))
    gaps = gaps[order]
    n_gaps = np.bincount(owner, minlength=n)
    first = np.cumsum(n_gaps) - n_gaps
    median = np.full(n, np.nan)
    has = n_gaps > 0
    lo = first[has] + (n_gaps[has] - 1) // 2
    hi = first[has] + n_gaps[has] // 2
    median[has] = (gaps[lo] + gaps[hi]) / 2.0
    return UsualGaps(customer=pd.customer[starts], median_gap=median, last_day=pd.day[ends - 1])


def leaving(
    days_since_last: npt.ArrayLike,
    median_gap: npt.ArrayLike,
    *,
    k: float = 2.0,
    fallback_gap: float | None = None,
) -> npt.NDArray[np.bool_]:
    """True where the customer has been away longer than ``k`` times their own usual gap.

    One-time buyers have no gap of their own; they are judged against ``fallback_gap`` (e.g. the
    shop's median gap) when given, otherwise never flagged by this rule (BG/NBD's P(alive) is the
    signal for them).
    """
    since = np.asarray(days_since_last, dtype=np.float64)
    gap = np.asarray(median_gap, dtype=np.float64)
    if fallback_gap is not None:
        gap = np.where(np.isnan(gap), fallback_gap, gap)
    # A NaN gap compares False, so customers without one are never flagged.
    out: npt.NDArray[np.bool_] = since > k * gap
    return out
