"""Accounts, memberships and browser sessions. Never commits: the caller's unit of work does."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from otklik.kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from otklik.models import Membership, User, WebSession, Workspace
from otklik.users import passwords, repository
from otklik.users.roles import ROLES, Role
from otklik.workspaces.keys import hash_token

SESSION_TTL = timedelta(days=14)
# Sliding expiry is written at most this often, so reading pages stays read-only.
TOUCH_EVERY = timedelta(minutes=10)


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class InvalidEmail(Unprocessable):
    code = "invalid_email"


class UnknownRole(Unprocessable):
    code = "unknown_role"


class UserExists(Conflict):
    code = "user_exists"


class UserNotFound(NotFound):
    code = "user_not_found"


class LastAdmin(Conflict):
    code = "last_admin"


class NotAMember(Forbidden):
    code = "not_a_member"


@dataclass(frozen=True)
class Account:
    """A user as pages see it: a plain copy, usable after the request's session is gone."""

    id: uuid.UUID
    email: str
    name: str
    locale: str | None


@dataclass(frozen=True)
class WorkspaceInfo:
    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    default_region: str
    currency: str

    @classmethod
    def of(cls, ws: Workspace) -> WorkspaceInfo:
        return cls(ws.id, ws.slug, ws.name, ws.timezone, ws.default_region, ws.currency)


@dataclass(frozen=True)
class SignedIn:
    """Who is behind a session cookie, in which workspace, with which role."""

    session_id: uuid.UUID
    user: Account
    workspace: WorkspaceInfo
    role: str
    csrf_token: str
    last_seen_at: datetime


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(f"Not a valid email address: {exc}") from exc


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(f"Unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def add_member(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    email: str,
    role: str,
    password: str | None,
    name: str = "",
) -> User:
    """Create the account if new (a password is then required) and give it a role here."""
    email = normalise_email(email)
    check_role(role)
    user = repository.find_user(session, email)
    if user is None:
        if not password:
            raise passwords.WeakPassword("A new user needs a password")
        user = User(email=email, name=name.strip(), password_hash=passwords.hash_password(password))
        repository.add(session, user)
    elif repository.membership(session, user.id, workspace_id) is not None:
        raise UserExists(f"{email} is already a member of this workspace")
    repository.add(session, Membership(user_id=user.id, workspace_id=workspace_id, role=role))
    return user


def members(session: Session, workspace_id: uuid.UUID) -> Sequence[tuple[User, str]]:
    return repository.members(session, workspace_id)


def set_role(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    check_role(role)
    member = repository.membership(session, user_id, workspace_id)
    if member is None:
        raise UserNotFound("No such user in this workspace")
    if member.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(session, workspace_id)
    member.role = role
    session.flush()


def remove_member(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
    member = repository.membership(session, user_id, workspace_id)
    if member is None:
        raise UserNotFound("No such user in this workspace")
    if member.role == Role.ADMIN:
        _keep_an_admin(session, workspace_id)
    repository.remove_membership(session, user_id, workspace_id)


def _keep_an_admin(session: Session, workspace_id: uuid.UUID) -> None:
    if repository.count_admins(session, workspace_id) <= 1:
        raise LastAdmin("A workspace must keep at least one admin")


class WrongPassword(Unprocessable):
    code = "wrong_password"


def change_password(session: Session, user_id: uuid.UUID, current: str, new: str) -> User:
    """The user's own change: the current password proves it is them."""
    user = repository.get_user(session, user_id)
    if user is None or not passwords.verify(user.password_hash, current):
        raise WrongPassword("The current password is wrong.")
    set_password(session, user_id, new)
    return user


def set_password(session: Session, user_id: uuid.UUID, password: str) -> None:
    user = repository.get_user(session, user_id)
    if user is None:
        raise UserNotFound("No such user")
    user.password_hash = passwords.hash_password(password)
    # Other browsers signed in with the old password are signed out.
    repository.delete_sessions_of(session, user.id)
    session.flush()


def set_locale(session: Session, user_id: uuid.UUID, locale: str | None) -> None:
    user = repository.get_user(session, user_id)
    if user is not None:
        user.locale = locale
        session.flush()


def authenticate(session: Session, email: str, password: str, now: datetime) -> User:
    try:
        email = normalise_email(email)
    except InvalidEmail:
        email = ""
    user = repository.find_user(session, email) if email else None
    ok = passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled_at is not None:
        raise InvalidCredentials("Wrong email or password")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    session.flush()
    return user


def workspaces_of(session: Session, user_id: uuid.UUID) -> list[tuple[WorkspaceInfo, str]]:
    return [(WorkspaceInfo.of(ws), role) for ws, role in repository.workspaces_of(session, user_id)]


def start_session(
    session: Session, user: User, now: datetime, *, user_agent: str = ""
) -> tuple[str, WebSession]:
    """A new session in the user's first workspace; the token goes to the cookie only."""
    spaces = repository.workspaces_of(session, user.id)
    if not spaces:
        raise NotAMember("This account is not a member of any workspace")
    repository.delete_expired_sessions(session, now)
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=hash_token(token),
        user_id=user.id,
        workspace_id=spaces[0][0].id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_TTL,
        user_agent=user_agent[:300],
    )
    repository.add(session, row)
    return token, row


def signed_in(session: Session, token: str, now: datetime) -> SignedIn | None:
    row = repository.session_by_hash(session, hash_token(token))
    if row is None or row.expires_at <= now:
        return None
    user = repository.get_user(session, row.user_id)
    member = repository.membership(session, row.user_id, row.workspace_id)
    workspace = session.get(Workspace, row.workspace_id)
    if user is None or user.disabled_at is not None or member is None or workspace is None:
        return None
    account = Account(user.id, user.email, user.name, user.locale)
    return SignedIn(
        row.id,
        account,
        WorkspaceInfo.of(workspace),
        member.role,
        row.csrf_token,
        row.last_seen_at,
    )


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= TOUCH_EVERY


def touch(session: Session, session_id: uuid.UUID, now: datetime) -> None:
    repository.touch_session(session, session_id, now, now + SESSION_TTL)


def switch_workspace(session: Session, token: str, workspace_id: uuid.UUID) -> None:
    row = repository.session_by_hash(session, hash_token(token))
    if row is None:
        raise InvalidCredentials("Not signed in")
    if repository.membership(session, row.user_id, workspace_id) is None:
        raise NotAMember("You are not a member of that workspace")
    row.workspace_id = workspace_id
    session.flush()


def end_session(session: Session, token: str) -> None:
    repository.delete_session(session, hash_token(token))
