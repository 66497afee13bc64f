"""Previews of template content, saved or not, rendered with a real person or a sample one.

Shared by the REST preview (`POST /api/v1/templates/{ref}/preview`) and the console's live
editor. A preview renders exactly what the pipeline would (same compile, same context), with
placeholder unsubscribe/preference links, and measures the result against the limits of the
provider the workspace sends that channel through (the logging fake's when none is set up).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from otklik.channels import registry
from otklik.channels.base import Capabilities, ChannelKind
from otklik.channels.sms_parts import SmsParts, count_parts
from otklik.channels.telegram import CAPTION_LIMIT
from otklik.delivery import repository as delivery_repo
from otklik.delivery.context import WorkspaceInfo, render_context
from otklik.delivery.settings import DeliverySettings
from otklik.kit.errors import AppError
from otklik.templates.content import Rendered, compile_content
from otklik.templates.rendering import TemplateError, check_variables

UNSUBSCRIBE = "#unsubscribe"
PREFERENCES = "#preferences"
# Content fields that are templates (the rest are choices or structured data).
TEMPLATED = ("subject", "preheader", "title", "body", "text", "url", "icon", "photo")


@dataclass(frozen=True)
class SamplePerson:
    """A made-up customer shaped like a profile row, for previews without a real one."""

    id: uuid.UUID
    email: str
    phone: str
    traits: dict[str, Any]


def sample_person(region: str | None) -> SamplePerson:
    if (region or "").upper() == "RU":
        traits: dict[str, Any] = {
            "first_name": "Анна",
            "last_name": "Иванова",
            "city": "Москва",
            "locale": "ru",
        }
        return SamplePerson(uuid.UUID(int=1), "anna@example.com", "+79161234567", traits)
    traits = {"first_name": "Anna", "last_name": "Smith", "city": "London", "locale": "en"}
    return SamplePerson(uuid.UUID(int=1), "anna@example.com", "+447700900123", traits)


class _PreviewRow:
    """Stands in for a message row when rendering a preview (no message exists)."""

    def __init__(self, channel: str, context: dict[str, Any]) -> None:
        self.id = uuid.UUID(int=0)
        self.channel = channel
        self.context = context
        self.address = None


@dataclass(frozen=True)
class Measure:
    """One rendered field's length against the channel's limit (None: no limit)."""

    field: str
    length: int
    limit: int | None

    @property
    def over(self) -> bool:
        return self.limit is not None and self.length > self.limit


@dataclass(frozen=True)
class Preview:
    channel: str
    rendered: Rendered
    sms: SmsParts | None = None
    measures: list[Measure] = field(default_factory=list)
    # Names the content reads that the render context does not have (typos, mostly).
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def workspace_info(conn: Connection, workspace_id: uuid.UUID) -> WorkspaceInfo:
    row = delivery_repo.workspaces(conn, [workspace_id])[workspace_id]
    # The zone is not read by render_context; the pipeline sets it per person.
    return WorkspaceInfo(row, DeliverySettings.of(row.delivery), [], [], ZoneInfo("UTC"))


def capabilities(conn: Connection, workspace_id: uuid.UUID, channel: str) -> Capabilities:
    """What the workspace's provider for this channel accepts, as the pipeline would pick it."""
    kind = ChannelKind(channel)
    mine = [c for c in delivery_repo.channel_settings(conn, workspace_id) if c.kind == channel]
    chosen = next((c for c in mine if c.is_default), None) or next(
        (c for c in mine if c.enabled), None
    )
    try:
        return registry.adapter_class(kind, chosen.provider if chosen else "logging").capabilities
    except AppError:  # a provider this build no longer has: measure against the fake
        return registry.adapter_class(kind, "logging").capabilities


def unknown_variables(content: Mapping[str, Any], known: set[str]) -> list[str]:
    names: set[str] = set()
    for name in TEMPLATED:
        source = content.get(name)
        if isinstance(source, str) and source:
            try:
                names |= check_variables(source, name)
            except TemplateError:  # compile_content reports it with the line
                continue
    return sorted(names - known)


def render(
    conn: Connection,
    workspace_id: uuid.UUID,
    channel: str,
    content: Mapping[str, Any],
    *,
    profile: Any | None,
    data: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> Preview:
    """Compile and render; TemplateError (with field and line) when the content is broken."""
    compiled = compile_content(channel, content)
    ws = workspace_info(conn, workspace_id)
    given: dict[str, Any] = {"data": data or {}}
    if event is not None:
        given["event"] = event
    context = render_context(_PreviewRow(channel, given), profile, ws, UNSUBSCRIBE, PREFERENCES)
    rendered = compiled.render(context)
    unknown = unknown_variables(content, set(context))
    if channel == "email":
        return Preview(channel, rendered, unknown=unknown)
    caps = capabilities(conn, workspace_id, channel)
    measures = [Measure("text", len(rendered.text), caps.max_body_chars)]
    if channel in ("webpush", "mobile_push"):
        measures.append(Measure("title", len(rendered.subject or ""), caps.max_title_chars))
    notes: list[str] = []
    if channel == "telegram" and rendered.data.get("photo") and len(rendered.text) > CAPTION_LIMIT:
        notes.append("caption_split")
    sms = count_parts(rendered.text) if channel == "sms" else None
    return Preview(channel, rendered, sms, measures, unknown, notes)
