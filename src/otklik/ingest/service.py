"""Accepting tracking calls: authenticate, decode, validate, store durably, report."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from otklik.config import Settings
from otklik.ingest import wire
from otklik.ingest.writer import EventWriter, Overloaded
from otklik.kit.errors import (
    BadRequest,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from otklik.kit.time import utc_now
from otklik.workspaces.auth import Authenticator, credentials_from_header

MAX_REJECTED_PAYLOAD = 4096


@dataclass
class Backlog:
    """Events stored but not yet resolved into profiles; refreshed from the store now and then.

    Commits only ever add to the count; while it is over the limit, `IngestService` re-reads
    it from the store (at most every `REFRESH_SECONDS`), so ingest resumes once resolved.
    """

    pending: int = 0
    refreshed_at: float = 0.0

    def add(self, count: int) -> None:
        self.pending += count


REFRESH_SECONDS = 1.0
# How long after a tracking call the API still counts as taking them (see `active`).
ACTIVE_SECONDS = 1.0


@dataclass(frozen=True)
class Call:
    route: str
    body: bytes
    content_encoding: str | None
    authorization: str | None
    client_ip: str | None


class IngestService:
    def __init__(
        self, settings: Settings, auth: Authenticator, writer: EventWriter, backlog: Backlog
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.writer = writer
        self.backlog = backlog
        self._last_call = -ACTIVE_SECONDS  # monotonic time of the latest tracking call

    def active(self) -> bool:
        """Whether a tracking call arrived in the last ACTIVE_SECONDS."""
        return time.monotonic() - self._last_call < ACTIVE_SECONDS

    def check_route(self, route: str) -> None:
        if route not in wire.ROUTE_TYPES and route not in wire.BATCH_ROUTES:
            raise NotFound(f"No tracking endpoint /v1/{route}", code="unknown_endpoint")

    async def accept(self, call: Call) -> dict[str, Any]:
        self._last_call = time.monotonic()
        self.check_route(call.route)
        if await self._backlog_full():
            raise TooManyRequests("Too many events waiting to be processed", retry_after=5)
        received_at = utc_now()
        data = wire.inflate(call.body, call.content_encoding, self.settings.ingest_max_batch_bytes)
        body = wire.loads(data)
        parsed = wire.parse_request(
            call.route,
            body,
            received_at=received_at,
            client_ip=call.client_ip,
            max_event_bytes=self.settings.ingest_max_event_bytes,
            max_batch_events=self.settings.ingest_max_batch_events,
            body_bytes=len(data),
        )
        workspace_id = self.write_key_owner(call.authorization, parsed.write_key)
        if call.route not in wire.BATCH_ROUTES and parsed.rejected:
            err = parsed.rejected[0]
            self._record_only(workspace_id, parsed, received_at)
            raise BadRequest(err.message, code=err.code)
        rejected = [_rejected_row(workspace_id, r, received_at) for r in parsed.rejected]
        try:
            await self.writer.write_accepted(workspace_id, received_at, parsed.accepted, rejected)
        except Overloaded as exc:
            raise TooManyRequests("The server is busy; retry shortly", retry_after=1) from exc
        except Exception as exc:  # the store failed: nothing was committed, the SDK retries
            raise ServiceUnavailable(
                "The events could not be stored; retry shortly", code="store_unavailable"
            ) from exc
        out: dict[str, Any] = {"success": True, "accepted": len(parsed.accepted)}
        if parsed.rejected:
            out["rejected"] = [
                {"index": r.index, "code": r.code, "message": r.message} for r in parsed.rejected
            ]
        return out

    async def _backlog_full(self) -> bool:
        # Journalled rows count too: they are accepted but not yet in the event table.
        limit = self.settings.ingest_max_backlog - self.writer.journalled
        if self.backlog.pending <= limit:
            return False
        now = time.monotonic()
        if now - self.backlog.refreshed_at >= REFRESH_SECONDS:
            self.backlog.refreshed_at = now
            self.backlog.pending = await asyncio.to_thread(self.writer.count_pending)
        return self.backlog.pending > limit

    def write_key_owner(self, authorization: str | None, body_key: str | None) -> uuid.UUID:
        """The workspace of a write key sent as Basic auth or in the body."""
        creds = credentials_from_header(authorization)
        # Bearer carries an OAuth token; then the write key travels in the body.
        token = (creds[1] if creds and creds[0] == "basic" else None) or body_key
        if not token:
            raise Unauthorized(
                "Send the write key as Basic auth or as writeKey in the body",
                code="missing_write_key",
            )
        owner = self.auth.owner_of(token)
        if owner is None:
            raise Unauthorized("Unknown or revoked write key", code="invalid_write_key")
        return owner.workspace_id

    def _record_only(self, workspace_id: uuid.UUID, parsed: wire.Parsed, when: Any) -> None:
        rows = [_rejected_row(workspace_id, r, when) for r in parsed.rejected]
        # The debugger record is best-effort; the caller still gets the error.
        with contextlib.suppress(Overloaded):
            self.writer.enqueue_nowait([], rows)


def _rejected_row(workspace_id: uuid.UUID, item: wire.Rejected, received_at: Any) -> dict[str, Any]:
    try:
        raw = orjson.dumps(item.raw, default=str).decode()
    except orjson.JSONEncodeError:  # nested too deep to serialise: keep what we can say
        raw = orjson.dumps(f"<{type(item.raw).__name__} nested too deeply to record>").decode()
    return {
        "workspace_id": workspace_id,
        "received_at": received_at,
        "code": item.code,
        "message": item.message,
        "payload": raw[:MAX_REJECTED_PAYLOAD],
    }
