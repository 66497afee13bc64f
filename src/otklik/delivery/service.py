"""Creating send intents: the transactional API, test sends, and (later) campaigns/journeys.

Services never commit and never send: they write `message` rows; the caller queues them
after commit (`DeliveryRuntime.dispatch_after_commit`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from otklik.delivery import repository as repo
from otklik.delivery.links import Links
from otklik.delivery.policy import PRIORITIES
from otklik.delivery.settings import DeliverySettings
from otklik.kit.errors import Unprocessable
from otklik.kit.time import utc_now
from otklik.models.message import QUEUED
from otklik.templates import service as templates

MAX_CONTEXT_BYTES = 32 * 1024


@dataclass(frozen=True)
class SendIntent:
    template: str
    profile_id: uuid.UUID | None
    # An explicit address overrides the profile's (a test send needs no profile).
    to: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    idempotency_key: str | None = None
    priority: str | None = None
    channel_config_id: uuid.UUID | None = None
    source: str = "transactional_api"
    source_ref: str = ""
    send_at: datetime | None = None
    # None: the template's current version (a test send may try an older one).
    template_version: int | None = None


@dataclass(frozen=True)
class Queued:
    id: uuid.UUID
    created: bool


def queue(conn: Connection, workspace_id: uuid.UUID, intent: SendIntent) -> Queued:
    """One message row; the same idempotency key returns the first message, unchanged."""
    return queue_many(conn, workspace_id, [intent])[0]


def queue_many(
    conn: Connection, workspace_id: uuid.UUID, intents: list[SendIntent]
) -> list[Queued]:
    now = utc_now()
    rows: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for intent in intents:
        template = cache.get(intent.template)
        if template is None:
            template = templates.get(conn, workspace_id, intent.template)
            cache[intent.template] = template
        if template.archived_at is not None:
            raise Unprocessable(f"template {template.key!r} is archived", code="template_archived")
        if intent.profile_id is None and not intent.to:
            raise Unprocessable("give a profile or an address to send to", code="no_recipient")
        priority = _priority(intent.priority, template.purpose)
        context: dict[str, Any] = {"data": intent.data}
        if intent.event is not None:
            context["event"] = intent.event
        message_id = uuid.uuid4()
        due = intent.send_at or now
        rows.append(
            {
                "id": message_id,
                "workspace_id": workspace_id,
                "idempotency_key": intent.idempotency_key or f"auto:{message_id}",
                "profile_id": intent.profile_id,
                "channel": template.channel,
                "channel_config_id": intent.channel_config_id,
                "template_id": template.id,
                "template_version": intent.template_version or template.current_version,
                "purpose": template.purpose,
                "topic": template.topic,
                "priority": priority,
                "source": intent.source,
                "source_ref": intent.source_ref,
                "address": intent.to,
                "context": context,
                "state": QUEUED,
                "due_at": due,
                # Queued right after commit; the dispatcher steps in only if that is lost.
                "dispatched_at": now if due <= now else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    found = repo.insert_messages(conn, workspace_id, rows)
    return [Queued(*found[r["idempotency_key"]]) for r in rows]


def queue_test(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    template: str,
    address: str,
    channel_config_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    version: int | None = None,
    requested_by: str = "",
) -> Queued:
    """A test send to a typed-in address, rendered with a real person's data if given.

    Consent, quiet hours and caps do not apply (the address is the sender's own), but a
    suppressed address stays suppressed, so a test shows what a real send would hit.
    """
    if not address.strip():
        raise Unprocessable("give an address to send the test to", code="no_recipient")
    return queue(
        conn,
        workspace_id,
        SendIntent(
            template=template,
            profile_id=profile_id,
            to=address.strip(),
            data=data or {},
            priority="critical",
            channel_config_id=channel_config_id,
            source="test",
            source_ref=requested_by,
            template_version=version,
        ),
    )


def workspace_settings(conn: Connection, workspace_id: uuid.UUID) -> DeliverySettings:
    """The workspace's delivery settings (quiet hours, consent regime, topics, public URL)."""
    return DeliverySettings.of(repo.workspaces(conn, [workspace_id])[workspace_id].delivery)


def workspace_links(conn: Connection, links: Links, workspace_id: uuid.UUID) -> Links:
    """Links on the workspace's own public URL, when it sets one (people and providers)."""
    return links.with_base(workspace_settings(conn, workspace_id).public_url)


def _priority(name: str | None, purpose: str) -> int:
    if name is None:
        return PRIORITIES["critical"] if purpose == "transactional" else PRIORITIES["normal"]
    if name not in PRIORITIES:
        raise Unprocessable(
            f"priority must be one of {', '.join(PRIORITIES)}", code="invalid_priority"
        )
    return PRIORITIES[name]
