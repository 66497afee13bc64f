"""Background work of delivery, registered on a huey instance by name."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from huey import Huey

from otklik.delivery.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tasks:
    """Enqueue functions: call them only after the transaction that made the rows commits."""

    deliver: Callable[[Sequence[uuid.UUID]], Any]


def register(huey: Huey, pipeline: Pipeline) -> Tasks:
    @huey.task(name="otklik.deliver", retries=3, retry_delay=5)
    def deliver(ids: list[str]) -> dict[str, int]:
        outcome = pipeline.process([uuid.UUID(i) for i in ids])
        return vars(outcome)

    def enqueue(ids: Sequence[uuid.UUID]) -> Any:
        return deliver([str(i) for i in ids])

    return Tasks(deliver=enqueue)
