"""Per-customer purchase summaries (frequency, recency, T, monetary value) from raw orders.

This is the input of every customer model in this package (BG/NBD, Gamma-Gamma, RFM). It is pure
numpy: callers pass three parallel arrays (customer id, day number, amount) and get one row per
customer back, so a shop of a million customers is summarised in seconds, not by a Python loop.

Conventions (the ones the BG/NBD and Gamma-Gamma papers use for the CDNOW data):

* Time is counted in whole **purchase days**. All orders of one customer on one calendar day
  collapse into one transaction whose amount is the day's sum, so duplicate or split orders on the
  same day never count as repeat purchases. Day numbers are floats (e.g. days since 1970-01-01)
  and are floored to the calendar day; the caller chooses the time zone by how it numbers days.
* ``frequency`` is the number of **repeat** purchase days (purchase days minus one).
* ``recency`` is the time from the first to the last purchase day, ``T`` the time from the first
  purchase day to the end of the calibration period, both in ``unit`` (days or weeks).
* Zero-value orders (free samples, 100 % promo codes) are purchases: they count in ``frequency``
  and ``recency``. A purchase day whose total is zero is *excluded* from ``monetary``, because the
  spend model describes how much people pay when they pay; ``monetary_count`` says how many repeat
  days the mean is over, which is the ``x`` the Gamma-Gamma model needs.
* ``monetary`` is the mean day total over the repeat purchase days (the first purchase is left out
  so it is not biased by the acquisition offer); it is 0 where there is no paid repeat day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from otklik.kit.errors import Unprocessable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Unit = Literal["days", "weeks"]
_DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0}


class BadTransactions(Unprocessable):
    code = "bad_transactions"


@dataclass(frozen=True)
class PurchaseDays:
    """Orders collapsed to one row per (customer, calendar day), sorted by customer then day."""

    customer: IntArray
    day: IntArray
    amount: FloatArray
    # Index of each customer's first row in the arrays above, plus a final len() sentinel, so
    # customer i owns rows starts[i]:starts[i + 1].
    starts: IntArray


@dataclass(frozen=True)
class CustomerSummary:
    """One entry per customer (sorted by id); time fields are in ``unit``."""

    customer: IntArray
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary: FloatArray
    monetary_count: FloatArray
    first_day: IntArray
    last_day: IntArray
    revenue: FloatArray  # every purchase day in the period, the first one included
    unit: Unit

    def __len__(self) -> int:
        return int(self.customer.shape[0])


def day_numbers(dates: npt.ArrayLike) -> FloatArray:
    """Days since 1970-01-01 for ISO date strings or ``datetime64`` values (any resolution)."""
    as_days = np.asarray(dates).astype("datetime64[D]")
    return as_days.astype(np.int64).astype(np.float64)


def _checked(
    customer: npt.ArrayLike, day: npt.ArrayLike, amount: npt.ArrayLike
) -> tuple[IntArray, FloatArray, FloatArray]:
    cust = np.asarray(customer, dtype=np.int64)
    days_f = np.asarray(day, dtype=np.float64)
    amt = np.asarray(amount, dtype=np.float64)
    if not (cust.ndim == days_f.ndim == amt.ndim == 1) or not (
        cust.shape == days_f.shape == amt.shape
    ):
        raise BadTransactions("customer, day and amount must be 1-d arrays of the same length")
    if not (np.all(np.isfinite(days_f)) and np.all(np.isfinite(amt))):
        raise BadTransactions("day numbers and amounts must be finite")
    if np.any(amt < 0):
        # Refunds must be netted against their order by the caller: a negative "purchase" would
        # otherwise count as a visit and drag the mean spend below anything a customer paid.
        raise BadTransactions("amounts must be >= 0; net refunds into their orders first")
    return cust, days_f, amt


def collapse_days(
    customer: npt.ArrayLike, day: npt.ArrayLike, amount: npt.ArrayLike
) -> PurchaseDays:
    """Merge each customer's orders of the same calendar day into one purchase day."""
    cust, days_f, amt = _checked(customer, day, amount)
    days = np.floor(days_f).astype(np.int64)

    order = np.lexsort((days, cust))
    cust, days, amt = cust[order], days[order], amt[order]
    n = cust.shape[0]
    new_row = np.ones(n, dtype=bool)
    if n:
        new_row[1:] = (cust[1:] != cust[:-1]) | (days[1:] != days[:-1])
    row_starts = np.flatnonzero(new_row)
    day_amount = np.add.reduceat(amt, row_starts) if n else amt
    cust, days = cust[row_starts], days[row_starts]

    m = cust.shape[0]
    new_cust = np.ones(m, dtype=bool)
    if m:
        new_cust[1:] = cust[1:] != cust[:-1]
    starts = np.append(np.flatnonzero(new_cust), m).astype(np.int64)
    return PurchaseDays(customer=cust, day=days, amount=day_amount, starts=starts)


def summarize(
    customer: npt.ArrayLike,
    day: npt.ArrayLike,
    amount: npt.ArrayLike,
    *,
    calibration_end: float,
    unit: Unit = "days",
) -> CustomerSummary:
    """Summarise orders up to and including day ``calibration_end`` (a day number).

    Orders after ``calibration_end`` are ignored (they are the holdout period); customers whose
    first order is after it do not appear.
    """
    if unit not in _DAYS_PER_UNIT:
        raise BadTransactions(f"unit must be one of {sorted(_DAYS_PER_UNIT)}, not {unit!r}")
    end = int(np.floor(calibration_end))
    cust, days_f, amt = _checked(customer, day, amount)
    keep = np.floor(days_f) <= end
    pd = collapse_days(cust[keep], days_f[keep], amt[keep])

    starts = pd.starts[:-1]
    n_days = np.diff(pd.starts)
    first = pd.day[starts]
    last = pd.day[pd.starts[1:] - 1]
    # bincount with weights returns floats; the astype only tells the type checker.
    # Which customer (0..n-1) each purchase day belongs to, to aggregate with bincount.
    owner = np.repeat(np.arange(starts.shape[0]), n_days)
    is_repeat = np.ones(pd.day.shape[0], dtype=bool)
    is_repeat[starts] = False
    paid_repeat = is_repeat & (pd.amount > 0)

    n = starts.shape[0]
    repeat_sum = np.bincount(
        owner, weights=np.where(paid_repeat, pd.amount, 0.0), minlength=n
    ).astype(np.float64)
    repeat_cnt = np.bincount(owner, weights=paid_repeat.astype(np.float64), minlength=n).astype(
        np.float64
    )
    revenue = np.bincount(owner, weights=pd.amount, minlength=n).astype(np.float64, copy=False)
    monetary = np.divide(
        repeat_sum, repeat_cnt, out=np.zeros(n, dtype=np.float64), where=repeat_cnt > 0
    )

    scale = _DAYS_PER_UNIT[unit]
    return CustomerSummary(
        customer=pd.customer[starts],
        frequency=(n_days - 1).astype(np.float64),
        recency=(last - first) / scale,
        T=(end - first) / scale,
        monetary=monetary,
        monetary_count=repeat_cnt,
        first_day=first,
        last_day=last,
        revenue=revenue,
        unit=unit,
    )
