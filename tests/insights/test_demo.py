"""`otklik demo` leaves the demo shop with fitted customer models and every buyer scored."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from otklik.models import Order, Profile
from tests.cli.test_cli import Cli, workspace_id
from tests.insights.support import fit_rows, scores


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # the CLI on PostgreSQL is covered by tests/cli


def test_the_demo_shop_comes_with_scores(db_url: str, engine: Engine, tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=db_url,
        OTKLIK_SQLITE_SYNCHRONOUS="NORMAL",
        OTKLIK_QUEUE_PATH=str(tmp_path / "queue.db"),
        OTKLIK_DEMO_KEYS=str(tmp_path / "demo-keys.txt"),
        COLUMNS="200",
    )
    done = Cli(tmp_path, env)("demo", "--customers", "150", "--workspace", "demo-models")

    ws = workspace_id(engine, "demo-models")
    (fit,) = fit_rows(engine, ws)
    assert f"demo customer models: {fit['status']}, {fit['customers']} customers" in done.stderr
    assert fit["status"] in {"ok", "partial"}, fit["error"]
    with engine.connect() as conn:
        buyers = conn.execute(
            select(func.count(func.distinct(func.coalesce(Profile.merged_into, Profile.id))))
            .select_from(Order)
            .join(Profile, Profile.id == Order.profile_id)
            .where(Order.workspace_id == ws)
        ).scalar_one()
    scored = scores(engine, ws)
    assert len(scored) == buyers == fit["customers"] > 20
    assert len({s["rfm_class"] for s in scored.values()}) >= 5
