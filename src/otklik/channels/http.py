"""HTTP plumbing the HTTP-based adapters share: Retry-After, transport faults, pooling."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

from otklik.channels.base import Failed, RetryLater, SendResult
from otklik.kit.time import utc_now


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    None for a missing or unreadable value; a date without a zone is taken as UTC.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - utc_now()).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def transport_failure(exc: httpx.TransportError) -> SendResult:
    if isinstance(exc, httpx.TimeoutException):
        return RetryLater("timeout", f"no answer in time: {type(exc).__name__}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Failed("invalid_endpoint", str(exc))
    return RetryLater("connection_error", f"{type(exc).__name__}: {exc}")


class LoopClient:
    """One pooled httpx.AsyncClient (and one lock) per event loop.

    httpx's pooled connections belong to the loop that opened them, so a caller that runs the
    adapter from a fresh loop (tests, `asyncio.run` per job) gets a fresh pool instead of
    sockets bound to a closed loop.
    """

    def __init__(self, factory: Callable[[], httpx.AsyncClient]) -> None:
        self._factory = factory
        self._client: httpx.AsyncClient | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = self._factory()
            self._lock = asyncio.Lock()
            self._loop = loop

    def get(self) -> httpx.AsyncClient:
        self._refresh()
        assert self._client is not None
        return self._client

    @property
    def lock(self) -> asyncio.Lock:
        self._refresh()
        assert self._lock is not None
        return self._lock

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
