"""A profile as the resolver holds it in memory while it works through a batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


@dataclass
class ProfileState:
    id: uuid.UUID
    workspace_id: uuid.UUID
    traits: dict[str, Any]
    created_at: datetime
    email: str | None = None
    phone: str | None = None
    merged_into: uuid.UUID | None = None
    erased_at: datetime | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    events_count: int = 0
    orders_count: int = 0
    revenue: Decimal = Decimal("0")
    last_order_at: datetime | None = None
    # Values of the identifier types that must never be merged across (user_id by default).
    unique: dict[str, set[str]] = field(default_factory=dict)
    new: bool = False
    dirty: bool = False

    @classmethod
    def from_row(cls, row: Any) -> ProfileState:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            traits=dict(row.traits or {}),
            created_at=row.created_at,
            email=row.email,
            phone=row.phone,
            merged_into=row.merged_into,
            erased_at=row.erased_at,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            events_count=row.events_count,
            orders_count=row.orders_count,
            revenue=Decimal(row.revenue or 0),
            last_order_at=row.last_order_at,
        )

    def seen(self, when: datetime, *, active: bool = True) -> None:
        self.events_count += 1
        if self.first_seen_at is None or when < self.first_seen_at:
            self.first_seen_at = when
        if active and (self.last_seen_at is None or when > self.last_seen_at):
            self.last_seen_at = when
        self.dirty = True

    def add_order(self, total: Decimal, placed_at: datetime, count: int = 1) -> None:
        self.orders_count += count
        self.revenue = (self.revenue + total).quantize(CENT)
        if count > 0 and (self.last_order_at is None or placed_at > self.last_order_at):
            self.last_order_at = placed_at
        self.dirty = True

    def absorb(self, other: ProfileState) -> None:
        """Fold another profile's traits and aggregates into this one (this one's values win)."""
        self.traits = {**other.traits, **self.traits}
        self.email = self.email or other.email
        self.phone = self.phone or other.phone
        self.first_seen_at = _min(self.first_seen_at, other.first_seen_at)
        self.last_seen_at = _max(self.last_seen_at, other.last_seen_at)
        self.last_order_at = _max(self.last_order_at, other.last_order_at)
        self.events_count += other.events_count
        self.orders_count += other.orders_count
        self.revenue = (self.revenue + other.revenue).quantize(CENT)
        for kind, values in other.unique.items():
            self.unique.setdefault(kind, set()).update(values)
        self.dirty = True

    def aggregates(self) -> dict[str, Any]:
        return {
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "events_count": self.events_count,
            "orders_count": self.orders_count,
            "revenue": self.revenue,
            "last_order_at": self.last_order_at,
        }

    def as_row(self, now: datetime) -> dict[str, Any]:
        row = {
            "id": self.id,
            "traits": self.traits,
            "email": self.email,
            "phone": self.phone,
            "merged_into": self.merged_into,
            "updated_at": now,
            **self.aggregates(),
        }
        if self.new:
            row.update(workspace_id=self.workspace_id, created_at=self.created_at, erased_at=None)
        return row


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
