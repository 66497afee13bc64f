"""SQL for reading the message log: pages and counts under the console's filters.

The console filters by a customer, who may be a cluster of merged profiles (a message keeps
the profile id it was sent to) or only an address (test sends, address overrides), so this
matches a set of profile ids or an address where `repository.message_page` matches one id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, false, func, or_, select

from otklik.delivery.repository import MESSAGE

FILTER_COLUMNS = ("state", "channel", "template_id", "source", "reason_code")


@dataclass(frozen=True)
class LogFilter:
    """Column equalities, plus who: any of `profile_ids` or messages sent to `address`."""

    columns: dict[str, Any] = field(default_factory=dict)
    profile_ids: Sequence[uuid.UUID] | None = None
    address: str | None = None

    def without(self, column: str) -> LogFilter:
        rest = {k: v for k, v in self.columns.items() if k != column}
        return LogFilter(rest, self.profile_ids, self.address)


def _conditions(workspace_id: uuid.UUID, wanted: LogFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [MESSAGE.c.workspace_id == workspace_id]
    for column in FILTER_COLUMNS:
        value = wanted.columns.get(column)
        if value is not None:
            out.append(MESSAGE.c[column] == value)
    if wanted.profile_ids is not None or wanted.address is not None:
        who: list[ColumnElement[bool]] = []
        if wanted.profile_ids:
            who.append(MESSAGE.c.profile_id.in_(list(wanted.profile_ids)))
        if wanted.address:
            who.append(MESSAGE.c.address == wanted.address)
        out.append(or_(*who) if who else false())
    return out


def log_page(
    conn: Connection,
    workspace_id: uuid.UUID,
    wanted: LogFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row[Any]]:
    """Messages newest first, keyset-paged on (created_at, id)."""
    stmt: Select[Any] = select(MESSAGE).where(*_conditions(workspace_id, wanted))
    if after is not None:
        stmt = stmt.where(
            or_(
                MESSAGE.c.created_at < after[0],
                and_(MESSAGE.c.created_at == after[0], MESSAGE.c.id < after[1]),
            )
        )
    stmt = stmt.order_by(MESSAGE.c.created_at.desc(), MESSAGE.c.id.desc()).limit(limit)
    return list(conn.execute(stmt))


def state_counts(conn: Connection, workspace_id: uuid.UUID, wanted: LogFilter) -> dict[str, int]:
    """How many messages are in each state under the filter."""
    stmt = (
        select(MESSAGE.c.state, func.count())
        .where(*_conditions(workspace_id, wanted))
        .group_by(MESSAGE.c.state)
    )
    return {state: int(count) for state, count in conn.execute(stmt)}
