"""Everything a batch of messages needs from the store, read in one go."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from otklik.consent import repository as consent_repo
from otklik.consent.service import ConsentKey, ConsentState, current
from otklik.delivery import repository as repo
from otklik.delivery.policy import Cap, SentBefore
from otklik.delivery.settings import DeliverySettings
from otklik.templates import repository as templates_repo
from otklik.templates.content import Compiled, compiled
from otklik.templates.rendering import TemplateError

MAX_HOPS = 10


@dataclass
class WorkspaceInfo:
    row: Any
    settings: DeliverySettings
    caps: list[Cap]
    channels: list[Any]
    zone: ZoneInfo


@dataclass
class Loaded:
    workspaces: dict[uuid.UUID, WorkspaceInfo]
    # message's profile id -> the root profile row it belongs to now
    profiles: dict[uuid.UUID, Any]
    consents: dict[uuid.UUID, dict[ConsentKey, ConsentState]]
    history: dict[uuid.UUID, list[SentBefore]]
    templates: dict[tuple[Any, Any], Compiled | TemplateError]
    telegram: dict[uuid.UUID, str]
    push: dict[tuple[uuid.UUID, str, str], str]
    suppressed: dict[tuple[str, str], str] = field(default_factory=dict)

    def channel_for(self, row: Any) -> Any | None:
        channels = self.workspaces[row.workspace_id].channels
        if row.channel_config_id is not None:
            return next((c for c in channels if c.id == row.channel_config_id), None)
        mine = [c for c in channels if c.kind == row.channel]
        return next((c for c in mine if c.is_default), None) or next(
            (c for c in mine if c.enabled), None
        )

    def address_for(self, row: Any, profile: Any | None, provider: str) -> str | None:
        """The raw address to use; "" means the provider's own (a webhook's URL)."""
        if row.address:
            return str(row.address)
        if row.channel == "webhook":
            return ""
        if profile is None:
            return None
        if row.channel == "email":
            return profile.email or _trait(profile, "email")
        if row.channel == "sms":
            return profile.phone or _trait(profile, "phone")
        if row.channel == "telegram":
            return self.telegram.get(profile.id)
        platform = provider if row.channel == "mobile_push" else ""
        return self.push.get((profile.id, row.channel, platform))

    def zone_for(self, profile: Any | None, ws: WorkspaceInfo) -> ZoneInfo:
        name = _trait(profile, "timezone") if profile is not None else None
        return _zone(name) if name else ws.zone


def _trait(profile: Any, name: str) -> str | None:
    value = (profile.traits or {}).get(name)
    return value if isinstance(value, str) and value else None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def load(conn: Connection, rows: Sequence[Any], now: datetime) -> Loaded:
    workspaces: dict[uuid.UUID, WorkspaceInfo] = {}
    policies = repo.policies(conn, {r.workspace_id for r in rows})
    for wid, ws in repo.workspaces(conn, {r.workspace_id for r in rows}).items():
        caps = [
            Cap(
                p.name,
                p.channel,
                frozenset(x for x in p.purposes.split(",") if x),
                p.max_messages,
                timedelta(seconds=p.window_seconds),
                p.action,
            )
            for p in policies
            if p.workspace_id == wid
        ]
        workspaces[wid] = WorkspaceInfo(
            ws,
            DeliverySettings.of(ws.delivery),
            caps,
            repo.channel_settings(conn, wid),
            _zone(ws.timezone),
        )
    profiles = _roots(conn, [r.profile_id for r in rows if r.profile_id])
    root_ids = {p.id for p in profiles.values()}
    members = set(profiles) | root_ids
    consent_rows = consent_repo.consents_of(conn, members)
    by_root: dict[uuid.UUID, list[Any]] = {}
    for c in consent_rows:
        root = profiles.get(c.profile_id)
        by_root.setdefault(root.id if root else c.profile_id, []).append(c)
    consents = {pid: current(items) for pid, items in by_root.items()}
    longest = max((c.window for w in workspaces.values() for c in w.caps), default=None)
    history: dict[uuid.UUID, list[SentBefore]] = {}
    if longest is not None:
        for h in repo.history(conn, [r.profile_id for r in rows if r.profile_id], now - longest):
            history.setdefault(h.profile_id, []).append(SentBefore(h.channel, h.purpose, h.sent_at))
    needs = {r.channel for r in rows}
    telegram = repo.identities_of_type(conn, root_ids, "telegram") if "telegram" in needs else {}
    push: dict[tuple[uuid.UUID, str, str], str] = {}
    if "webpush" in needs:
        for pid, address in repo.push_addresses(conn, root_ids, "webpush", "").items():
            push[(pid, "webpush", "")] = address
    if "mobile_push" in needs:
        for platform in ("fcm", "apns"):
            for pid, address in repo.push_addresses(
                conn, root_ids, "mobile_push", platform
            ).items():
                push[(pid, "mobile_push", platform)] = address
    return Loaded(
        workspaces,
        {mid: profiles[mid] for mid in profiles},
        consents,
        history,
        _templates(conn, rows),
        telegram,
        push,
    )


def _roots(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Each profile id -> the row of the profile it is merged into (itself when not merged)."""
    found = repo.profiles(conn, ids)
    out: dict[uuid.UUID, Any] = {}
    for pid in ids:
        row = found.get(pid)
        for _ in range(MAX_HOPS):
            if row is None or row.merged_into is None:
                break
            parent = found.get(row.merged_into)
            if parent is None:
                found.update(repo.profiles(conn, [row.merged_into]))
                parent = found.get(row.merged_into)
            row = parent
        if row is not None:
            out[pid] = row
    return out


def _templates(
    conn: Connection, rows: Sequence[Any]
) -> dict[tuple[Any, Any], Compiled | TemplateError]:
    wanted = {(r.template_id, r.template_version) for r in rows if r.template_id is not None}
    out: dict[tuple[Any, Any], Compiled | TemplateError] = {}
    if not wanted:
        return out
    for row in templates_repo.contents(conn, wanted):
        key = (row.template_id, row.version)
        try:
            out[key] = compiled(row.channel, row.content)
        except TemplateError as exc:
            out[key] = exc
    return out


def render_context(
    row: Any, profile: Any | None, ws: WorkspaceInfo, unsubscribe: str, preferences: str
) -> dict[str, Any]:
    traits = dict(profile.traits or {}) if profile is not None else {}
    data = row.context or {}
    return {
        "profile": {
            "id": str(profile.id) if profile is not None else None,
            "email": profile.email if profile is not None else row.address,
            "phone": profile.phone if profile is not None else None,
            "traits": traits,
            "locale": traits.get("locale"),
            "timezone": traits.get("timezone"),
            "first_name": traits.get("first_name") or traits.get("firstName"),
            "last_name": traits.get("last_name") or traits.get("lastName"),
        },
        "event": data.get("event"),
        "data": data.get("data") or {},
        "message": {"id": str(row.id), "channel": row.channel},
        "unsubscribe_url": unsubscribe,
        "preferences_url": preferences,
        "workspace": {
            "name": ws.row.name,
            "currency": ws.row.currency,
            "timezone": ws.row.timezone,
            "locale": data.get("locale") or ("ru" if ws.row.default_region == "RU" else "en"),
        },
    }
