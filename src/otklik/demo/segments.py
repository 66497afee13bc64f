"""The demo shop's segments: the ones a marketer builds first, built and kept current."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine

from otklik.config import Settings
from otklik.kit.db import write_tx
from otklik.kit.errors import AppError
from otklik.kit.time import utc_now
from otklik.segments import repository as repo
from otklik.segments import service
from otklik.segments.build import Progress
from otklik.worker.segment_loop import SegmentLoop

ORDERED = {"kind": "attribute", "field": "orders_count", "op": "gte", "value": 1}
SEGMENTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Active browsers",
        "Viewed at least 3 products in the last 30 days",
        {"kind": "event", "name": "Product Viewed", "within_days": 30, "op": "gte", "value": 3},
    ),
    (
        "Abandoned cart",
        "Added to cart in the last 7 days and did not order within 24 hours",
        {
            "kind": "sequence",
            "first": {"name": "Product Added"},
            "then_not": {"name": "Order Completed"},
            "within_hours": 24,
            "in_last_days": 7,
        },
    ),
    (
        "Moscow",
        "Customers whose city is Moscow, however they spelled it",
        {
            "kind": "trait",
            "field": "city",
            "op": "in",
            "value": ["Москва", "г. Москва", "Moscow"],
        },
    ),
    (
        "Birthday this week",
        "Birthday today or in the next 7 days",
        {"kind": "trait", "field": "birthday", "op": "anniversary_within", "value": 7},
    ),
    (
        "Lapsed buyers",
        "Ordered before, but not in the last 90 days",
        {
            "kind": "all",
            "rules": [
                ORDERED,
                {
                    "kind": "event",
                    "name": "Order Completed",
                    "within_days": 90,
                    "op": "eq",
                    "value": 0,
                },
            ],
        },
    ),
    (
        "Big spenders",
        "Spent 20,000 or more in the last year",
        {
            "kind": "event",
            "name": "Order Completed",
            "within_days": 365,
            "measure": "sum",
            "property": "total",
            "op": "gte",
            "value": 20000,
        },
    ),
    (
        "Reachable by email",
        "Has an email address, agreed to marketing email and is not suppressed",
        {"kind": "reachable", "channel": "email"},
    ),
    (
        "Champions and loyal",
        "Best customers by RFM",
        {"kind": "rfm", "classes": ["champions", "loyal"]},
    ),
    (
        "Leaving",
        "Longer since the last order than the customer's own usual gap",
        {"kind": "leaving"},
    ),
]


def load_segments(
    engine: Engine, settings: Settings, workspace_id: uuid.UUID, progress: Progress | None = None
) -> tuple[int, list[str]]:
    """Save the demo segments (skipping names already there) and build them."""
    skipped: list[str] = []
    made = 0
    for name, description, rules in SEGMENTS:
        try:
            with write_tx(engine) as conn:
                if repo.segment_by_name(conn, workspace_id, name) is not None:
                    continue
                service.create(
                    conn,
                    workspace_id,
                    name=name,
                    description=description,
                    kind="dynamic",
                    rules=rules,
                    now=utc_now(),
                )
                made += 1
        except AppError as exc:  # a tiny demo may lack an event or trait a rule names
            skipped.append(f"{name}: {exc.message}")
    loop = SegmentLoop(engine, settings)
    loop.build_waiting(progress)
    loop.drain(timeout=600)
    return made, skipped
