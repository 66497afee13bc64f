"""The demo shop's customer models: fitted once its orders are in, so the console's "Customer
value" page, the customer scores and score-based segments have something to show at once."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from otklik.insights import tasks
from otklik.insights.service import FitResult
from otklik.kit.time import utc_now


def fit_models(engine: Engine, workspace_id: uuid.UUID) -> FitResult:
    return tasks.run_refit(engine, workspace_id, utc_now())
