"""Seeded demo shop: Segment HTTP Tracking API messages for every person, in one ordered stream.

`generate_events(cfg)` yields dicts exactly as an SDK puts them in a `/v1/batch` `batch` array.
Each person gets a history over `cfg.days`: anonymous visits (pages or app screens, product
views, carts, some abandoned), a sign-up `identify` carrying the visitor's current anonymousId
(so the anonymous past can be merged), orders per the Segment e-commerce spec at a rhythm set by
the person's `buyer_type`, and later visits from other devices that log in with a new `identify`.
People in `anonymous_only_share` never identify; a tenth of them still buy as guests.

Same cfg → byte-identical output: every random choice comes from a `random.Random` seeded from
`cfg.seed`, and no wall clock is read.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from otklik.demo.catalog import Product, generate_catalog
from otklik.demo.offline import customers_csv_rows, orders_csv_rows
from otklik.demo.people import Person, generate_people, to_ms
from otklik.demo.shop import Message, Shop
from otklik.demo.visits import Visitor

__all__ = [
    "DemoConfig",
    "Message",
    "Person",
    "Product",
    "customers_csv_rows",
    "generate_catalog",
    "generate_events",
    "generate_people",
    "orders_csv_rows",
]


@dataclass(frozen=True)
class DemoConfig:
    """How big a shop to make; `start` must be timezone-aware, histories end `days` later."""

    customers: int = 1000
    seed: int = 42
    start: datetime = datetime(2026, 5, 1, tzinfo=UTC)
    days: int = 180
    products: int = 200
    anonymous_only_share: float = 0.3  # visitors who never identify

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("DemoConfig.start must be timezone-aware")
        if self.customers < 0 or self.days < 1 or self.products < 1:
            raise ValueError("DemoConfig needs customers >= 0, days >= 1 and products >= 1")
        if not 0.0 <= self.anonymous_only_share <= 1.0:
            raise ValueError("DemoConfig.anonymous_only_share must be within [0, 1]")


def generate_events(cfg: DemoConfig) -> Iterator[Message]:
    """Every person's messages, merged into one stream in non-decreasing timestamp order.

    Memory is O(people), not O(events): each person is a paused generator that has announced
    only the moment of its next message and builds it when it is due (see `visits`), so a heap
    of (moment, person) keys stands in for heapq.merge, which would hold a built message each.
    Ties go to the lower person index, so the order is total and reproducible.
    """
    shop = Shop(cfg, generate_catalog(cfg))
    histories = [Visitor(shop, p, i).history() for i, p in enumerate(generate_people(cfg))]
    # One int per person, (moment since start) << bits | person: compares faster than tuples.
    bits = max(1, len(histories)).bit_length()
    mask = (1 << bits) - 1
    origin = to_ms(cfg.start)
    heap: list[int] = []
    for i, history in enumerate(histories):
        first = next(history, None)
        if first is not None:
            heap.append((first - origin) << bits | i)
    heapq.heapify(heap)
    replace, pop = heapq.heapreplace, heapq.heappop  # locals: this loop runs per message
    while heap:
        i = heap[0] & mask
        due = next(histories[i], None)  # builds the message announced at heap[0]
        message = shop.out
        if due is None:
            pop(heap)
        else:
            replace(heap, (due - origin) << bits | i)
        yield message
