"""The preference centre and double opt-in: people manage what they receive themselves."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from otklik.consent import repository as repo
from otklik.consent.service import CONSENT_CHANNELS, ConsentKey, ConsentState, current, set_consent
from otklik.delivery import repository as delivery_repo
from otklik.delivery.settings import DeliverySettings, Topic
from otklik.kit.errors import NotFound

SOURCE = "preference_centre"
# A confirmation link works for a week; after that the person asks for a new one.
CONFIRM_TTL_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Preferences:
    workspace_id: uuid.UUID
    workspace_name: str
    profile_id: uuid.UUID
    settings: DeliverySettings
    channels: list[str]
    topics: list[Topic]
    states: dict[ConsentKey, ConsentState]

    def subscribed(self, channel: str, topic: str = "") -> bool:
        state = self.states.get((channel, "marketing", topic))
        if topic:
            return state is None or state.status != "denied"
        if state is None:
            return self.settings.marketing_consent == "opt_out"
        return state.status == "granted"

    def pending(self, channel: str) -> bool:
        state = self.states.get((channel, "marketing", ""))
        return state is not None and state.status == "pending"


def load(conn: Connection, profile_id: uuid.UUID) -> Preferences:
    profile = delivery_repo.profiles(conn, [profile_id]).get(profile_id)
    if profile is None or profile.erased_at is not None:
        raise NotFound("this link no longer leads to anyone", code="bad_link")
    ws = delivery_repo.workspaces(conn, [profile.workspace_id])[profile.workspace_id]
    settings = DeliverySettings.of(ws.delivery)
    configured = {c.kind for c in delivery_repo.channel_settings(conn, ws.id) if c.enabled} & set(
        CONSENT_CHANNELS
    )
    states = current(repo.consents_of(conn, [profile_id]))
    # Channels the person answered about stay visible even if their provider was removed.
    answered = {channel for channel, _, _ in states}
    channels = [c for c in CONSENT_CHANNELS if c in configured or c in answered]
    return Preferences(
        ws.id, ws.name, profile_id, settings, channels, list(settings.topics), states
    )


def save(
    conn: Connection,
    prefs: Preferences,
    channels: dict[str, bool],
    topics: dict[tuple[str, str], bool],
) -> int:
    """Record what changed; returns how many answers changed."""
    changed = 0

    def put(channel: str, topic: str, status: str) -> None:
        nonlocal changed
        before = set_consent(
            conn,
            workspace_id=prefs.workspace_id,
            profile_id=prefs.profile_id,
            channel=channel,
            purpose="marketing",
            topic=topic,
            status=status,
            source=SOURCE,
            settings=prefs.settings,
        )
        changed += before != status

    for channel in prefs.channels:
        wanted = channels.get(channel, False)
        if wanted != prefs.subscribed(channel) or (wanted and prefs.pending(channel)):
            put(channel, "", "granted" if wanted else "denied")
        for topic in prefs.topics:
            on = topics.get((channel, topic.key), False)
            if wanted and on != prefs.subscribed(channel, topic.key):
                put(channel, topic.key, "granted" if on else "denied")
    return changed


def confirm(conn: Connection, profile_id: uuid.UUID, channel: str, issued: int) -> str:
    """Complete a double opt-in; returns the workspace's name for the page."""
    if time.time() - issued > CONFIRM_TTL_SECONDS:
        raise NotFound("this confirmation link has expired; subscribe again", code="link_expired")
    prefs = load(conn, profile_id)
    state = prefs.states.get((channel, "marketing", ""))
    # A person who unsubscribed later must not be re-subscribed by an old link.
    if state is None or state.status == "pending":
        set_consent(
            conn,
            workspace_id=prefs.workspace_id,
            profile_id=profile_id,
            channel=channel,
            purpose="marketing",
            status="granted",
            source="double_opt_in",
            settings=prefs.settings,
        )
    return prefs.workspace_name


def form_choices(
    form: Any, prefs: Preferences
) -> tuple[dict[str, bool], dict[tuple[str, str], bool]]:
    channels = {c: form.get(f"channel:{c}") == "on" for c in prefs.channels}
    topics = {
        (c, t.key): form.get(f"topic:{c}:{t.key}") == "on"
        for c in prefs.channels
        for t in prefs.topics
    }
    if form.get("all") == "off":
        channels = dict.fromkeys(channels, False)
    return channels, topics
