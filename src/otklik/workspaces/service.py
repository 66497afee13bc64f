"""Creating workspaces and issuing, listing and revoking their keys."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

import phonenumbers
from babel.numbers import list_currencies
from sqlalchemy.orm import Session

from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.ids import new_token
from otklik.kit.time import utc_now
from otklik.models import ApiKey, Workspace
from otklik.workspaces import repository
from otklik.workspaces.keys import KINDS, PREFIXES, display_prefix, hash_token

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MAX_NAME = 200


class InvalidSettings(Unprocessable):
    """One or more settings are invalid; `details` maps each field to its error code."""

    code = "invalid_settings"


@cache
def timezones() -> tuple[str, ...]:
    """IANA zone names this machine's time zone database knows (zoneinfo / tzdata)."""
    return tuple(sorted(available_timezones()))


@cache
def regions() -> tuple[str, ...]:
    """Regions whose phone numbers phonenumbers can parse without a country code."""
    return tuple(sorted(phonenumbers.SUPPORTED_REGIONS))


@cache
def currencies() -> tuple[str, ...]:
    """ISO 4217 codes (CLDR's list, as babel has it)."""
    return tuple(sorted(list_currencies()))


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


@dataclass(frozen=True)
class WorkspaceSettings:
    name: str
    timezone: str
    default_region: str
    currency: str


def clean_settings(given: WorkspaceSettings) -> WorkspaceSettings:
    """The settings trimmed (codes upper-cased); InvalidSettings names each bad field."""
    cleaned = WorkspaceSettings(
        name=given.name.strip(),
        timezone=given.timezone.strip(),
        default_region=given.default_region.strip().upper(),
        currency=given.currency.strip().upper(),
    )
    errors: dict[str, str] = {}
    if not cleaned.name:
        errors["name"] = "name_required"
    elif len(cleaned.name) > MAX_NAME:
        errors["name"] = "name_too_long"
    if cleaned.timezone not in timezones():
        errors["timezone"] = "unknown_timezone"
    if cleaned.default_region not in regions():
        errors["default_region"] = "unknown_region"
    if cleaned.currency not in currencies():
        errors["currency"] = "unknown_currency"
    if errors:
        fields = ", ".join(sorted(errors))
        raise InvalidSettings(f"Invalid workspace settings: {fields}", details=errors)
    return cleaned


def update_settings(
    session: Session, workspace_id: uuid.UUID, given: WorkspaceSettings
) -> Workspace:
    cleaned = clean_settings(given)
    workspace = get_workspace(session, workspace_id)
    repository.update_workspace(
        session,
        workspace,
        name=cleaned.name,
        timezone=cleaned.timezone,
        default_region=cleaned.default_region,
        currency=cleaned.currency,
    )
    return workspace
