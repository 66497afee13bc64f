"""Saving templates: every save is checked (compiled) first and becomes a new version."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.time import utc_now
from otklik.templates import repository as repo
from otklik.templates.content import compile_content

KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
PURPOSES = ("marketing", "service", "transactional")


class TemplateNotFound(NotFound):
    code = "template_not_found"


@dataclass(frozen=True)
class TemplateIn:
    key: str
    name: str
    channel: str
    purpose: str
    topic: str
    content: dict[str, Any]


def _check_meta(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise Unprocessable(f"purpose must be one of {', '.join(PURPOSES)}", code="invalid_purpose")


def create(conn: Connection, workspace_id: uuid.UUID, data: TemplateIn, author: str) -> uuid.UUID:
    if not KEY.match(data.key):
        raise Unprocessable(
            "key: lower-case letters, digits, '.', '-' and '_' (up to 100)", code="invalid_key"
        )
    _check_meta(data.purpose)
    compile_content(data.channel, data.content)
    if repo.key_taken(conn, workspace_id, data.key):
        raise Conflict(f"a template with the key {data.key!r} exists", code="template_exists")
    now = utc_now()
    template_id = uuid.uuid4()
    repo.insert_template(
        conn,
        {
            "id": template_id,
            "workspace_id": workspace_id,
            "key": data.key,
            "name": data.name or data.key,
            "channel": data.channel,
            "purpose": data.purpose,
            "topic": data.topic,
            "current_version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    repo.insert_version(
        conn,
        {
            "id": uuid.uuid4(),
            "template_id": template_id,
            "version": 1,
            "content": data.content,
            "created_by": author,
            "created_at": now,
        },
    )
    return template_id


def get(conn: Connection, workspace_id: uuid.UUID, ref: str) -> Any:
    row = None if "\x00" in ref else repo.find(conn, workspace_id, ref)
    if row is None:
        raise TemplateNotFound(f"no template {ref!r} in this workspace")
    return row


def save_version(
    conn: Connection,
    workspace_id: uuid.UUID,
    ref: str,
    content: dict[str, Any],
    author: str,
    *,
    name: str | None = None,
    purpose: str | None = None,
    topic: str | None = None,
) -> int:
    """Check and store a new version and make it current; returns its number."""
    row = get(conn, workspace_id, ref)
    compile_content(row.channel, content)
    now = utc_now()
    meta: dict[str, Any] = {}
    if name is not None:
        meta["name"] = name
    if purpose is not None:
        _check_meta(purpose)
        meta["purpose"] = purpose
    if topic is not None:
        meta["topic"] = topic
    number = repo.latest_number(conn, row.id) + 1
    repo.insert_version(
        conn,
        {
            "id": uuid.uuid4(),
            "template_id": row.id,
            "version": number,
            "content": content,
            "created_by": author,
            "created_at": now,
        },
    )
    repo.update_template(conn, row.id, {"current_version": number, "updated_at": now, **meta})
    return number


def content_of(conn: Connection, template: Any, version: int | None = None) -> dict[str, Any]:
    found = repo.version(conn, template.id, version or template.current_version)
    if found is None:
        raise TemplateNotFound(f"template {template.key!r} has no version {version}")
    return dict(found.content)
