"""SQL for messages, their attempts and their events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from otklik.kit.rawsql import insert_ignore
from otklik.models import (
    ChannelSetting,
    DeliveryAttempt,
    FrequencyPolicy,
    Identity,
    Message,
    MessageEvent,
    Profile,
    PushSubscription,
    Workspace,
)
from otklik.models.message import DEFERRED, QUEUED, SENDING
from otklik.segments.changes import REACH, profile_changed, push_addresses_changed

MESSAGE = cast(Table, Message.__table__)
ATTEMPT = cast(Table, DeliveryAttempt.__table__)
MEVENT = cast(Table, MessageEvent.__table__)
POLICY = cast(Table, FrequencyPolicy.__table__)
PROFILE = cast(Table, Profile.__table__)
IDENTITY = cast(Table, Identity.__table__)
PUSH = cast(Table, PushSubscription.__table__)
CHANNEL = cast(Table, ChannelSetting.__table__)
WORKSPACE = cast(Table, Workspace.__table__)
SENT_STATES = ("sent", "delivered", "opened", "clicked")


def insert_messages(
    conn: Connection, workspace_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> dict[str, tuple[uuid.UUID, bool]]:
    """Insert send intents; a key already used keeps its first message.

    Returns idempotency key -> (message id, created now).
    """
    if not rows:
        return {}
    conn.execute(insert_ignore(conn, MESSAGE), list(rows))
    keys = [r["idempotency_key"] for r in rows]
    mine = {r["idempotency_key"]: r["id"] for r in rows}
    out: dict[str, tuple[uuid.UUID, bool]] = {}
    for start in range(0, len(keys), 500):
        found = conn.execute(
            select(MESSAGE.c.idempotency_key, MESSAGE.c.id).where(
                MESSAGE.c.workspace_id == workspace_id,
                MESSAGE.c.idempotency_key.in_(keys[start : start + 500]),
            )
        )
        for key, mid in found:
            out[key] = (mid, mid == mine[key])
    return out


def claim(
    conn: Connection, ids: Sequence[uuid.UUID], now: datetime, lease_until: datetime
) -> list[Row[Any]]:
    """Take due messages for this worker; another worker's or a finished message is skipped."""
    if not ids:
        return []
    stmt = (
        update(MESSAGE)
        .where(
            MESSAGE.c.id.in_(list(ids)),
            MESSAGE.c.state.in_((QUEUED, DEFERRED)),
            MESSAGE.c.due_at <= now,
        )
        .values(state=SENDING, due_at=lease_until, updated_at=now)
        .returning(*MESSAGE.c)
    )
    return list(conn.execute(stmt))


def dispatchable(
    conn: Connection, now: datetime, stale_before: datetime, limit: int
) -> list[Row[Any]]:
    """Mark due messages whose task went missing as dispatched now, and return them."""
    due = (
        select(MESSAGE.c.id)
        .where(
            MESSAGE.c.state.in_((QUEUED, DEFERRED)),
            MESSAGE.c.due_at <= now,
            or_(MESSAGE.c.dispatched_at.is_(None), MESSAGE.c.dispatched_at < stale_before),
        )
        .order_by(MESSAGE.c.due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    stmt = (
        update(MESSAGE)
        .where(MESSAGE.c.id.in_(ids))
        .values(dispatched_at=now)
        .returning(MESSAGE.c.id, MESSAGE.c.channel_config_id, MESSAGE.c.workspace_id)
    )
    return list(conn.execute(stmt))


def anything_due(conn: Connection, now: datetime, stale_before: datetime) -> bool:
    """Whether a dispatcher round would find work (both checks walk ix_message_state_due)."""
    waiting = conn.execute(
        select(MESSAGE.c.id)
        .where(
            MESSAGE.c.state.in_((QUEUED, DEFERRED)),
            MESSAGE.c.due_at <= now,
            or_(MESSAGE.c.dispatched_at.is_(None), MESSAGE.c.dispatched_at < stale_before),
        )
        .limit(1)
    ).first()
    if waiting is not None:
        return True
    lost = conn.execute(
        select(MESSAGE.c.id).where(MESSAGE.c.state == SENDING, MESSAGE.c.due_at <= now).limit(1)
    ).first()
    return lost is not None


def mark_dispatched(conn: Connection, ids: Sequence[uuid.UUID], now: datetime) -> None:
    if ids:
        conn.execute(update(MESSAGE).where(MESSAGE.c.id.in_(list(ids))).values(dispatched_at=now))


def expired_leases(conn: Connection, now: datetime, limit: int) -> list[uuid.UUID]:
    """Messages a worker claimed and never finished: it died or hung past its lease."""
    return list(
        conn.execute(
            select(MESSAGE.c.id)
            .where(MESSAGE.c.state == SENDING, MESSAGE.c.due_at <= now)
            .limit(limit)
        ).scalars()
    )


def requeue_interrupted(conn: Connection, ids: Sequence[uuid.UUID], now: datetime) -> None:
    if not ids:
        return
    conn.execute(
        update(ATTEMPT)
        .where(ATTEMPT.c.message_id.in_(list(ids)), ATTEMPT.c.outcome.is_(None))
        .values(outcome="interrupted", finished_at=now, detail="the worker stopped mid-send")
    )
    conn.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id.in_(list(ids)), MESSAGE.c.state == SENDING)
        .values(state=QUEUED, due_at=now, dispatched_at=None, updated_at=now)
    )


def update_messages(conn: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-message column changes; each dict has `mid` plus the columns to set."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_shape.setdefault(tuple(sorted(k for k in change if k != "mid")), []).append(change)
    for columns, group in by_shape.items():
        stmt = (
            update(MESSAGE)
            .where(MESSAGE.c.id == bindparam("mid"))
            .values({c: bindparam(c) for c in columns})
        )
        conn.execute(stmt, group)


def insert_attempts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(ATTEMPT), list(rows))


def finish_attempts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: aid, outcome, code, detail, finished_at."""
    if rows:
        conn.execute(
            update(ATTEMPT)
            .where(ATTEMPT.c.id == bindparam("aid"))
            .values(
                outcome=bindparam("outcome"),
                code=bindparam("code"),
                detail=bindparam("detail"),
                finished_at=bindparam("finished_at"),
            ),
            list(rows),
        )


def insert_message_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(MEVENT), list(rows))


def workspaces(conn: Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    wanted = list(set(ids))
    return {r.id: r for r in conn.execute(select(WORKSPACE).where(WORKSPACE.c.id.in_(wanted)))}


def profiles(conn: Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    wanted = list(set(ids))
    out: dict[uuid.UUID, Row[Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        out.update({r.id: r for r in conn.execute(select(PROFILE).where(PROFILE.c.id.in_(chunk)))})
    return out


def identities_of_type(
    conn: Connection, profile_ids: Iterable[uuid.UUID], kind: str
) -> dict[uuid.UUID, str]:
    """The newest identifier of one type per profile (e.g. a Telegram chat id)."""
    wanted = list(set(profile_ids))
    rows = conn.execute(
        select(IDENTITY.c.profile_id, IDENTITY.c.value)
        .where(IDENTITY.c.profile_id.in_(wanted), IDENTITY.c.type == kind)
        .order_by(IDENTITY.c.created_at)
    )
    return {pid: value for pid, value in rows}


def push_addresses(
    conn: Connection, profile_ids: Iterable[uuid.UUID], kind: str, platform: str
) -> dict[uuid.UUID, str]:
    """The newest live subscription or device token per profile."""
    wanted = list(set(profile_ids))
    stmt = (
        select(PUSH.c.profile_id, PUSH.c.address)
        .where(PUSH.c.profile_id.in_(wanted), PUSH.c.kind == kind, PUSH.c.removed_at.is_(None))
        .order_by(PUSH.c.created_at)
    )
    if platform:
        stmt = stmt.where(PUSH.c.platform == platform)
    return {pid: address for pid, address in conn.execute(stmt)}


def remove_push_addresses(
    conn: Connection, workspace_id: uuid.UUID, addresses: Sequence[str], now: datetime
) -> int:
    if not addresses:
        return 0
    push_addresses_changed(conn, workspace_id, addresses)
    result = conn.execute(
        update(PUSH)
        .where(
            PUSH.c.workspace_id == workspace_id,
            PUSH.c.address.in_(list(addresses)),
            PUSH.c.removed_at.is_(None),
        )
        .values(removed_at=now)
    )
    return int(result.rowcount or 0)


def upsert_push_subscription(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert, or re-point an existing subscription to this profile and revive it.

    Returns True when the subscription is new.
    """
    key = and_(
        PUSH.c.workspace_id == row["workspace_id"],
        PUSH.c.kind == row["kind"],
        PUSH.c.address_hash == row["address_hash"],
    )
    found = conn.execute(select(PUSH.c.id, PUSH.c.profile_id).where(key)).first()
    profile_changed(conn, row["workspace_id"], row["profile_id"], REACH)
    if found is not None and found.profile_id != row["profile_id"]:
        profile_changed(conn, row["workspace_id"], found.profile_id, REACH)
    if found is None:
        conn.execute(insert(PUSH).values(**row))
        return True
    conn.execute(
        update(PUSH)
        .where(key)
        .values(profile_id=row["profile_id"], removed_at=None, user_agent=row["user_agent"])
    )
    return False


def history(conn: Connection, profile_ids: Iterable[uuid.UUID], since: datetime) -> list[Row[Any]]:
    """Messages sent to these profiles since `since`, for the frequency caps."""
    wanted = list(set(profile_ids))
    if not wanted:
        return []
    return list(
        conn.execute(
            select(
                MESSAGE.c.profile_id, MESSAGE.c.channel, MESSAGE.c.purpose, MESSAGE.c.sent_at
            ).where(
                MESSAGE.c.profile_id.in_(wanted),
                MESSAGE.c.sent_at > since,
                MESSAGE.c.state.in_(SENT_STATES),
            )
        )
    )


def policies(conn: Connection, workspace_ids: Iterable[uuid.UUID]) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(POLICY).where(
                POLICY.c.workspace_id.in_(list(set(workspace_ids))), POLICY.c.enabled.is_(True)
            )
        )
    )


def channel_settings(conn: Connection, workspace_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(CHANNEL).where(CHANNEL.c.workspace_id == workspace_id).order_by(CHANNEL.c.name)
        )
    )


def channel_settings_by_id(conn: Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    wanted = list(set(ids))
    return {r.id: r for r in conn.execute(select(CHANNEL).where(CHANNEL.c.id.in_(wanted)))}


def message(conn: Connection, workspace_id: uuid.UUID, message_id: uuid.UUID) -> Row[Any] | None:
    return conn.execute(
        select(MESSAGE).where(MESSAGE.c.workspace_id == workspace_id, MESSAGE.c.id == message_id)
    ).first()


def message_by_id(conn: Connection, message_id: uuid.UUID) -> Row[Any] | None:
    return conn.execute(select(MESSAGE).where(MESSAGE.c.id == message_id)).first()


def messages_by_provider_id(
    conn: Connection, workspace_id: uuid.UUID, provider_ids: Sequence[str]
) -> dict[str, Row[Any]]:
    if not provider_ids:
        return {}
    rows = conn.execute(
        select(MESSAGE).where(
            MESSAGE.c.workspace_id == workspace_id,
            MESSAGE.c.provider_message_id.in_(list(provider_ids)),
        )
    )
    return {r.provider_message_id: r for r in rows}


def attempts_of(conn: Connection, message_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(ATTEMPT).where(ATTEMPT.c.message_id == message_id).order_by(ATTEMPT.c.number)
        )
    )


def events_of(conn: Connection, message_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(MEVENT)
            .where(MEVENT.c.message_id == message_id)
            .order_by(MEVENT.c.occurred_at, MEVENT.c.id)
        )
    )


def message_page(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    filters: dict[str, Any],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row[Any]]:
    stmt = select(MESSAGE).where(MESSAGE.c.workspace_id == workspace_id)
    for column in ("state", "channel", "profile_id", "template_id", "source", "reason_code"):
        if filters.get(column) is not None:
            stmt = stmt.where(MESSAGE.c[column] == filters[column])
    if after is not None:
        stmt = stmt.where(
            or_(
                MESSAGE.c.created_at < after[0],
                and_(MESSAGE.c.created_at == after[0], MESSAGE.c.id < after[1]),
            )
        )
    stmt = stmt.order_by(MESSAGE.c.created_at.desc(), MESSAGE.c.id.desc()).limit(limit)
    return list(conn.execute(stmt))


def save_delivery_settings(conn: Connection, workspace_id: uuid.UUID, raw: dict[str, Any]) -> None:
    conn.execute(update(WORKSPACE).where(WORKSPACE.c.id == workspace_id).values(delivery=raw))


def insert_policy(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(POLICY).values(**row))


def all_policies(conn: Connection, workspace_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(POLICY)
            .where(POLICY.c.workspace_id == workspace_id)
            .order_by(POLICY.c.created_at)
        )
    )


def delete_policy(conn: Connection, workspace_id: uuid.UUID, policy_id: uuid.UUID) -> bool:
    result = conn.execute(
        delete(POLICY).where(POLICY.c.workspace_id == workspace_id, POLICY.c.id == policy_id)
    )
    return bool(result.rowcount)


def telegram_settings(conn: Connection) -> list[Row[Any]]:
    """Every workspace's Telegram bots (the poller serves them all)."""
    return list(
        conn.execute(
            select(CHANNEL).where(CHANNEL.c.kind == "telegram", CHANNEL.c.provider == "bot_api")
        )
    )
