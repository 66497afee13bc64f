"""Short signed tokens for links in messages (tracking, unsubscribe, preferences, binding).

A token is base64url(payload ‖ tag) where tag is keyed BLAKE2b(key(purpose), payload) cut to
TAG bytes: a MAC in one C call (BLAKE2's keyed mode needs no HMAC construction), which
matters when every link of every email in a campaign is signed (about 1 µs against 8 µs for
HMAC-SHA256 through Python's hmac module).
The key is derived per purpose from the secret key, so a click token can never be replayed
as an unsubscribe token. Tokens carry no expiry by default: links in an email must keep
working for years; purposes that need one put an issue time in the payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

# 12 bytes = 96 bits: forging one needs ~2^95 tries against a rate-limited endpoint.
TAG = 12


class BadToken(ValueError):
    pass


class Signer:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._keys: dict[str, bytes] = {}

    def _key(self, purpose: str) -> bytes:
        key = self._keys.get(purpose)
        if key is None:
            key = hmac.new(self._secret, b"otklik-signing:" + purpose.encode(), "sha256").digest()
            # 32 bytes: BLAKE2b accepts keys up to 64.
            self._keys[purpose] = key
        return key

    def _tag(self, purpose: str, payload: bytes) -> bytes:
        return hashlib.blake2b(payload, key=self._key(purpose), digest_size=TAG).digest()

    def sign(self, purpose: str, payload: bytes) -> str:
        tag = self._tag(purpose, payload)
        return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()

    def unsign(self, purpose: str, token: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise BadToken("the link is malformed") from exc
        if len(raw) <= TAG:
            raise BadToken("the link is malformed")
        payload, tag = raw[:-TAG], raw[-TAG:]
        expected = self._tag(purpose, payload)
        if not hmac.compare_digest(tag, expected):
            raise BadToken("the link has been altered or belongs to another installation")
        return payload
