"""What comes back after sending: receipts, opens, clicks and unsubscribes.

Each becomes a `message_event`, moves the message forward (never back: a late "delivered"
does not undo "clicked"), and lands on the person's timeline as an event, so segments and
journeys can use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.channels.base import Receipt
from otklik.consent import repository as consent_repo
from otklik.consent.service import set_consent
from otklik.delivery import repository as repo
from otklik.delivery.pipeline import own_event
from otklik.delivery.settings import DeliverySettings
from otklik.models.message import CLICKED, DELIVERED, FAILED, OPENED, SENT
from otklik.profiles.events_repository import append_own_events

# Later states win; FAILED after SENT is a bounce.
RANK = {SENT: 1, DELIVERED: 2, OPENED: 3, CLICKED: 4}
ACTION = {
    "delivered": "Delivered",
    "bounced": "Bounced",
    "failed": "Failed",
    "complained": "Marked as Spam",
    "unsubscribed": "Unsubscribed",
}


# Receipts that close an address for good (a bounce only when permanent).
SUPPRESS = {"bounced": "hard_bounce", "complained": "complaint", "unsubscribed": "unsubscribed"}


def _advance(row: Any, state: str, now: datetime, stamp: str) -> dict[str, Any] | None:
    change: dict[str, Any] = {"mid": row.id, "updated_at": now}
    if getattr(row, stamp) is None:
        change[stamp] = now
    if RANK.get(state, 0) > RANK.get(row.state, 0) and row.state != FAILED:
        change["state"] = state
    return change if len(change) > 2 else None


def _event(row: Any, kind: str, now: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "message_id": row.id,
        "kind": kind,
        "detail": detail,
        "occurred_at": now,
    }


def record_open(conn: Connection, message_id: uuid.UUID, now: datetime, agent: str) -> bool:
    row = repo.message_by_id(conn, message_id)
    if row is None:
        return False
    first = row.opened_at is None
    change = _advance(row, OPENED, now, "opened_at")
    if change:
        repo.update_messages(conn, [change])
    repo.insert_message_events(conn, [_event(row, "opened", now, user_agent=agent[:300])])
    if first and row.profile_id:
        append_own_events(conn, [own_event(row, "Opened", now, {})])
    return True


def record_click(
    conn: Connection, message_id: uuid.UUID, url: str, now: datetime, agent: str
) -> bool:
    row = repo.message_by_id(conn, message_id)
    if row is None:
        return False
    changes = [c for c in (_advance(row, CLICKED, now, "clicked_at"),) if c]
    # A click proves the message was opened, even when images were blocked.
    if row.opened_at is None:
        changes.append({"mid": row.id, "opened_at": now, "updated_at": now})
    if changes:
        repo.update_messages(conn, changes)
    repo.insert_message_events(conn, [_event(row, "clicked", now, url=url, user_agent=agent[:300])])
    if row.profile_id:
        name = "Link Clicked" if row.channel == "email" else "Clicked"
        suffix = f":{uuid.uuid4().hex[:12]}"
        append_own_events(conn, [own_event(row, name, now, {"url": url}, suffix)])
    return True


def unsubscribe(
    conn: Connection, row: Any, settings: DeliverySettings, source: str, now: datetime
) -> str:
    """Say no to this message's purpose on its channel (its topic only, when it has one)."""
    if row.profile_id is None or row.purpose == "transactional":
        return ""
    topic = row.topic if row.topic in {t.key for t in settings.topics} else ""
    set_consent(
        conn,
        workspace_id=row.workspace_id,
        profile_id=row.profile_id,
        channel=row.channel,
        purpose=row.purpose,
        topic=topic,
        status="denied",
        source=source,
        settings=settings,
        now=now,
    )
    repo.insert_message_events(conn, [_event(row, "unsubscribed", now, source=source, topic=topic)])
    return topic


def apply_receipts(
    conn: Connection, workspace_id: uuid.UUID, receipts: Sequence[Receipt], now: datetime
) -> int:
    """Apply provider receipts; returns how many matched a message of this workspace."""
    by_provider = repo.messages_by_provider_id(
        conn,
        workspace_id,
        [r.provider_message_id for r in receipts if r.provider_message_id and not r.message_id],
    )
    matched = 0
    for receipt in receipts:
        row = None
        if receipt.message_id is not None:
            row = repo.message(conn, workspace_id, receipt.message_id)
        elif receipt.provider_message_id:
            row = by_provider.get(receipt.provider_message_id)
        if row is None:
            continue
        matched += 1
        when = receipt.occurred_at or now
        _apply(conn, row, receipt, when)
    return matched


def _apply(conn: Connection, row: Any, receipt: Receipt, when: datetime) -> None:
    detail = {"reason": receipt.reason[:500], "permanent": receipt.permanent}
    repo.insert_message_events(conn, [_event(row, receipt.status, when, **detail)])
    status = receipt.status
    if status == "delivered":
        change = _advance(row, DELIVERED, when, "delivered_at")
        if change:
            repo.update_messages(conn, [change])
    elif status in ("bounced", "failed") and receipt.permanent:
        repo.update_messages(
            conn,
            [
                {
                    "mid": row.id,
                    "state": FAILED,
                    "failed_at": when,
                    "reason_code": "hard_bounce" if status == "bounced" else "failed",
                    "reason": receipt.reason[:2000],
                    "updated_at": when,
                }
            ],
        )
    address = receipt.address or row.address
    reason = SUPPRESS.get(status) if receipt.permanent or status != "bounced" else None
    if address and reason:
        consent_repo.add_suppressions(
            conn,
            row.workspace_id,
            [
                {
                    "channel": row.channel,
                    "address": address,
                    "reason": reason,
                    "detail": receipt.reason[:1000],
                }
            ],
            when,
        )
    if row.profile_id:
        append_own_events(conn, [own_event(row, ACTION[status], when, detail)])
