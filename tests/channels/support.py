"""What the adapter specifications share: sending a few messages through one adapter."""

from __future__ import annotations

import asyncio
from typing import Any

from otklik.channels.base import Adapter, OutboundMessage, SendResult


def send_all(adapter: Adapter[Any], *messages: OutboundMessage) -> list[SendResult]:
    """Send in order on a fresh event loop, then close the adapter's connections."""

    async def run() -> list[SendResult]:
        try:
            return [await adapter.send(m) for m in messages]
        finally:
            await adapter.aclose()

    return asyncio.run(run())
