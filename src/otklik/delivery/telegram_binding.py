"""Telegram updates that matter to delivery: binding a chat to a person, blocked bots.

A site shows a person the bot's deep link `t.me/<bot>?start=<token>`, where the token is the
person's profile id signed for this purpose (delivery/links.py). The bot receives
`/start <token>`; the chat id becomes the person's `telegram` identifier and pressing Start
counts as their consent to the bot's messages. Blocking the bot is an unsubscribe.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

from otklik.channels.telegram import BlockedBot, StartCommand, UnblockedBot, parse_update
from otklik.consent import repository as consent_repo
from otklik.consent.service import set_consent
from otklik.delivery import repository as delivery_repo
from otklik.delivery.links import TELEGRAM, Links
from otklik.delivery.service import workspace_settings
from otklik.kit.signing import BadToken
from otklik.kit.time import utc_now
from otklik.profiles import repository as profiles_repo

IDENTITY = "telegram"


def handle_update(conn: Connection, links: Links, workspace_id: uuid.UUID, update: Any) -> str:
    """Apply one update; returns what happened (bound, blocked, unblocked, ignored, ...)."""
    event = parse_update(update) if isinstance(update, dict) else None
    if isinstance(event, StartCommand):
        if not event.token:
            return "ignored"
        try:
            profile_id = links.read_profile(TELEGRAM, event.token)
        except BadToken:
            return "bad_token"
        return bind(conn, workspace_id, profile_id, event.chat_id)
    if isinstance(event, BlockedBot):
        return _blocked(conn, workspace_id, event.chat_id)
    if isinstance(event, UnblockedBot):
        consent_repo.remove_suppression(conn, workspace_id, "telegram", event.chat_id)
        return "unblocked"
    return "ignored"


def bind(conn: Connection, workspace_id: uuid.UUID, profile_id: uuid.UUID, chat_id: str) -> str:
    profile = delivery_repo.profiles(conn, [profile_id]).get(profile_id)
    if profile is None or profile.workspace_id != workspace_id or profile.erased_at is not None:
        return "unknown_profile"
    owners = profiles_repo.identities_for(conn, workspace_id, [(IDENTITY, chat_id)])
    owner = owners.get((IDENTITY, chat_id))
    now = utc_now()
    if owner is None:
        profiles_repo.insert_identities(
            conn,
            [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace_id,
                    "type": IDENTITY,
                    "value": chat_id,
                    "profile_id": profile_id,
                    "created_at": now,
                }
            ],
        )
    elif owner != profile_id:
        # The chat now belongs to whoever followed a link of theirs last (a shared device).
        rows = profiles_repo.identities_of_profiles(conn, [owner], [IDENTITY])
        ids = [r.id for r in rows if r.value == chat_id]
        profiles_repo.set_identity_owner(conn, ids, profile_id)
    profiles_repo.bump_profiles_version(conn)
    consent_repo.remove_suppression(conn, workspace_id, "telegram", chat_id)
    set_consent(
        conn,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel="telegram",
        purpose="marketing",
        status="granted",
        source="telegram_start",
        settings=workspace_settings(conn, workspace_id),
        now=now,
    )
    return "bound"


def _blocked(conn: Connection, workspace_id: uuid.UUID, chat_id: str) -> str:
    now = utc_now()
    consent_repo.add_suppressions(
        conn,
        workspace_id,
        [
            {
                "channel": "telegram",
                "address": chat_id,
                "reason": "unsubscribed",
                "detail": "blocked the bot",
            }
        ],
        now,
    )
    owner = profiles_repo.identities_for(conn, workspace_id, [(IDENTITY, chat_id)]).get(
        (IDENTITY, chat_id)
    )
    if owner is not None:
        set_consent(
            conn,
            workspace_id=workspace_id,
            profile_id=owner,
            channel="telegram",
            purpose="marketing",
            status="denied",
            source="bot_blocked",
            settings=workspace_settings(conn, workspace_id),
            now=now,
        )
    return "blocked"


async def connect_updates(adapter: Any, hook_url: str) -> str:
    """Tell Telegram how Otklik receives this bot's updates; returns "webhook" or "polling".

    Webhook mode registers `hook_url` (with the secret header, when one is configured);
    polling mode removes any webhook, as Telegram refuses getUpdates while one is set.
    """
    try:
        if adapter.config.updates == "polling":
            await adapter.delete_webhook()
            return "polling"
        secret = adapter.config.webhook_secret
        await adapter.set_webhook(hook_url, secret.get_secret_value() if secret else None)
        return "webhook"
    finally:
        await adapter.aclose()
