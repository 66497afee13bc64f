"""SQL for the dashboard's counts and the events-per-hour series."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from otklik.models import Event, Identity, Profile

IDENTIFIED_TYPES = ("user_id", "email", "phone")


def _live_profiles(workspace_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        Profile.workspace_id == workspace_id,
        Profile.merged_into.is_(None),
        Profile.erased_at.is_(None),
    )


def count_customers(conn: Connection, workspace_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(Profile).where(_live_profiles(workspace_id))
    return int(conn.scalar(stmt) or 0)


def count_identified(conn: Connection, workspace_id: uuid.UUID) -> int:
    known = (
        select(Identity.profile_id)
        .where(Identity.workspace_id == workspace_id, Identity.type.in_(IDENTIFIED_TYPES))
        .distinct()
        .subquery()
    )
    stmt = (
        select(func.count())
        .select_from(Profile)
        .join(known, known.c.profile_id == Profile.id)
        .where(_live_profiles(workspace_id))
    )
    return int(conn.scalar(stmt) or 0)


def count_events_since(conn: Connection, workspace_id: uuid.UUID, since: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(Event)
        .where(Event.workspace_id == workspace_id, Event.received_at >= since)
    )
    return int(conn.scalar(stmt) or 0)


def events_per_hour(
    conn: Connection, workspace_id: uuid.UUID, since: datetime
) -> list[tuple[str, int]]:
    """(UTC hour as 'YYYY-MM-DD HH', count) for events received since `since`."""
    if conn.dialect.name == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text: the hour is a prefix.
        bucket: ColumnElement[str] = func.substr(Event.received_at, 1, 13)
    else:
        bucket = func.to_char(
            func.date_trunc("hour", func.timezone("UTC", Event.received_at)), "YYYY-MM-DD HH24"
        )
    stmt = (
        select(bucket.label("hour"), func.count())
        .where(Event.workspace_id == workspace_id, Event.received_at >= since)
        .group_by(bucket)
        .order_by(bucket)
    )
    return [(str(hour), int(count)) for hour, count in conn.execute(stmt).all()]
