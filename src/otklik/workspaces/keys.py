"""API key tokens: generated once, shown once, stored only as a SHA-256 hash.

SHA-256 (not a slow password hash) is right here: keys are 192 random bits, so there is
nothing to brute-force, and every ingest request must check one in microseconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass

WRITE = "write"
SECRET = "secret"
KINDS = (WRITE, SECRET)
PREFIXES = {WRITE: "wk", SECRET: "sk"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:10]


@dataclass(frozen=True)
class KeyOwner:
    workspace_id: uuid.UUID
    kind: str
    key_id: uuid.UUID


class KeyCache:
    """Remembers recent key lookups so ingest does not query the store on every request.

    A revoked key stops working within `ttl` seconds in every process.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, KeyOwner | None]] = {}

    def get(self, token_hash: str) -> tuple[bool, KeyOwner | None]:
        with self._lock:
            entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, token_hash: str, owner: KeyOwner | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (time.monotonic() + self._ttl, owner)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
