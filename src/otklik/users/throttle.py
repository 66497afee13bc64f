"""Slows password guessing: too many failed sign-ins for one address or from one client."""

from __future__ import annotations

import threading
import time
from collections import deque

from otklik.kit.errors import TooManyRequests


class LoginThrottle:
    """At most `limit` failures per key in `window` seconds; in memory, per process.

    Keys are strings such as "email:ann@example.com" or "ip:10.0.0.1"; a limit per key
    prefix (`limits`) lets one office behind one address fail more often than one account.

    Per process is enough to make guessing slow; a shared store would be needed to make it
    exact across many API processes.
    """

    def __init__(
        self, limit: int = 10, window: float = 900.0, limits: dict[str, int] | None = None
    ) -> None:
        self.limit = limit
        self.limits = limits or {}
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= self.limits.get(key.partition(":")[0], self.limit):
                    retry = int(recent[0] + self.window - now) + 1
                    raise TooManyRequests(
                        "Too many failed sign-ins; wait and try again",
                        code="too_many_attempts",
                        retry_after=retry,
                    )

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent
