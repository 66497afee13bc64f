"""Double opt-in: a new email subscriber confirms by clicking a link before marketing starts."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Connection

from otklik.consent.service import set_consent
from otklik.delivery import repository as delivery_repo
from otklik.delivery.links import Links
from otklik.delivery.service import Queued, SendIntent, queue
from otklik.delivery.settings import DeliverySettings
from otklik.templates import repository as templates_repo
from otklik.templates import service as templates

TEMPLATE_KEY = "double-opt-in"
CONTENT = {
    "ru": {
        "subject": "Подтвердите подписку на {{ workspace.name }}",
        "body": (
            "<p>Здравствуйте{% if profile.first_name %}, {{ profile.first_name }}{% endif %}!</p>"
            "<p>Чтобы получать наши письма, подтвердите подписку:</p>"
            '<p><a href="{{ data.confirm_url }}" data-otklik-notrack>Подтвердить подписку</a></p>'
            "<p>Если вы не подписывались, просто удалите это письмо.</p>"
        ),
        "body_format": "html",
    },
    "en": {
        "subject": "Please confirm your subscription to {{ workspace.name }}",
        "body": (
            "<p>Hello{% if profile.first_name %}, {{ profile.first_name }}{% endif %}!</p>"
            "<p>To receive our emails, please confirm your subscription:</p>"
            '<p><a href="{{ data.confirm_url }}" data-otklik-notrack>Confirm subscription</a></p>'
            "<p>If you did not subscribe, simply delete this email.</p>"
        ),
        "body_format": "html",
    },
}


def ensure_template(conn: Connection, workspace_id: uuid.UUID, region: str) -> None:
    """The confirmation email; the workspace may edit it like any template."""
    if templates_repo.find(conn, workspace_id, TEMPLATE_KEY) is None:
        templates.create(
            conn,
            workspace_id,
            templates.TemplateIn(
                key=TEMPLATE_KEY,
                name="Double opt-in confirmation",
                channel="email",
                # The person asked for it: it must reach them while their consent is pending.
                purpose="transactional",
                topic="",
                content=CONTENT["ru" if region == "RU" else "en"],
            ),
            author="system",
        )


def request_confirmation(
    conn: Connection,
    links: Links,
    *,
    workspace_id: uuid.UUID,
    profile_id: uuid.UUID,
    source: str,
    address: str | None = None,
) -> Queued:
    """Mark email marketing consent pending and queue the confirmation email.

    Asking again the same day returns the same message instead of sending another.
    """
    ws = delivery_repo.workspaces(conn, [workspace_id])[workspace_id]
    settings = DeliverySettings.of(ws.delivery)
    set_consent(
        conn,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel="email",
        purpose="marketing",
        status="pending",
        source=source,
        settings=settings,
    )
    ensure_template(conn, workspace_id, ws.default_region)
    issued = int(time.time())
    url = links.with_base(settings.public_url).confirm(profile_id, "email", issued)
    return queue(
        conn,
        workspace_id,
        SendIntent(
            template=TEMPLATE_KEY,
            profile_id=profile_id,
            to=address,
            data={"confirm_url": url},
            idempotency_key=f"double-opt-in:{profile_id}:{issued // 86400}",
            source="system",
        ),
    )
