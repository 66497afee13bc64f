"""Orders with line items, from "Order Completed" events and offline imports."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from otklik.kit.ids import uuid7
from otklik.kit.time import utc_now
from otklik.models.base import Base


class Order(Base):
    __tablename__ = "order"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        Index("ix_order_profile_placed", "profile_id", "placed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(128))
    profile_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    placed_at: Mapped[datetime] = mapped_column()
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    status: Mapped[str] = mapped_column(String(32), default="completed")
    source: Mapped[str] = mapped_column(String(16), default="event")
    message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class OrderItem(Base):
    __tablename__ = "order_item"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(300), default=None)
    quantity: Mapped[int] = mapped_column(default=1)
    price: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"))
