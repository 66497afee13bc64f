"""Shop histories for the customer-model specs: people and their orders, written to the store.

Orders go straight into the tables (as the resolver and the importer would leave them), so a
spec can say "bought on these days for these amounts" without sending events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from otklik.insights import service
from otklik.insights.service import FitResult
from otklik.kit.db import write_tx
from otklik.models import InsightFit, Order, Profile, ProfileScore

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def days_ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def person(engine: Engine, workspace_id: uuid.UUID, **values: Any) -> uuid.UUID:
    pid = uuid.uuid4()
    with write_tx(engine) as conn:
        conn.execute(insert(Profile).values(id=pid, workspace_id=workspace_id, **values))
    return pid


def buy(
    engine: Engine,
    workspace_id: uuid.UUID,
    profile_id: uuid.UUID,
    *purchases: tuple[datetime, float],
    status: str = "completed",
) -> None:
    """One order per (time, amount)."""
    with write_tx(engine) as conn:
        conn.execute(
            insert(Order),
            [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace_id,
                    "external_id": f"o-{uuid.uuid4().hex[:12]}",
                    "profile_id": profile_id,
                    "placed_at": placed_at,
                    "total": Decimal(str(amount)),
                    "status": status,
                }
                for placed_at, amount in purchases
            ],
        )


def merge_into(engine: Engine, loser: uuid.UUID, root: uuid.UUID) -> None:
    with write_tx(engine) as conn:
        conn.execute(update(Profile).where(Profile.id == loser).values(merged_into=root))


def erase(engine: Engine, profile_id: uuid.UUID) -> None:
    with write_tx(engine) as conn:
        conn.execute(update(Profile).where(Profile.id == profile_id).values(erased_at=NOW))


def set_status(engine: Engine, profile_id: uuid.UUID, status: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(update(Order).where(Order.profile_id == profile_id).values(status=status))


def delete_orders(engine: Engine, profile_id: uuid.UUID) -> None:
    with write_tx(engine) as conn:
        conn.execute(delete(Order).where(Order.profile_id == profile_id))


def refit(engine: Engine, workspace_id: uuid.UUID, now: datetime = NOW, **kw: Any) -> FitResult:
    with write_tx(engine) as conn:
        return service.refit(conn, workspace_id, now, **kw)


def rescore(
    engine: Engine, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime = NOW
) -> int:
    with write_tx(engine) as conn:
        return service.rescore(conn, workspace_id, ids, now)


def scores(engine: Engine, workspace_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(ProfileScore).where(ProfileScore.workspace_id == workspace_id))
        return {row.profile_id: dict(row._mapping) for row in rows}


def fit_rows(engine: Engine, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(InsightFit)
            .where(InsightFit.workspace_id == workspace_id)
            .order_by(InsightFit.fitted_at)
        )
        return [dict(row._mapping) for row in rows]


@dataclass
class Shop:
    """A generated history: who bought on which days for how much."""

    people: list[uuid.UUID] = field(default_factory=list)
    purchases: dict[uuid.UUID, list[tuple[datetime, float]]] = field(default_factory=dict)


def generated_shop(
    engine: Engine,
    workspace_id: uuid.UUID,
    customers: int = 80,
    seed: int = 7,
    now: datetime = NOW,
) -> Shop:
    """A year of orders: each person buys at their own rate until they quietly stop, and
    spends around their own mean independently of how often they buy (what the models assume).
    """
    rng = random.Random(seed)
    shop = Shop()
    rows: list[dict[str, Any]] = []
    for _ in range(customers):
        pid = uuid.uuid4()
        start = rng.uniform(30, 365)
        rate = rng.choice([0.0, 0.01, 0.02, 0.05, 0.1])  # purchases per day while active
        mean_spend = rng.uniform(500, 5000)
        day = start
        bought: list[tuple[datetime, float]] = []
        while day > 0:
            bought.append((days_ago(day, now), round(rng.gammavariate(4, mean_spend / 4), 2)))
            if rate == 0 or rng.random() < 0.15:  # drops out after a purchase
                break
            day -= rng.expovariate(rate)
        shop.people.append(pid)
        shop.purchases[pid] = bought
        rows.append({"id": pid, "workspace_id": workspace_id})
    with write_tx(engine) as conn:
        conn.execute(insert(Profile), rows)
    for pid, bought in shop.purchases.items():
        buy(engine, workspace_id, pid, *bought)
    return shop
