"""Events Otklik itself records on a known profile (deliveries, opens, consent changes).

They skip the resolver: the profile is known, so they are stored already placed. Their
message ids are derived from what they record, so writing one twice stores it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table

from otklik.kit.rawsql import insert_ignore
from otklik.kit.time import iso
from otklik.models import Event
from otklik.models.event import PROCESSED

EVENT = cast(Table, Event.__table__)


@dataclass(frozen=True)
class OwnEvent:
    workspace_id: uuid.UUID
    profile_id: uuid.UUID
    message_id: str
    name: str
    properties: dict[str, Any]
    timestamp: datetime


def append_own_events(conn: Connection, events: Sequence[OwnEvent]) -> int:
    if not events:
        return 0
    rows = [
        {
            "workspace_id": e.workspace_id,
            "message_id": e.message_id,
            "type": "track",
            "name": e.name,
            "timestamp": e.timestamp,
            "received_at": e.timestamp,
            "payload": {
                "type": "track",
                "event": e.name,
                "properties": e.properties,
                "messageId": e.message_id,
                "timestamp": iso(e.timestamp),
                "context": {"library": {"name": "otklik"}},
            },
            "profile_id": e.profile_id,
            "status": PROCESSED,
            "needs_payload": False,
        }
        for e in events
    ]
    result = conn.execute(insert_ignore(conn, EVENT), rows)
    return max(int(result.rowcount or 0), 0)
