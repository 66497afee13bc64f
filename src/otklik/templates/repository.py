"""SQL for templates and their versions."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, insert, or_, select, tuple_, update

from otklik.models import Template, TemplateVersion

TEMPLATE = cast(Table, Template.__table__)
VERSION = cast(Table, TemplateVersion.__table__)


def find(conn: Connection, workspace_id: uuid.UUID, ref: str) -> Row[Any] | None:
    """A template by id or by key."""
    cond = TEMPLATE.c.key == ref
    with contextlib.suppress(ValueError):  # not an id: a key only
        cond = or_(cond, TEMPLATE.c.id == uuid.UUID(ref))
    return conn.execute(
        select(TEMPLATE).where(TEMPLATE.c.workspace_id == workspace_id, cond)
    ).first()


def key_taken(conn: Connection, workspace_id: uuid.UUID, key: str) -> bool:
    return (
        conn.execute(
            select(TEMPLATE.c.id).where(
                TEMPLATE.c.workspace_id == workspace_id, TEMPLATE.c.key == key
            )
        ).first()
        is not None
    )


def insert_template(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(TEMPLATE).values(**row))


def insert_version(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(VERSION).values(**row))


def set_current(conn: Connection, template_id: uuid.UUID, version: int, now: datetime) -> None:
    conn.execute(
        update(TEMPLATE)
        .where(TEMPLATE.c.id == template_id)
        .values(current_version=version, updated_at=now)
    )


def update_template(conn: Connection, template_id: uuid.UUID, values: dict[str, Any]) -> None:
    conn.execute(update(TEMPLATE).where(TEMPLATE.c.id == template_id).values(**values))


def version(conn: Connection, template_id: uuid.UUID, number: int) -> Row[Any] | None:
    return conn.execute(
        select(VERSION).where(VERSION.c.template_id == template_id, VERSION.c.version == number)
    ).first()


def versions(conn: Connection, template_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(VERSION.c.version, VERSION.c.created_by, VERSION.c.created_at)
            .where(VERSION.c.template_id == template_id)
            .order_by(VERSION.c.version.desc())
        )
    )


def latest_number(conn: Connection, template_id: uuid.UUID) -> int:
    found = conn.execute(
        select(VERSION.c.version)
        .where(VERSION.c.template_id == template_id)
        .order_by(VERSION.c.version.desc())
        .limit(1)
    ).scalar()
    return int(found or 0)


def list_templates(
    conn: Connection, workspace_id: uuid.UUID, channel: str | None, archived: bool
) -> list[Row[Any]]:
    stmt = select(TEMPLATE).where(TEMPLATE.c.workspace_id == workspace_id)
    if channel:
        stmt = stmt.where(TEMPLATE.c.channel == channel)
    if not archived:
        stmt = stmt.where(TEMPLATE.c.archived_at.is_(None))
    return list(conn.execute(stmt.order_by(TEMPLATE.c.name)))


def contents(conn: Connection, pairs: Iterable[tuple[uuid.UUID, int]]) -> list[Row[Any]]:
    """(template_id, version, content, channel) of the given template versions."""
    wanted = list(set(pairs))
    if not wanted:
        return []
    stmt = (
        select(VERSION.c.template_id, VERSION.c.version, VERSION.c.content, TEMPLATE.c.channel)
        .join(TEMPLATE, TEMPLATE.c.id == VERSION.c.template_id)
        .where(tuple_(VERSION.c.template_id, VERSION.c.version).in_(wanted))
    )
    return list(conn.execute(stmt))
