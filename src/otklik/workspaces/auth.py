"""Who is calling: a key from the Authorization header (or an SDK's body), to a workspace."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from otklik.kit.db import read_tx
from otklik.kit.errors import Forbidden, Unauthorized
from otklik.workspaces import repository
from otklik.workspaces.keys import SECRET, KeyCache, KeyOwner, hash_token


class Authenticator:
    def __init__(self, engine: Engine, cache: KeyCache | None = None) -> None:
        self._engine = engine
        self.cache = cache or KeyCache()

    def owner_of(self, token: str) -> KeyOwner | None:
        digest = hash_token(token)
        hit, owner = self.cache.get(digest)
        if hit:
            return owner
        with read_tx(self._engine) as conn:
            owner = repository.find_active_key(conn, digest)
        self.cache.put(digest, owner)
        return owner

    def forget_after_commit(self, session: Session) -> None:
        """After a key is revoked: drop cached lookups once the revoke is committed.

        Not before, or a lookup in between would cache the live key again. Other processes
        forget it when their cache entry expires (keys.py).
        """
        event.listen(session, "after_commit", lambda _session: self.cache.clear(), once=True)


def credentials_from_header(header: str | None) -> tuple[str, str] | None:
    """('basic'|'bearer', token) from an Authorization header, or None when absent."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized(
                "The Basic credentials are not valid base64", code="invalid_authorization"
            ) from exc
        # Segment asks for "writeKey:" but keys without the colon must work too.
        return "basic", decoded.partition(":")[0]
    if scheme == "bearer":
        return "bearer", value
    raise Unauthorized(
        "Use Basic (write key) or Bearer (secret key) authorization", code="invalid_authorization"
    )


def require_secret_key(request: Request) -> uuid.UUID:
    """FastAPI dependency for the REST API: a live secret key, answered with its workspace."""
    creds = credentials_from_header(request.headers.get("authorization"))
    if creds is None:
        raise Unauthorized("Send 'Authorization: Bearer <secret key>'", code="missing_api_key")
    auth: Authenticator = request.app.state.authenticator
    owner = auth.owner_of(creds[1])
    if owner is None:
        raise Unauthorized("Unknown or revoked API key", code="invalid_api_key")
    if owner.kind != SECRET:
        raise Forbidden(
            "A write key can only send events; the REST API needs a secret key",
            code="secret_key_required",
        )
    return owner.workspace_id


# The calling workspace, from a live secret key. Put it first among an endpoint's parameters:
# dependencies resolve in order, and nothing (no session, no lock) should precede auth.
WorkspaceId = Annotated[uuid.UUID, Depends(require_secret_key)]
