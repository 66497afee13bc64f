"""SQL for consents and suppressions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from otklik.models import Consent, Suppression
from otklik.segments.changes import REACH, addresses_changed, profile_changed

CONSENT = cast(Table, Consent.__table__)
SUPPRESSION = cast(Table, Suppression.__table__)


def consents_of(conn: Connection, profile_ids: Iterable[uuid.UUID]) -> list[Row[Any]]:
    """Consent rows of these profiles (ids are global, so no workspace is needed)."""
    ids = list(set(profile_ids))
    out: list[Row[Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        out.extend(conn.execute(select(CONSENT).where(CONSENT.c.profile_id.in_(chunk))))
    return out


def upsert_consent(
    conn: Connection,
    *,
    workspace_id: uuid.UUID,
    profile_id: uuid.UUID,
    channel: str,
    purpose: str,
    topic: str,
    status: str,
    source: str,
    now: datetime,
) -> str | None:
    """Store the answer; returns the status it replaced (None when there was none)."""
    key = and_(
        CONSENT.c.workspace_id == workspace_id,
        CONSENT.c.profile_id == profile_id,
        CONSENT.c.channel == channel,
        CONSENT.c.purpose == purpose,
        CONSENT.c.topic == topic,
    )
    before = conn.execute(select(CONSENT.c.status).where(key)).scalar()
    if before is None:
        conn.execute(
            insert(CONSENT).values(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                profile_id=profile_id,
                channel=channel,
                purpose=purpose,
                topic=topic,
                status=status,
                source=source,
                updated_at=now,
            )
        )
    else:
        conn.execute(
            update(CONSENT).where(key).values(status=status, source=source, updated_at=now)
        )
    if before != status:
        profile_changed(conn, workspace_id, profile_id, REACH)
    return cast(str | None, before)


def suppressed(
    conn: Connection, workspace_id: uuid.UUID, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Row[Any]]:
    """The suppression rows among (channel, address) pairs."""
    wanted = list(set(pairs))
    found: dict[tuple[str, str], Row[Any]] = {}
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        rows = conn.execute(
            select(SUPPRESSION).where(
                SUPPRESSION.c.workspace_id == workspace_id,
                tuple_(SUPPRESSION.c.channel, SUPPRESSION.c.address).in_(chunk),
            )
        )
        for row in rows:
            found[(row.channel, row.address)] = row
    return found


def add_suppressions(
    conn: Connection, workspace_id: uuid.UUID, rows: list[dict[str, Any]], now: datetime
) -> int:
    """Insert (channel, address, reason, detail) rows; addresses already listed stay as they are."""
    if not rows:
        return 0
    existing = suppressed(conn, workspace_id, ((r["channel"], r["address"]) for r in rows))
    fresh: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["channel"], r["address"])
        if key not in existing and key not in fresh:
            fresh[key] = {
                "id": uuid.uuid4(),
                "workspace_id": workspace_id,
                "created_at": now,
                "detail": "",
                **r,
            }
    if fresh:
        conn.execute(insert(SUPPRESSION), list(fresh.values()))
        for channel in {key[0] for key in fresh}:
            addresses_changed(conn, workspace_id, channel, [a for c, a in fresh if c == channel])
    return len(fresh)


def remove_suppression(
    conn: Connection, workspace_id: uuid.UUID, channel: str, address: str
) -> bool:
    result = conn.execute(
        delete(SUPPRESSION).where(
            SUPPRESSION.c.workspace_id == workspace_id,
            SUPPRESSION.c.channel == channel,
            SUPPRESSION.c.address == address,
        )
    )
    if result.rowcount:
        addresses_changed(conn, workspace_id, channel, [address])
    return bool(result.rowcount)


def suppression_page(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    channel: str | None,
    q: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row[Any]]:
    stmt = select(SUPPRESSION).where(SUPPRESSION.c.workspace_id == workspace_id)
    if channel:
        stmt = stmt.where(SUPPRESSION.c.channel == channel)
    if q:
        stmt = stmt.where(SUPPRESSION.c.address.contains(q.strip().lower(), autoescape=True))
    if after is not None:
        stmt = stmt.where(
            or_(
                SUPPRESSION.c.created_at < after[0],
                and_(SUPPRESSION.c.created_at == after[0], SUPPRESSION.c.id < after[1]),
            )
        )
    stmt = stmt.order_by(SUPPRESSION.c.created_at.desc(), SUPPRESSION.c.id.desc()).limit(limit)
    return list(conn.execute(stmt))


def count_suppressions(conn: Connection, workspace_id: uuid.UUID) -> int:
    return int(
        conn.execute(
            select(func.count()).where(SUPPRESSION.c.workspace_id == workspace_id)
        ).scalar_one()
    )
