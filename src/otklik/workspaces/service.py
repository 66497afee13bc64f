"""Creating workspaces and issuing, listing and revoking their keys."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.ids import new_token
from otklik.kit.time import utc_now
from otklik.models import ApiKey, Workspace
from otklik.workspaces import repository
from otklik.workspaces.keys import KINDS, PREFIXES, display_prefix, hash_token

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # the only time the plain token exists outside the client


def create_workspace(
    session: Session,
    *,
    name: str,
    slug: str,
    timezone: str = "UTC",
    default_region: str = "RU",
    currency: str = "RUB",
) -> tuple[Workspace, IssuedKey, IssuedKey]:
    if not SLUG.match(slug):
        raise Unprocessable(
            "A slug is 2-63 lower-case letters, digits and dashes", code="invalid_slug"
        )
    if repository.get_workspace_by_slug(session, slug) is not None:
        raise Conflict(f"Workspace {slug!r} already exists", code="workspace_exists")
    workspace = Workspace(
        name=name, slug=slug, timezone=timezone, default_region=default_region, currency=currency
    )
    repository.add_workspace(session, workspace)
    write = issue_key(session, workspace.id, "write", name="default write key")
    secret = issue_key(session, workspace.id, "secret", name="default secret key")
    return workspace, write, secret


def issue_key(session: Session, workspace_id: uuid.UUID, kind: str, *, name: str = "") -> IssuedKey:
    if kind not in KINDS:
        raise Unprocessable(f"Key kind must be one of {', '.join(KINDS)}", code="invalid_key_kind")
    token = new_token(PREFIXES[kind])
    key = ApiKey(
        workspace_id=workspace_id,
        kind=kind,
        name=name,
        prefix=display_prefix(token),
        token_hash=hash_token(token),
    )
    repository.add_key(session, key)
    return IssuedKey(key=key, token=token)


def list_keys(session: Session, workspace_id: uuid.UUID) -> Sequence[ApiKey]:
    return repository.list_keys(session, workspace_id)


def revoke_key(session: Session, workspace_id: uuid.UUID, key_id: uuid.UUID) -> None:
    if not repository.revoke_key(session, workspace_id, key_id, utc_now()):
        raise NotFound("No active key with that id in this workspace", code="key_not_found")


def get_workspace(session: Session, workspace_id: uuid.UUID) -> Workspace:
    workspace = repository.get_workspace(session, workspace_id)
    if workspace is None:
        raise NotFound("Workspace not found", code="workspace_not_found")
    return workspace


def find_workspace(session: Session, slug: str) -> Workspace:
    workspace = repository.get_workspace_by_slug(session, slug)
    if workspace is None:
        raise NotFound(f"No workspace {slug!r}", code="workspace_not_found")
    return workspace


def list_workspaces(session: Session) -> Sequence[Workspace]:
    return repository.list_workspaces(session)
