"""What a workspace's data holds, for validating rules and offering choices in the builder.

Traits are schemaless JSON, so a trait's type is read from the values people have: a rule
that names a trait nobody has is refused (a typo would otherwise match no one, silently).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Connection

from otklik.segments import repository as repo

ISO_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ].*)?$")


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str) and ISO_DATE.match(value):
        return "date"
    return "string"


def dominant_type(values: list[Any]) -> str | None:
    """The type most values have; mixed numbers and numeric strings count as numbers."""
    if not values:
        return None
    counts: dict[str, int] = {}
    for value in values:
        kind = value_type(value)
        counts[kind] = counts.get(kind, 0) + 1
    return max(counts, key=lambda k: (counts[k], k == "string"))


class Catalog:
    """Lazy, per-request answers about one workspace (each lookup is one indexed query)."""

    def __init__(self, conn: Connection, workspace_id: uuid.UUID) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self._traits: dict[str, str | None] = {}
        self._events: dict[str, bool] = {}
        self._identifier_types: set[str] | None = None

    def trait_type(self, name: str) -> str | None:
        if name not in self._traits:
            values = repo.trait_values(self.conn, self.workspace_id, name)
            self._traits[name] = dominant_type(values)
        return self._traits[name]

    def has_event(self, name: str) -> bool:
        if name not in self._events:
            self._events[name] = repo.event_seen(self.conn, self.workspace_id, name)
        return self._events[name]

    def has_property(self, event: str, prop: str) -> bool:
        return repo.property_seen(self.conn, self.workspace_id, event, prop.split("."))

    def identifier_types(self) -> set[str]:
        if self._identifier_types is None:
            self._identifier_types = set(repo.identity_types(self.conn, self.workspace_id))
        return self._identifier_types


def traits(conn: Connection, workspace_id: uuid.UUID, sample: int = 5000) -> dict[str, str]:
    """Trait names and types seen on a sample of the newest profiles, for the builder."""
    seen: dict[str, list[Any]] = {}
    for row in repo.recent_traits(conn, workspace_id, sample):
        for key, value in (row or {}).items():
            if isinstance(key, str) and not key.startswith("$") and value is not None:
                bucket = seen.setdefault(key, [])
                if len(bucket) < 50:
                    bucket.append(value)
    return {key: dominant_type(values) or "string" for key, values in sorted(seen.items())}
