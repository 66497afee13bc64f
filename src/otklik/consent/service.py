"""Consent rules: who may get which kind of message on which channel, and suppression.

Purposes:
- transactional (receipts, password resets): always sent, except to suppressed addresses;
- service (account notices): sent unless the person said no on that channel;
- marketing: needs a recorded "granted" under the opt-in regime (the default, as Russian
  advertising law and GDPR require), or no "denied" under opt-out; a topic-level "denied"
  overrides a channel-level "granted" (the preference centre's topics).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.consent import repository as repo
from otklik.delivery.settings import DeliverySettings
from otklik.kit.errors import Unprocessable
from otklik.kit.time import iso, utc_now
from otklik.profiles.events_repository import OwnEvent, append_own_events

CONSENT_CHANNELS = ("email", "sms", "webpush", "mobile_push", "telegram")
PURPOSES = ("marketing", "service", "transactional")
STATUSES = ("granted", "denied", "pending")
SUPPRESSION_REASONS = (
    "hard_bounce",
    "complaint",
    "unsubscribed",
    "manual",
    "imported",
    "invalid",
)
CONSENT_EVENT = "Consent Changed"


class InvalidConsent(Unprocessable):
    code = "invalid_consent"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    reason: str = ""


ALLOWED = Decision(True)


@dataclass(frozen=True)
class ConsentState:
    status: str
    source: str
    updated_at: datetime


ConsentKey = tuple[str, str, str]  # channel, purpose, topic


def current(rows: Iterable[Any]) -> dict[ConsentKey, ConsentState]:
    """The latest answer per (channel, purpose, topic) over a profile's merged cluster."""
    out: dict[ConsentKey, ConsentState] = {}
    for row in rows:
        key = (row.channel, row.purpose, row.topic)
        seen = out.get(key)
        if seen is None or row.updated_at > seen.updated_at:
            out[key] = ConsentState(row.status, row.source, row.updated_at)
    return out


def decide(
    states: dict[ConsentKey, ConsentState],
    settings: DeliverySettings,
    channel: str,
    purpose: str,
    topic: str = "",
) -> Decision:
    if channel not in CONSENT_CHANNELS or purpose == "transactional":
        return ALLOWED
    if topic:
        narrow = states.get((channel, purpose, topic))
        if narrow is not None and narrow.status == "denied":
            return Decision(False, "topic_unsubscribed", f"unsubscribed from the topic {topic!r}")
    state = states.get((channel, purpose, ""))
    status = state.status if state else None
    if status == "denied":
        return Decision(False, "unsubscribed", f"said no to {purpose} messages by {channel}")
    if purpose == "service":
        return ALLOWED
    if status == "granted":
        return ALLOWED
    if status == "pending":
        return Decision(False, "consent_pending", "has not confirmed the subscription yet")
    if settings.marketing_consent == "opt_out":
        return ALLOWED
    return Decision(False, "no_consent", f"gave no consent to marketing by {channel}")


def check_choice(
    channel: str, purpose: str, status: str, topic: str, settings: DeliverySettings
) -> None:
    if channel not in CONSENT_CHANNELS:
        raise InvalidConsent(f"channel must be one of {', '.join(CONSENT_CHANNELS)}")
    if purpose not in PURPOSES or purpose == "transactional":
        raise InvalidConsent("purpose must be marketing or service (transactional needs none)")
    if status not in STATUSES:
        raise InvalidConsent(f"status must be one of {', '.join(STATUSES)}")
    if topic and topic not in {t.key for t in settings.topics}:
        raise InvalidConsent(f"unknown topic {topic!r}: add it in the delivery settings first")


def set_consent(
    conn: Connection,
    *,
    workspace_id: uuid.UUID,
    profile_id: uuid.UUID,
    channel: str,
    purpose: str,
    status: str,
    source: str,
    settings: DeliverySettings,
    topic: str = "",
    now: datetime | None = None,
) -> str | None:
    """Record an answer and its event; returns the status it replaced."""
    check_choice(channel, purpose, status, topic, settings)
    if not source or len(source) > 32:
        raise InvalidConsent("source must be 1 to 32 characters (api, web_form, import, ...)")
    when = now or utc_now()
    before = repo.upsert_consent(
        conn,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel=channel,
        purpose=purpose,
        topic=topic,
        status=status,
        source=source,
        now=when,
    )
    if before != status:
        append_own_events(
            conn,
            [
                OwnEvent(
                    workspace_id=workspace_id,
                    profile_id=profile_id,
                    message_id=f"otk:consent:{profile_id}:{channel}:{purpose}:{topic}:{iso(when)}",
                    name=CONSENT_EVENT,
                    properties={
                        "channel": channel,
                        "purpose": purpose,
                        "topic": topic or None,
                        "status": status,
                        "previous": before,
                        "source": source,
                    },
                    timestamp=when,
                )
            ],
        )
    return before


def suppress(
    conn: Connection,
    workspace_id: uuid.UUID,
    channel: str,
    address: str,
    reason: str,
    detail: str = "",
) -> bool:
    if reason not in SUPPRESSION_REASONS:
        raise InvalidConsent(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}")
    row = {"channel": channel, "address": address, "reason": reason, "detail": detail[:1000]}
    return repo.add_suppressions(conn, workspace_id, [row], utc_now()) == 1
