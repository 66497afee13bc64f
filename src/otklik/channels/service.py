"""Configured providers per workspace: checked against the adapter's typed config."""

from __future__ import annotations

import uuid
from typing import Any, cast

from pydantic import SecretStr, ValidationError
from sqlalchemy import Connection, Table, delete, insert, select, update

from otklik.channels import registry
from otklik.channels.base import ChannelKind
from otklik.kit.errors import Conflict, NotFound, Unprocessable
from otklik.kit.time import utc_now
from otklik.models import ChannelSetting

CHANNEL = cast(Table, ChannelSetting.__table__)
MASK = "**********"


class ChannelNotFound(NotFound):
    code = "channel_not_found"


def _validated(kind: str, provider: str, config: dict[str, Any]) -> None:
    try:
        registry.parse_config(ChannelKind(kind), provider, config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(
            f"config.{where}: {first['msg']}",
            code="invalid_channel_config",
            details=[
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from None


def masked(kind: str, provider: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as people may see it: secrets replaced by MASK."""
    try:
        parsed = registry.parse_config(ChannelKind(kind), provider, config)
    except (ValidationError, Unprocessable):
        return {}
    out: dict[str, Any] = {}
    for name in type(parsed).model_fields:
        value = getattr(parsed, name)
        out[name] = MASK if isinstance(value, SecretStr) else parsed.model_dump(mode="json")[name]
    return out


def keep_secrets(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Secrets come back masked from a form or an API read: keep the stored value for those,
    including secrets inside a dict (webhook headers, an SMS gateway's secret fields)."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        stored = old.get(key)
        if value == MASK:
            out[key] = stored
        elif isinstance(value, dict) and isinstance(stored, dict):
            out[key] = keep_secrets(value, stored)
        else:
            out[key] = value
    return out


def _name_free(
    conn: Connection, workspace_id: uuid.UUID, kind: str, name: str, but: uuid.UUID | None
) -> None:
    stmt = select(CHANNEL.c.id).where(
        CHANNEL.c.workspace_id == workspace_id, CHANNEL.c.kind == kind, CHANNEL.c.name == name
    )
    if but is not None:
        stmt = stmt.where(CHANNEL.c.id != but)
    if conn.execute(stmt).first():
        raise Conflict(f"a {kind} provider named {name!r} exists", code="channel_exists")


def create(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    kind: str,
    provider: str,
    name: str,
    config: dict[str, Any],
    is_default: bool,
    enabled: bool,
) -> uuid.UUID:
    _validated(kind, provider, config)
    _name_free(conn, workspace_id, kind, name, None)
    now = utc_now()
    channel_id = uuid.uuid4()
    if is_default:
        _clear_default(conn, workspace_id, kind)
    conn.execute(
        insert(CHANNEL).values(
            id=channel_id,
            workspace_id=workspace_id,
            kind=kind,
            provider=provider,
            name=name,
            config=config,
            is_default=is_default,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
    )
    return channel_id


def _clear_default(conn: Connection, workspace_id: uuid.UUID, kind: str) -> None:
    conn.execute(
        update(CHANNEL)
        .where(CHANNEL.c.workspace_id == workspace_id, CHANNEL.c.kind == kind)
        .values(is_default=False)
    )


def get(conn: Connection, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Any:
    row = conn.execute(
        select(CHANNEL).where(CHANNEL.c.workspace_id == workspace_id, CHANNEL.c.id == channel_id)
    ).first()
    if row is None:
        raise ChannelNotFound("no such channel provider in this workspace")
    return row


def change(
    conn: Connection,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    *,
    config: dict[str, Any],
    name: str,
    is_default: bool,
    enabled: bool,
) -> None:
    row = get(conn, workspace_id, channel_id)
    merged = keep_secrets(config, row.config or {})
    _validated(row.kind, row.provider, merged)
    _name_free(conn, workspace_id, row.kind, name, row.id)
    if is_default:
        _clear_default(conn, workspace_id, row.kind)
    conn.execute(
        update(CHANNEL)
        .where(CHANNEL.c.id == channel_id)
        .values(
            config=merged, name=name, is_default=is_default, enabled=enabled, updated_at=utc_now()
        )
    )


def remove(conn: Connection, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> None:
    get(conn, workspace_id, channel_id)
    conn.execute(delete(CHANNEL).where(CHANNEL.c.id == channel_id))


def listing(conn: Connection, workspace_id: uuid.UUID) -> list[Any]:
    return list(
        conn.execute(
            select(CHANNEL)
            .where(CHANNEL.c.workspace_id == workspace_id)
            .order_by(CHANNEL.c.kind, CHANNEL.c.name)
        )
    )
