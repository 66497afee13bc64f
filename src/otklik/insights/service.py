"""Customer value per workspace: refit the models, rescore people as they order, read results.

A refit reads every counted order (a merged profile's orders count for the profile it was
merged into; erased people, cancelled or refunded orders and negative amounts do not count),
fits the models (see `scoring`), records one `insight_fit` row, failed or not, and rewrites
every customer's `profile_score` row. Between refits, `rescore` recomputes single customers
from their orders with the latest fit's stored parameters: that is how scores follow new
orders without refitting. Nothing here commits; `tasks.run_refit` is the wrapper that does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection

from otklik.insights import repository as repo
from otklik.insights import rfm
from otklik.insights.rfm import SEGMENTS, Segment
from otklik.insights.scoring import Fit, Options, Orders, Scores
from otklik.insights.scoring import fit as fit_models
from otklik.insights.scoring import score as score_orders
from otklik.kit.errors import NotFound, Unprocessable
from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.profiles.service import ProfileNotFound

# Orders in these states are not purchases for the models.
SKIP_STATUSES = ("cancelled", "canceled", "refunded", "failed")
DAY = 86_400.0


class NoFitYet(NotFound):
    code = "insight_fit_not_found"


class NoScores(NotFound):
    code = "profile_scores_not_found"


class BadOptions(Unprocessable):
    code = "invalid_insight_options"


@dataclass(frozen=True)
class PreparedFit:
    """A fit computed from a snapshot of the orders, not yet stored."""

    workspace_id: uuid.UUID
    now: datetime
    read_at: datetime  # orders stored after this are rescored when the fit is saved
    fit: Fit
    # The score rows, ready to write: whom (store keys) and the columns (see `_columns`).
    keys: list[repo.Key]
    values: list[list[Any]]
    # Whose RFM class or leaving flag differs from their row when the orders were read.
    changed: list[repo.Key]
    duration_ms: int


@dataclass(frozen=True)
class FitResult:
    id: uuid.UUID
    workspace_id: uuid.UUID
    fitted_at: datetime
    status: str
    customers: int
    params: dict[str, Any]
    quality: dict[str, Any]
    error: str | None
    duration_ms: int
    scored: int
    # Profiles whose RFM class or leaving flag changed, or who were scored or unscored for the
    # first time: what segments on those conditions must re-check. P(alive) and CLV move for
    # everyone on a refit.
    changed: list[uuid.UUID] = field(default_factory=list)


def options_from(**given: Any) -> Options:
    opts = Options(**{k: v for k, v in given.items() if v is not None})
    if not 2 <= opts.bins <= 10:
        raise BadOptions("bins must be between 2 and 10", details={"bins": opts.bins})
    if not 1 <= opts.horizon_days <= 3660 or not 1 <= opts.clv_months <= 120:
        raise BadOptions("horizon_days must be 1..3660 and clv_months 1..120")
    return opts


def day_offset(conn: Connection, workspace_id: uuid.UUID, now: datetime) -> float:
    """The workspace's UTC offset at `now`, in days: purchase days are its calendar days."""
    name = repo.workspace_timezone(conn, workspace_id) or "UTC"
    try:
        offset = now.astimezone(ZoneInfo(name)).utcoffset()
    except (KeyError, ValueError):
        offset = None
    return offset.total_seconds() / DAY if offset else 0.0


def _today(now: datetime, offset: float) -> int:
    return int(np.floor(now.timestamp() / DAY + offset))


def _orders(
    raw: tuple[list[repo.Key], list[float], list[float]], offset: float
) -> tuple[Orders, list[repo.Key]]:
    """Store rows to model input: people to 0..n-1, days shifted to the local calendar."""
    people, days, amounts = raw
    codes: dict[repo.Key, int] = {}
    customer = np.fromiter(
        (codes.setdefault(p, len(codes)) for p in people), dtype=np.int64, count=len(people)
    )
    orders = Orders(
        customer=customer,
        day=np.asarray(days, dtype=np.float64) + offset,
        amount=np.asarray(amounts, dtype=np.float64),
    )
    return orders, list(codes)


def compute_fit(
    conn: Connection, workspace_id: uuid.UUID, now: datetime, options: Options | None = None
) -> PreparedFit:
    """The heavy, read-only half of a refit: read the orders, fit and score. Run it in a read
    transaction so a big workspace's fit does not hold the store's write lock."""
    started = time.perf_counter()
    read_at = utc_now()
    offset = day_offset(conn, workspace_id, now)
    orders, people = _orders(repo.order_rows(conn, workspace_id, SKIP_STATUSES), offset)
    before = repo.score_flags(conn, workspace_id)
    fitted = fit_models(orders, _today(now, offset), options or Options())
    # Everything the write needs is made here, outside the write lock.
    keys = [people[c] for c in fitted.scores.customer.tolist()]
    values = _columns(fitted.scores)
    after = dict(zip(keys, zip(values[6], values[-1], strict=True), strict=True))
    changed = [key for key in before.keys() | after.keys() if before.get(key) != after.get(key)]
    return PreparedFit(
        workspace_id=workspace_id,
        now=now,
        read_at=read_at,
        fit=fitted,
        keys=keys,
        values=values,
        changed=changed,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )


def save_fit(conn: Connection, prepared: PreparedFit) -> FitResult:
    """Record the fit and replace every score row of the workspace with its scores."""
    started = time.perf_counter()
    ws = prepared.workspace_id
    fit = prepared.fit
    fit_id = uuid7()
    repo.lock_refits(conn, ws)
    written = repo.replace_scores(conn, ws, prepared.keys, prepared.values, prepared.now)
    duration = prepared.duration_ms + int((time.perf_counter() - started) * 1000)
    repo.insert_fit(
        conn,
        {
            "id": fit_id,
            "workspace_id": ws,
            "fitted_at": prepared.now,
            "status": fit.status,
            "customers": len(fit.scores),
            "params": fit.params,
            "quality": fit.quality,
            "error": fit.error,
            "duration_ms": duration,
        },
    )
    # Orders stored while the fit was computed are not in it: score their people with it now.
    late = repo.profiles_with_orders_since(conn, ws, prepared.read_at)
    if late:
        rescore(conn, ws, late, prepared.now)
    changed = {*repo.to_uuids(conn, prepared.changed), *late}
    return FitResult(
        id=fit_id,
        workspace_id=ws,
        fitted_at=prepared.now,
        status=fit.status,
        customers=len(fit.scores),
        params=fit.params,
        quality=fit.quality,
        error=fit.error,
        duration_ms=duration,
        scored=written,
        changed=sorted(changed),
    )


def refit(
    conn: Connection,
    workspace_id: uuid.UUID,
    now: datetime,
    *,
    horizon_days: int = 90,
    bins: int = 5,
    **options: Any,
) -> FitResult:
    """Fit and store in one go on one connection (see `tasks.run_refit` to split the two)."""
    opts = options_from(horizon_days=horizon_days, bins=bins, **options)
    return save_fit(conn, compute_fit(conn, workspace_id, now, opts))


def rescore(
    conn: Connection, workspace_id: uuid.UUID, profile_ids: Iterable[uuid.UUID], now: datetime
) -> int:
    """Recompute these people's scores from their orders with the latest fit's parameters.

    Ids may name merged profiles (their root is rescored, their own stale row removed). People
    with no counted order left, or erased, lose their score row. Without any fit yet this does
    nothing (there are no RFM edges to score against). Returns the number of rows written.
    """
    latest = repo.latest_fit(conn, workspace_id)
    ids = list(dict.fromkeys(profile_ids))
    if latest is None or not ids:
        return 0
    known = repo.roots_of(conn, workspace_id, ids)
    roots = sorted({root for root, erased in known.values() if not erased})
    offset = day_offset(conn, workspace_id, now)
    orders, people = _orders(repo.cluster_orders(conn, workspace_id, roots, SKIP_STATUSES), offset)
    scores = score_orders(orders, _today(now, offset), latest.params)
    keys = [people[c] for c in scores.customer.tolist()]
    repo.upsert_scores(conn, workspace_id, keys, _columns(scores), now)
    scored = set(repo.to_uuids(conn, keys))
    stale = {*known, *(root for root, _ in known.values())} - scored
    repo.delete_scores(conn, workspace_id, sorted(stale))
    return len(keys)


def refit_due(conn: Connection, workspace_id: uuid.UUID, now: datetime, every: timedelta) -> bool:
    """True when the workspace has no fit yet or its latest fit is older than `every`."""
    last = repo.latest_fit_time(conn, workspace_id)
    return last is None or now - last >= every


def latest_fit(conn: Connection, workspace_id: uuid.UUID) -> dict[str, Any]:
    row = repo.latest_fit(conn, workspace_id)
    if row is None:
        raise NoFitYet("The customer models have not been fitted for this workspace yet")
    return dict(row._mapping)


def latest_fit_or_none(conn: Connection, workspace_id: uuid.UUID) -> dict[str, Any] | None:
    row = repo.latest_fit(conn, workspace_id)
    return None if row is None else dict(row._mapping)


@dataclass(frozen=True)
class Cell:
    r: int
    f: int
    customers: int
    revenue: float
    segment: str


@dataclass(frozen=True)
class ClassTotal:
    name: str
    customers: int
    revenue: float
    leaving: int


@dataclass(frozen=True)
class Grid:
    bins: int
    fitted_at: datetime | None
    cells: list[Cell]  # every (r, f) pair, R from high to low, then F from low to high
    classes: list[ClassTotal]  # every named class, in the order of rfm.Segment
    customers: int
    revenue: float

    def rows(self) -> Iterator[list[Cell]]:
        for start in range(0, len(self.cells), self.bins):
            yield self.cells[start : start + self.bins]


def rfm_grid(conn: Connection, workspace_id: uuid.UUID) -> Grid:
    """Customers and revenue per (R, F) cell and per named class, counted in the store."""
    latest = repo.latest_fit(conn, workspace_id)
    bins = int(latest.params["rfm"]["bins"]) if latest is not None else 5
    counted = {
        (int(r), int(f)): (int(n), float(revenue))
        for r, f, n, revenue in repo.grid_cells(conn, workspace_id)
    }
    cells = []
    for r in range(bins, 0, -1):
        for f in range(1, bins + 1):
            n, revenue = counted.get((r, f), (0, 0.0))
            cells.append(Cell(r, f, n, revenue, rfm.segments([r], [f], bins=bins)[0].value))
    totals = {
        name: (int(n), float(revenue), int(leaving))
        for name, n, revenue, leaving in repo.class_totals(conn, workspace_id)
    }
    classes = [ClassTotal(s.value, *totals.get(s.value, (0, 0.0, 0))) for s in Segment]
    return Grid(
        bins=bins,
        fitted_at=None if latest is None else latest.fitted_at,
        cells=cells,
        classes=classes,
        customers=sum(c.customers for c in classes),
        revenue=sum(c.revenue for c in classes),
    )


def profile_scores(
    conn: Connection, workspace_id: uuid.UUID, profile_id: uuid.UUID
) -> dict[str, Any]:
    """The person's scores; a merged profile's id answers with its root's."""
    known = repo.roots_of(conn, workspace_id, [profile_id])
    if profile_id not in known:
        raise ProfileNotFound(f"No profile {profile_id} in this workspace")
    root, erased = known[profile_id]
    row = None if erased else repo.score_row(conn, workspace_id, root)
    if row is None:
        raise NoScores("This customer has no scores: no counted orders, or no fit since the first")
    return {**dict(row._mapping), "requested_id": profile_id}


def _columns(scores: Scores) -> list[list[Any]]:
    """The score columns between workspace_id and scored_at (repository.SCORE_COLUMNS), one
    list per column, NaN as NULL; money in cents."""
    return [
        scores.recency_days.tolist(),
        scores.frequency.tolist(),
        np.round(scores.monetary, 2).tolist(),
        scores.r.tolist(),
        scores.f.tolist(),
        scores.m.tolist(),
        [SEGMENTS[c].value for c in scores.rfm_class.tolist()],
        _nullable(scores.p_alive),
        _nullable(scores.expected_purchases),
        _nullable(scores.clv),
        _nullable(scores.usual_gap_days),
        scores.leaving.tolist(),
    ]


def _nullable(values: Any) -> list[float | None]:
    finite = np.isfinite(values)
    return [v if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]
