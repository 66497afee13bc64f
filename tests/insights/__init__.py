"""Tests of the customer models; ``load_cdnow`` reads the shared CDNOW sample once."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from otklik.insights.summary import FloatArray, IntArray, day_numbers

CDNOW = Path(__file__).resolve().parent / "data" / "cdnow_sample_transactions.csv"


@lru_cache(maxsize=1)
def load_cdnow() -> tuple[IntArray, FloatArray, FloatArray]:
    """(customer id, day number, dollars) for the 6,919 rows of the CDNOW 1/10 sample."""
    with CDNOW.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    customer = np.array([int(r["customer_id"]) for r in rows], dtype=np.int64)
    day = day_numbers([r["date"] for r in rows])
    dollars = np.array([float(r["dollars"]) for r in rows], dtype=np.float64)
    return customer, day, dollars
