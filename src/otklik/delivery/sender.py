"""Hands rendered messages to adapters on one event loop, one gate per provider.

Every configured provider gets its own token bucket (its rate per second), its own limit
on messages in flight, and a circuit breaker: after BREAK_AFTER faults in a row it pauses
for PAUSE seconds and answers RetryLater at once, so a provider that hangs or fails costs
the others nothing: their sends never queue behind it. Adapters (and their pooled
connections) live as long as their config row is unchanged.

Rates are per process: with several worker processes, give each provider's config the
share it should use (a rate shared across machines would need the queue's store; planned).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from otklik.channels.base import (
    Adapter,
    OutboundMessage,
    Receipt,
    RetryLater,
    SendResult,
    Sent,
)

log = logging.getLogger(__name__)

BREAK_AFTER = 5
PAUSE = 30.0
MAX_IN_FLIGHT = 64


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass
class Gate:
    adapter: Adapter[Any]
    bucket: TokenBucket
    in_flight: asyncio.Semaphore
    faults_in_row: int = 0
    paused_until: float = 0.0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    last_error: str = field(default="")

    def record(self, result: SendResult) -> None:
        """Count a provider's answer; sends refused during a pause never get here."""
        if isinstance(result, RetryLater):
            self.retried += 1
            self.faults_in_row += 1
            self.last_error = f"{result.code}: {result.reason}"
            if self.faults_in_row >= BREAK_AFTER:
                self.paused_until = time.monotonic() + PAUSE
                log.warning(
                    "pausing %s for %.0f s after %d faults in a row (%s)",
                    self.adapter.provider,
                    PAUSE,
                    self.faults_in_row,
                    self.last_error,
                )
                self.faults_in_row = 0
            return
        self.faults_in_row = 0
        if isinstance(result, Sent):
            self.sent += 1
        else:
            self.failed += 1


class Sender:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._gates: dict[Hashable, Gate] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="otklik-sender", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._thread is None:
                return
            closing = [g.adapter for g in self._gates.values()]
            self._gates.clear()
            future = asyncio.run_coroutine_threadsafe(_close_all(closing), self._loop)
            try:
                future.result(timeout=10)
            except Exception:  # closing is best effort; the process is going away
                log.exception("closing channel adapters")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def adapter(self, key: Hashable, build: Callable[[], Adapter[Any]]) -> Adapter[Any]:
        """The live adapter for a config version; `key` changes when the config does."""
        with self._lock:
            gate = self._gates.get(key)
            if gate is None:
                adapter = build()
                gate = self._new_gate(adapter)
                self._gates[key] = gate
            return gate.adapter

    def _new_gate(self, adapter: Adapter[Any]) -> Gate:
        async def make() -> Gate:
            return Gate(
                adapter, TokenBucket(adapter.rate_per_second), asyncio.Semaphore(MAX_IN_FLIGHT)
            )

        if self._thread is None:
            self.start()
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)

    def forget(self, prefix_match: Callable[[Hashable], bool]) -> None:
        """Drop adapters whose key matches (a config changed or was deleted) and close them."""
        with self._lock:
            gone = [k for k in self._gates if prefix_match(k)]
            adapters = [self._gates.pop(k).adapter for k in gone]
        if adapters and self._thread is not None:
            asyncio.run_coroutine_threadsafe(_close_all(adapters), self._loop)

    def paused(self, key: Hashable) -> float:
        """Seconds left in a provider's pause (0 when it is sending)."""
        gate = self._gates.get(key)
        return max(0.0, gate.paused_until - time.monotonic()) if gate else 0.0

    def send_all(
        self, items: Sequence[tuple[Hashable, OutboundMessage]], *, timeout: float = 600.0
    ) -> list[SendResult]:
        """Send concurrently; results in the order given. Blocks the calling worker thread."""
        if not items:
            return []
        future: Future[list[SendResult]] = asyncio.run_coroutine_threadsafe(
            self._send_all(items), self._loop
        )
        return future.result(timeout=timeout)

    async def _send_all(
        self, items: Sequence[tuple[Hashable, OutboundMessage]]
    ) -> list[SendResult]:
        return list(await asyncio.gather(*(self._send_one(k, m) for k, m in items)))

    async def _send_one(self, key: Hashable, message: OutboundMessage) -> SendResult:
        gate = self._gates[key]
        left = gate.paused_until - time.monotonic()
        if left > 0:
            return RetryLater("provider_paused", f"paused after faults: {gate.last_error}", left)
        await gate.bucket.take()
        async with gate.in_flight:
            try:
                # asyncio.timeout, not wait_for: no extra task per message (3.11's wait_for
                # wraps the coroutine in one), which was 10 % of the sending thread's CPU.
                async with asyncio.timeout(gate.adapter.config.timeout_seconds * 2 + 5):
                    result = await gate.adapter.send(message)
            except TimeoutError:
                result = RetryLater("timeout", "the provider did not answer in time")
            except Exception as exc:  # an adapter bug must not lose the message
                log.exception("adapter %s raised", gate.adapter.provider)
                result = RetryLater("adapter_error", f"{type(exc).__name__}: {exc}"[:500])
        gate.record(result)
        return result

    def pushed_receipts(self) -> list[tuple[Hashable, Receipt]]:
        """Receipts that arrived on open provider connections (SMPP deliver_sm), per key."""
        out: list[tuple[Hashable, Receipt]] = []
        with self._lock:
            gates = list(self._gates.items())
        for key, gate in gates:
            drain = getattr(gate.adapter, "drain_receipts", None)
            if drain is not None:
                out.extend((key, receipt) for receipt in drain())
        return out

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "key": str(k),
                "provider": g.adapter.provider,
                "sent": g.sent,
                "failed": g.failed,
                "retried": g.retried,
                "paused_for": max(0.0, g.paused_until - time.monotonic()),
            }
            for k, g in self._gates.items()
        ]


async def _close_all(adapters: Sequence[Adapter[Any]]) -> None:
    for adapter in adapters:
        try:
            await adapter.aclose()
        except Exception:
            log.exception("closing %s", adapter.provider)
