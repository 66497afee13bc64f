"""The Segment HTTP Tracking API wire format: decode, validate and normalise messages.

Written by hand rather than with pydantic models: this runs for every event on the hot
path, must keep unknown fields exactly as sent, and must say per item what was wrong.
"""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from otklik.kit.errors import BadRequest
from otklik.kit.time import iso, parse_iso

TYPES = ("identify", "track", "page", "screen", "group", "alias")
_OBJECT_KEYS = ("properties", "traits", "context", "integrations")
_fromisoformat = datetime.fromisoformat
ROUTE_TYPES = {
    "identify": "identify",
    "i": "identify",
    "track": "track",
    "t": "track",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}
BATCH_ROUTES = ("batch", "b", "import")
MAX_MESSAGE_ID = 128
MAX_ID = 256
MAX_NAME = 200
# orjson (which stores payloads) serialises at most 254 levels; the body adds two.
MAX_DEPTH = 250
# How much smaller than the event as sent its stored form may be: normalising only drops an
# item's own writeKey and rewrites timestamps. (An item inflated by a huge writeKey of its own
# is judged by what is stored, which is what the limit protects.)
SIZE_SLACK = 1024


class ItemError(Exception):
    """One message in a batch is invalid; the rest of the batch is still accepted."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Accepted:
    message_id: str
    type: str
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    payload: dict[str, Any]
    # The payload as stored, serialised once here (it also proves the payload can be stored).
    encoded: bytes = b""
    # `timestamp` as the payload carries it (kit.time.iso form), so it is formatted only once.
    timestamp_iso: str = ""

    def row(self, workspace_id: uuid.UUID, received_at: datetime) -> dict[str, Any]:
        """This event as a row for the log (see ingest.repository.append_events)."""
        return {
            "workspace_id": workspace_id,
            "message_id": self.message_id,
            "type": self.type,
            "name": self.name,
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "timestamp": self.timestamp,
            "received_at": received_at,
            "payload": self.payload,
            "payload_json": self.encoded,
            "timestamp_iso": self.timestamp_iso,
        }


@dataclass
class Rejected:
    index: int
    code: str
    message: str
    raw: Any


@dataclass
class Parsed:
    write_key: str | None
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def inflate(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before any Content-Encoding, at most `limit` bytes of it."""
    if encoding and encoding.strip().lower() in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise BadRequest("The body is not valid gzip", code="invalid_gzip") from exc
        if len(raw) > limit or inflater.unconsumed_tail:
            raise BadRequest(
                f"The decompressed body exceeds {limit} bytes", code="payload_too_large"
            )
        if not inflater.eof:  # cut short: never act on part of a body
            raise BadRequest("The gzip body is truncated", code="invalid_gzip")
    elif encoding and encoding.strip().lower() not in ("identity", ""):
        raise BadRequest(f"Unsupported Content-Encoding {encoding!r}", code="unsupported_encoding")
    if len(raw) > limit:
        raise BadRequest(f"The body exceeds {limit} bytes", code="payload_too_large")
    return raw


# A JSON "\u0000" escape (preceded by an even run of backslashes, so not an escaped "\\").
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def loads(data: bytes) -> Any:
    """Parse JSON; NUL characters become U+FFFD (PostgreSQL can store neither in text nor JSON)."""
    if b"\\u0000" in data:
        data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="invalid_json") from exc


def parse_request(
    route: str,
    body: Any,
    *,
    received_at: datetime,
    client_ip: str | None,
    max_event_bytes: int,
    max_batch_events: int,
    body_bytes: int,
) -> Parsed:
    """Validate and normalise one request's events.

    `body_bytes` is the size of the decoded (inflated) body.
    """
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="invalid_body")
    write_key = body.get("writeKey")
    if write_key is not None and not isinstance(write_key, str):
        raise BadRequest("writeKey must be a string", code="invalid_write_key")
    parsed = Parsed(write_key=write_key)
    if route in BATCH_ROUTES:
        items = body.get("batch")
        if not isinstance(items, list):
            raise BadRequest("A batch needs a 'batch' array", code="invalid_batch")
        if len(items) > max_batch_events:
            raise BadRequest(
                f"A batch holds at most {max_batch_events} events, got {len(items)}",
                code="too_many_events",
            )
        shared_context = _object_or_empty(body.get("context"))
        shared_integrations = _object_or_empty(body.get("integrations"))
        sent_at = body.get("sentAt")
        forced_type = None
    else:
        if body_bytes > max_event_bytes:
            raise BadRequest(
                f"An event may be at most {max_event_bytes} bytes", code="event_too_large"
            )
        items = [body]
        shared_context, shared_integrations, sent_at = {}, {}, None
        forced_type = ROUTE_TYPES[route]
    received_iso = _iso(received_at)
    for index, item in enumerate(items):
        try:
            accepted = normalise(
                item,
                forced_type=forced_type,
                shared_context=shared_context,
                shared_integrations=shared_integrations,
                batch_sent_at=sent_at,
                received_at=received_at,
                client_ip=client_ip,
                received_iso=received_iso,
            )
            # The limit is on the event as sent. Its stored form is serialised anyway and is
            # never much smaller, so only events near the limit are encoded a second time.
            near = len(accepted.encoded) > max_event_bytes - SIZE_SLACK
            if near and len(_encode(item)) > max_event_bytes:
                raise ItemError(
                    "event_too_large", f"An event may be at most {max_event_bytes} bytes"
                )
            parsed.accepted.append(accepted)
        except ItemError as err:
            parsed.rejected.append(Rejected(index, err.code, err.message, item))
    return parsed


def _encode(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ItemError("too_deep", f"An event may nest at most {MAX_DEPTH} levels") from exc


def _object_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if type(value) is str:  # the common case, checked first
        text = value.strip()
    elif value is None:
        return None
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ItemError("invalid_field", f"{key} must be a string")
    else:
        text = str(value).strip()
    if len(text) > MAX_ID:
        raise ItemError("invalid_field", f"{key} is longer than {MAX_ID} characters")
    return text or None


def _time(value: Any, key: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemError("invalid_timestamp", f"{key} must be an ISO-8601 string")
    # What SDKs send ("...Z" or "+00:00") parses directly; anything else takes parse_iso's
    # longer way (whitespace, naive values, other offsets), which gives the same result.
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is UTC:
        return parsed
    try:
        return parse_iso(value)
    except (ValueError, OverflowError) as exc:
        raise ItemError("invalid_timestamp", f"{key} is not an ISO-8601 timestamp") from exc


def _iso(value: datetime) -> str:
    """kit.time.iso, without its conversions for the UTC values this module makes."""
    if value.tzinfo is UTC:
        return value.isoformat()[:-6] + "Z"
    return iso(value)  # type: ignore[return-value]


def normalise(
    item: Any,
    *,
    forced_type: str | None,
    shared_context: dict[str, Any],
    shared_integrations: dict[str, Any],
    batch_sent_at: Any,
    received_at: datetime,
    client_ip: str | None,
    received_iso: str | None = None,
) -> Accepted:
    if not isinstance(item, dict):
        raise ItemError("invalid_event", "Each event must be a JSON object")
    msg = dict(item)
    msg.pop("writeKey", None)
    kind = forced_type or msg.get("type")
    if kind not in TYPES:
        raise ItemError("invalid_type", f"type must be one of {', '.join(TYPES)}")
    msg["type"] = kind

    for key in _OBJECT_KEYS:
        value = msg.get(key)
        if value is not None and type(value) is not dict and not isinstance(value, dict):
            raise ItemError("invalid_field", f"{key} must be an object")

    user_id = _id(msg, "userId")
    anonymous_id = _id(msg, "anonymousId")
    if kind == "alias":
        previous_id = _id(msg, "previousId")
        if previous_id is None or user_id is None:
            raise ItemError("missing_identity", "alias needs previousId and userId")
        msg["previousId"] = previous_id
    elif user_id is None and anonymous_id is None:
        raise ItemError("missing_identity", "Every call needs a userId or an anonymousId")
    msg["userId"], msg["anonymousId"] = user_id, anonymous_id

    name: str | None = None
    if kind == "track":
        event = msg.get("event")
        if not isinstance(event, str) or not event.strip():
            raise ItemError("missing_event", "track needs an 'event' name")
        name = event.strip()
    elif kind in ("page", "screen"):
        raw_name = msg.get("name")
        if raw_name is not None and not isinstance(raw_name, str):
            raise ItemError("invalid_field", "name must be a string")
        name = raw_name or None
    elif kind == "group":
        name = _id(msg, "groupId")
        if name is None:
            raise ItemError("missing_group_id", "group needs a groupId")
        msg["groupId"] = name
    if name is not None and len(name) > MAX_NAME:
        raise ItemError("invalid_field", f"The event name is longer than {MAX_NAME} characters")

    message_id = msg.get("messageId")
    if message_id is None or message_id == "":
        message_id = str(uuid.uuid4())
    elif not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID:
        raise ItemError(
            "invalid_message_id", f"messageId must be a string of at most {MAX_MESSAGE_ID} chars"
        )
    msg["messageId"] = message_id

    own = msg.get("context")
    context = {**shared_context, **own} if own else dict(shared_context)
    if client_ip and ("ip" not in context or context.get("direct") is True):
        context["ip"] = client_ip
    msg["context"] = context
    own = msg.get("integrations")
    msg["integrations"] = {**shared_integrations, **own} if own else dict(shared_integrations)

    received_iso = received_iso or _iso(received_at)
    stamp_iso, stamped = _event_time(msg, batch_sent_at, received_at, received_iso)
    msg["timestamp"] = stamp_iso
    msg["receivedAt"] = received_iso
    encoded = _encode(msg)
    return Accepted(message_id, kind, name, user_id, anonymous_id, stamped, msg, encoded, stamp_iso)


def _event_time(
    msg: dict[str, Any], batch_sent_at: Any, received_at: datetime, received_iso: str
) -> tuple[str, datetime]:
    """Segment's rule: timestamp = receivedAt - (sentAt - originalTimestamp).

    An explicit `timestamp` (server SDKs, historical imports) is kept as sent.
    """
    get = msg.get
    original_text = get("originalTimestamp")
    original = _time(original_text, "originalTimestamp")
    sent_at = _time(get("sentAt", batch_sent_at), "sentAt")
    explicit_text = get("timestamp")
    explicit = _time(explicit_text, "timestamp")
    if explicit is not None:
        return _canonical(str(explicit_text)) or _iso(explicit), explicit
    if original is not None and sent_at is not None:
        try:
            when = received_at - (sent_at - original)
        except OverflowError as exc:
            raise ItemError(
                "invalid_timestamp", "sentAt and originalTimestamp are too far apart"
            ) from exc
        return _iso(when), when
    if original is not None:
        return _canonical(str(original_text)) or _iso(original), original
    return received_iso, received_at


def _canonical(text: str) -> str | None:
    """`_iso` of a timestamp that `_time` parsed, taken from its text when SDKs' shape allows.

    Formatting a datetime costs ~3 µs here, a tenth of everything else done per event; the
    ISO text SDKs send ("2026-05-01T13:51:03.196Z", or with 0 or 6 decimals) already holds
    the same digits, so only the fraction needs padding. None for any other shape.
    """
    size = len(text)
    if size not in (20, 24, 27) or text[size - 1] != "Z":
        return None
    # The extended calendar form only: a week date ("2026-W18-5T...") has other digits.
    if text[4] != "-" or text[7] != "-" or text[5] not in "01" or text[10] != "T":
        return None
    if text[13] != ":" or text[16] != ":":
        return None
    if size == 20:
        return text
    if text[19] != ".":
        return None
    if size == 24:
        digits = text[20:23]
        return text[:19] + "Z" if digits == "000" else text[:23] + "000Z"
    if size == 27:
        return text[:19] + "Z" if text[20:26] == "000000" else text
    return None
