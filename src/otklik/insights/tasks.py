"""Running a refit as a job: the heavy read in its own transaction, then a short write.

`service.refit` does both on one connection, which on SQLite holds the store's write lock for
the whole fit; here the fit is computed in a read transaction (ingest and the other writers
go on meanwhile) and only its results are written under the lock. Orders that arrive in
between are scored when the results are saved (see `service.save_fit`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from otklik.insights import service
from otklik.insights.service import FitResult
from otklik.kit.db import read_tx, write_tx


def run_refit(engine: Engine, workspace_id: uuid.UUID, now: datetime, **options: Any) -> FitResult:
    opts = service.options_from(**options)
    with read_tx(engine) as conn:
        prepared = service.compute_fit(conn, workspace_id, now, opts)
    # Derived data: it can be refitted from the orders, so it need not wait for an fsync.
    with write_tx(engine, durable=False) as conn:
        return service.save_fit(conn, prepared)
