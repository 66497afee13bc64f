"""Bounces and complaints for email, in the two shapes they arrive in.

1. A report message (raw RFC 5322 bytes, e.g. what the bounce mailbox receives):
   - a delivery status notification, RFC 3464 (`multipart/report;
     report-type=delivery-status`), one receipt per recipient block: Action `failed` is a
     bounce, permanent when the Status is 5.x.x; `delayed` is a soft bounce (the relay keeps
     trying, so `permanent` is False and the reason starts with "delivery delayed");
     `delivered`/`relayed`/`expanded` are deliveries;
   - a complaint, ARF, RFC 5965 (`multipart/report; report-type=feedback-report`) with
     Feedback-Type abuse, fraud, virus or other: one "complained" receipt. `not-spam` and
     `auth-failure` reports are not complaints and give no receipt.
   The message is found from the returned original (`message/rfc822` or
   `text/rfc822-headers` part): its `X-Otklik-Message-Id`, else the UUID in its
   `Message-ID`, else a UUID `Original-Envelope-Id`. `provider_message_id` is the original
   `Message-ID`, as `Sent.provider_message_id` reported it.

2. A JSON webhook, for relays that post events (and for anything that translates a
   provider's own format into this one):

       {"events": [
         {"type": "bounce",                # delivered | bounce | complaint | unsubscribe | failed
          "message_id": "0192…-uuid",      # Otklik's id; "<uuid@domain>" (a Message-ID) also works
          "provider_message_id": "…",      # optional; one of the two ids is required
          "email": "ivan@example.org",     # optional
          "permanent": true,               # optional, default false; true suppresses the address
          "reason": "550 5.1.1 user unknown",   # optional
          "timestamp": "2026-11-23T10:00:00Z"}  # optional, ISO 8601
       ]}

   Unknown keys are ignored (providers add their own); anything else malformed raises
   ValueError saying which event and field is wrong.
"""

from __future__ import annotations

import email.policy
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from otklik.channels.base import Receipt, ReceiptStatus
from otklik.kit.time import parse_iso

MAX_WEBHOOK_EVENTS = 10_000
WEBHOOK_TYPES: dict[str, ReceiptStatus] = {
    "delivered": "delivered",
    "bounce": "bounced",
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "failed": "failed",
}
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_STATUS = re.compile(r"^\s*([245])\.\d{1,3}\.\d{1,3}")
_UUID_IN_ID = re.compile(r"^<?\s*([0-9a-fA-F-]{32,36})\s*(?:@[^>]*)?>?$")
_OTKLIK_ID = "X-Otklik-Message-Id"


class _Original:
    """What identifies the returned original message."""

    def __init__(self, headers: Message | None, envelope_id: str | None = None) -> None:
        self.message_id: uuid.UUID | None = None
        self.provider_message_id: str | None = None
        self.to: str | None = None
        if headers is not None:
            self.message_id = _uuid_from(headers.get(_OTKLIK_ID))
            raw_id = headers.get("Message-ID")
            if raw_id:
                self.provider_message_id = str(raw_id).strip()
                self.message_id = self.message_id or _uuid_from(self.provider_message_id)
            to = headers.get("To")
            self.to = _address(str(to)) if to else None
        if self.message_id is None and envelope_id:
            self.message_id = _uuid_from(envelope_id)


def _uuid_from(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    match = _UUID_IN_ID.match(str(value).strip())
    if match is None:
        return None
    try:
        return uuid.UUID(match.group(1))
    except ValueError:
        return None


def _address(value: str) -> str | None:
    """The address in "rfc822; a@b", "<a@b>" or "Name <a@b>", domain lower-cased."""
    text = value.split(";", 1)[1] if ";" in value else value
    text = text.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.rindex(">")]
    local, at, domain = text.strip().rpartition("@")
    if not at or not local or not domain:
        return None
    return f"{local}@{domain.lower()}"


def _when(*values: object) -> datetime | None:
    for value in values:
        if not value:
            continue
        try:
            parsed = parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage):
        raise ValueError("cannot parse the report message")
    return message


def _original(report: EmailMessage, envelope_id: str | None) -> _Original:
    for part in report.iter_parts():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return _Original(payload[0], envelope_id)
        if kind == "text/rfc822-headers":
            headers = HeaderParser(policy=email.policy.default).parsestr(str(part.get_content()))
            return _Original(headers, envelope_id)
    return _Original(None, envelope_id)


def _blocks(report: EmailMessage, content_type: str) -> list[Message]:
    for part in report.iter_parts():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [block for block in payload if isinstance(block, Message)]
            # Some reporters label the part but send it as text: parse the fields ourselves.
            text = str(payload).replace("\r\n", "\n").strip("\n")
            parser = HeaderParser(policy=email.policy.default)
            return [parser.parsestr(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk]
    raise ValueError(f"the report has no {content_type} part")


def parse_dsn(raw: bytes) -> list[Receipt]:
    """Receipts from a delivery status notification or an ARF complaint report."""
    report = _parse(raw)
    if report.get_content_type() != "multipart/report":
        raise ValueError(
            f"not a delivery report: expected multipart/report, got {report.get_content_type()}"
        )
    report_type = str(report.get_param("report-type") or "").lower()
    if report_type == "delivery-status":
        return _dsn_receipts(report)
    if report_type == "feedback-report":
        return _arf_receipts(report)
    raise ValueError(f"unsupported report-type {report_type!r}")


def _dsn_receipts(report: EmailMessage) -> list[Receipt]:
    blocks = _blocks(report, "message/delivery-status")
    per_message = blocks[0] if blocks and "Final-Recipient" not in blocks[0] else None
    envelope_id = per_message.get("Original-Envelope-Id") if per_message else None
    original = _original(report, str(envelope_id) if envelope_id else None)
    receipts: list[Receipt] = []
    for block in blocks:
        if "Final-Recipient" not in block and "Original-Recipient" not in block:
            continue
        status = str(block.get("Status", "")).strip()
        status_class = _STATUS.match(status)
        klass = status_class.group(1) if status_class else ""
        action = str(block.get("Action", "")).strip().lower()
        diagnostic = str(block.get("Diagnostic-Code", "")).strip()
        reason = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
        reason = reason or status
        if action in ("delivered", "relayed", "expanded") or (not action and klass == "2"):
            kind: ReceiptStatus = "delivered"
            permanent = False
        elif action == "delayed":
            kind, permanent, reason = "bounced", False, f"delivery delayed: {reason}"
        elif action == "failed" or klass in ("4", "5"):
            kind, permanent = "bounced", klass == "5"
        else:
            continue
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        receipts.append(
            Receipt(
                status=kind,
                provider_message_id=original.provider_message_id,
                message_id=original.message_id,
                address=_address(str(recipient)) if recipient else original.to,
                permanent=permanent,
                reason=reason,
                occurred_at=_when(
                    block.get("Last-Attempt-Date"),
                    per_message.get("Arrival-Date") if per_message else None,
                    report.get("Date"),
                ),
            )
        )
    if not receipts:
        raise ValueError("the delivery report has no recipient with a known action")
    return receipts


def _arf_receipts(report: EmailMessage) -> list[Receipt]:
    blocks = _blocks(report, "message/feedback-report")
    if not blocks:
        raise ValueError("the feedback report is empty")
    fields = blocks[0]
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if not feedback_type:
        raise ValueError("the feedback report has no Feedback-Type")
    if feedback_type not in COMPLAINT_TYPES:
        return []
    original = _original(report, None)
    recipients = [str(value) for value in fields.get_all("Original-Rcpt-To") or []]
    addresses = [_address(value) for value in recipients] or [original.to]
    agent = str(fields.get("User-Agent", "")).strip()
    reason = f"{feedback_type} complaint" + (f" reported by {agent}" if agent else "")
    occurred = _when(fields.get("Arrival-Date"), fields.get("Received-Date"), report.get("Date"))
    return [
        Receipt(
            status="complained",
            provider_message_id=original.provider_message_id,
            message_id=original.message_id,
            address=address,
            reason=reason,
            occurred_at=occurred,
        )
        for address in addresses
    ]


def parse_webhook(body: bytes | str) -> list[Receipt]:
    """Receipts from the JSON webhook format in the module docstring."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the webhook body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ValueError('the webhook body must be an object {"events": [...]}')
    events = data["events"]
    if len(events) > MAX_WEBHOOK_EVENTS:
        raise ValueError(f"at most {MAX_WEBHOOK_EVENTS} events per request, got {len(events)}")
    return [_webhook_event(index, event) for index, event in enumerate(events)]


def _field(event: Mapping[str, Any], where: str, name: str, kind: type) -> Any:
    value = event.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{where}.{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _webhook_event(index: int, event: object) -> Receipt:
    where = f"events[{index}]"
    if not isinstance(event, dict):
        raise ValueError(f"{where}: expected an object")
    kind = _field(event, where, "type", str)
    if kind not in WEBHOOK_TYPES:
        known = ", ".join(WEBHOOK_TYPES)
        raise ValueError(f"{where}.type: expected one of {known}, got {kind!r}")
    raw_id = _field(event, where, "message_id", str)
    message_id = _uuid_from(raw_id) if raw_id else None
    if raw_id and message_id is None:
        raise ValueError(f"{where}.message_id: {raw_id!r} is not a UUID")
    provider_id = _field(event, where, "provider_message_id", str)
    if message_id is None and not provider_id:
        raise ValueError(f"{where}: message_id or provider_message_id is required")
    address = _field(event, where, "email", str)
    if address is not None and _address(address) is None:
        raise ValueError(f"{where}.email: {address!r} is not an email address")
    permanent = _field(event, where, "permanent", bool)
    timestamp = _field(event, where, "timestamp", str)
    try:
        occurred = parse_iso(timestamp) if timestamp else None
    except ValueError:
        raise ValueError(f"{where}.timestamp: {timestamp!r} is not an ISO 8601 time") from None
    return Receipt(
        status=WEBHOOK_TYPES[kind],
        provider_message_id=provider_id,
        message_id=message_id,
        address=_address(address) if address else None,
        permanent=bool(permanent),
        reason=_field(event, where, "reason", str) or "",
        occurred_at=occurred,
    )


def parse_receipts(body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
    """Dispatch on the request's Content-Type: JSON webhook or a report message."""
    content_type = ""
    for name, value in headers.items():
        if name.lower() == "content-type":
            content_type = value
    media = content_type.split(";", 1)[0].strip().lower()
    if not media and body.lstrip()[:1] == b"{":
        media = "application/json"
    if media == "application/json" or media.endswith("+json"):
        return parse_webhook(body)
    if media == "multipart/report":
        # The MIME body was posted without its header block: put the boundary back.
        return parse_dsn(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if media.startswith("message/") or not media:
        return parse_dsn(body)
    raise ValueError(f"unsupported receipt content type {content_type!r}")
