"""The dashboard: customers, identified share, events today, events per hour for a week."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from otklik.analytics import repository

WEEK_HOURS = 7 * 24


@dataclass(frozen=True)
class Dashboard:
    customers: int
    identified: int
    events_today: int
    # One point per hour of the last 7 days, oldest first, labelled in the workspace's zone.
    hours: list[datetime]
    counts: list[int]

    @property
    def identified_share(self) -> float:
        return self.identified / self.customers if self.customers else 0.0


def dashboard(conn: Connection, workspace_id: uuid.UUID, tz: ZoneInfo, now: datetime) -> Dashboard:
    local_midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=WEEK_HOURS - 1)
    by_hour = dict(repository.events_per_hour(conn, workspace_id, start))
    hours = [start + timedelta(hours=i) for i in range(WEEK_HOURS)]
    counts = [by_hour.get(hour.strftime("%Y-%m-%d %H"), 0) for hour in hours]
    return Dashboard(
        customers=repository.count_customers(conn, workspace_id),
        identified=repository.count_identified(conn, workspace_id),
        events_today=repository.count_events_since(conn, workspace_id, local_midnight),
        hours=[hour.astimezone(tz) for hour in hours],
        counts=counts,
    )
