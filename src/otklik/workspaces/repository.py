"""SQL for workspaces and keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from otklik.models import ApiKey, Workspace
from otklik.workspaces.keys import KeyOwner


def add_workspace(session: Session, workspace: Workspace) -> None:
    session.add(workspace)
    session.flush()


def get_workspace(session: Session, workspace_id: uuid.UUID) -> Workspace | None:
    return session.get(Workspace, workspace_id)


def get_workspace_by_slug(session: Session, slug: str) -> Workspace | None:
    return session.scalars(select(Workspace).where(Workspace.slug == slug)).first()


def list_workspaces(session: Session) -> Sequence[Workspace]:
    return session.scalars(select(Workspace).order_by(Workspace.created_at)).all()


def update_workspace(
    session: Session,
    workspace: Workspace,
    *,
    name: str,
    timezone: str,
    default_region: str,
    currency: str,
) -> None:
    workspace.name = name
    workspace.timezone = timezone
    workspace.default_region = default_region
    workspace.currency = currency
    session.flush()


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def list_keys(session: Session, workspace_id: uuid.UUID) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.created_at)
    return session.scalars(stmt).all()


def revoke_key(
    session: Session, workspace_id: uuid.UUID, key_id: uuid.UUID, when: datetime
) -> bool:
    stmt = (
        update(ApiKey)
        .where(ApiKey.workspace_id == workspace_id, ApiKey.id == key_id)
        .where(ApiKey.revoked_at.is_(None))
        .values(revoked_at=when)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def find_active_key(conn: Connection | Session, token_hash: str) -> KeyOwner | None:
    stmt = select(ApiKey.workspace_id, ApiKey.kind, ApiKey.id).where(
        ApiKey.token_hash == token_hash, ApiKey.revoked_at.is_(None)
    )
    row = conn.execute(stmt).first()
    return None if row is None else KeyOwner(row[0], row[1], row[2])
