"""SQL for console users, memberships and sessions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from otklik.models import Membership, User, WebSession, Workspace


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def add(session: Session, row: User | Membership | WebSession) -> None:
    session.add(row)
    session.flush()


def membership(session: Session, user_id: uuid.UUID, workspace_id: uuid.UUID) -> Membership | None:
    stmt = select(Membership).where(
        Membership.user_id == user_id, Membership.workspace_id == workspace_id
    )
    return session.scalars(stmt).first()


def workspaces_of(session: Session, user_id: uuid.UUID) -> Sequence[tuple[Workspace, str]]:
    stmt = (
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    )
    return [(ws, role) for ws, role in session.execute(stmt).all()]


def members(session: Session, workspace_id: uuid.UUID) -> Sequence[tuple[User, str]]:
    stmt = (
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [(user, role) for user, role in session.execute(stmt).all()]


def count_admins(session: Session, workspace_id: uuid.UUID) -> int:
    stmt = (
        select(func.count())
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.workspace_id == workspace_id,
            Membership.role == "admin",
            User.disabled_at.is_(None),
        )
    )
    return int(session.scalar(stmt) or 0)


def remove_membership(session: Session, user_id: uuid.UUID, workspace_id: uuid.UUID) -> None:
    session.execute(
        delete(Membership).where(
            Membership.user_id == user_id, Membership.workspace_id == workspace_id
        )
    )
    session.execute(
        delete(WebSession).where(
            WebSession.user_id == user_id, WebSession.workspace_id == workspace_id
        )
    )


def session_by_hash(session: Session, token_hash: str) -> WebSession | None:
    return session.scalars(select(WebSession).where(WebSession.token_hash == token_hash)).first()


def touch_session(
    session: Session, session_id: uuid.UUID, now: datetime, expires: datetime
) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id)
        .values(last_seen_at=now, expires_at=expires)
    )


def delete_session(session: Session, token_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def delete_sessions_of(session: Session, user_id: uuid.UUID) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def delete_expired_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
