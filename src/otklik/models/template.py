"""Message templates: a named template per channel and its immutable versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base


class Template(Base):
    __tablename__ = "template"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    # The stable name API callers use ("order-confirmation").
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    # marketing | service | transactional: decides which consent a send needs.
    purpose: Mapped[str] = mapped_column(String(16), default="marketing")
    topic: Mapped[str] = mapped_column(String(64), default="")
    current_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)


class TemplateVersion(Base):
    """Never edited: a message records the version it was rendered from."""

    __tablename__ = "template_version"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("template.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    # subject, body, body_format (mjml|html|text), text, title, buttons, photo, url ...
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
