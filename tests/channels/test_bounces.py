"""Bounces (RFC 3464 DSNs), complaints (RFC 5965 ARF) and the JSON webhook receipt format."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from otklik.channels.base import ChannelKind, OutboundMessage
from otklik.channels.bounces import parse_dsn, parse_webhook
from otklik.channels.smtp import SmtpConfig, SmtpEmailAdapter
from tests.support.smtp_sink import SmtpSink

MESSAGE_ID = uuid.UUID("0192f4c0-7c56-7f3e-a8b2-3d4e5f6a7b8c")
ADAPTER = SmtpEmailAdapter(
    SmtpConfig(host="smtp.example.com", from_address="news@shop.example.com")
)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


# Postfix's hard bounce: the original message is returned whole.
HARD_DSN = crlf(f"""\
Return-Path: <>
Received: by mx.shop.example.com (Postfix) id 4F2B71C0A5B; Mon, 23 Nov 2026 10:15:03 +0000 (UTC)
Date: Mon, 23 Nov 2026 10:15:03 +0000 (UTC)
From: MAILER-DAEMON@mx.shop.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@shop.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="4F2B71C0A5B.1763892903/mx.shop.example.com"
Message-Id: <20261123101503.4F2B71C0A5B@mx.shop.example.com>

This is a MIME-encapsulated message.

--4F2B71C0A5B.1763892903/mx.shop.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.shop.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<ivan.petrov@example.org>: host mx.example.org[203.0.113.7] said: 550 5.1.1
    <ivan.petrov@example.org>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--4F2B71C0A5B.1763892903/mx.shop.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.example.com
X-Postfix-Queue-ID: 4F2B71C0A5B
X-Postfix-Sender: rfc822; bounces@shop.example.com
Arrival-Date: Mon, 23 Nov 2026 10:15:01 +0000 (UTC)

Final-Recipient: rfc822; Ivan.Petrov@Example.ORG
Original-Recipient: rfc822;ivan.petrov@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <ivan.petrov@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--4F2B71C0A5B.1763892903/mx.shop.example.com
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: Shop <news@shop.example.com>
To: ivan.petrov@example.org
Subject: =?utf-8?b?0JLQsNGI0LAg0LrQvtGA0LfQuNC90LA=?=
Date: Mon, 23 Nov 2026 10:15:00 +0000
Message-ID: <{MESSAGE_ID}@shop.example.com>
X-Otklik-Message-Id: {MESSAGE_ID}
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit

Your cart is waiting.

--4F2B71C0A5B.1763892903/mx.shop.example.com--
""")

# Exim-style final failure after a temporary error: only the headers are returned, and the
# X-Otklik-Message-Id header was stripped on the way, so the Message-ID identifies it.
SOFT_DSN = crlf(f"""\
From: Mail Delivery System <Mailer-Daemon@relay.example.net>
To: bounces@shop.example.com
Subject: Mail delivery failed: returning message to sender
Date: Tue, 24 Nov 2026 10:15:00 +0300
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="==XX=="

--==XX==
Content-Type: text/plain

The mailbox of maria@example.ru is full; gave up after 24 hours.

--==XX==
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net

Final-Recipient: rfc822;maria@example.ru
Action: failed
Status: 4.2.2 (mailbox full)
Last-Attempt-Date: Tue, 24 Nov 2026 10:14:00 +0300
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--==XX==
Content-Type: text/rfc822-headers

From: Shop <news@shop.example.com>
To: maria@example.ru
Subject: Spring sale
Message-ID: <{MESSAGE_ID}@shop.example.com>

--==XX==--
""")

DELAYED_DSN = crlf(f"""\
From: MAILER-DAEMON@mx.shop.example.com
To: bounces@shop.example.com
Subject: Delayed Mail (still being retried)
Date: Mon, 23 Nov 2026 14:15:03 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Still trying.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.example.com

Final-Recipient: rfc822; olga@example.com
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.com[198.51.100.2]:25: Connection timed out

--B
Content-Type: text/rfc822-headers

Message-ID: <{MESSAGE_ID}@shop.example.com>
X-Otklik-Message-Id: {MESSAGE_ID}

--B--
""")

# One message to two recipients: one delivered (NOTIFY=SUCCESS), one refused.
TWO_RECIPIENT_DSN = crlf(f"""\
From: MAILER-DAEMON@mx.shop.example.com
To: bounces@shop.example.com
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="C"

--C
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.example.com
Original-Envelope-Id: {MESSAGE_ID}

Final-Recipient: rfc822; a@example.com
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; b@example.com
Action: failed
Status: 5.1.2
Diagnostic-Code: smtp; 550 5.1.2 Host unknown

--C--
""")

# A complaint from a mailbox provider's feedback loop (RFC 5965), original attached.
ARF_COMPLAINT = crlf(f"""\
From: <staff@fbl.mail.example.net>
Date: Thu, 26 Nov 2026 08:00:00 +0000
Subject: FW: Spring sale
To: <fbl@shop.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
    boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 26 Nov 2026 07:58:31 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <bounces@shop.example.com>
Original-Rcpt-To: <Anna@Example.NET>
Arrival-Date: Thu, 26 Nov 2026 07:58:31 +0000
Reporting-MTA: dns; mail.example.net
Source-IP: 192.0.2.1
Reported-Domain: shop.example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: Shop <news@shop.example.com>
To: anna@example.net
Subject: Spring sale
Date: Thu, 26 Nov 2026 07:58:00 +0000
Message-ID: <{MESSAGE_ID}@shop.example.com>
X-Otklik-Message-Id: {MESSAGE_ID}

Spring sale!

--part1_13d.2e68ed54_boundary--
""")


def test_a_hard_bounce_is_permanent_and_names_the_message_and_address() -> None:
    (receipt,) = parse_dsn(HARD_DSN)
    assert receipt.status == "bounced"
    assert receipt.permanent
    assert receipt.message_id == MESSAGE_ID
    assert receipt.provider_message_id == f"<{MESSAGE_ID}@shop.example.com>"
    assert receipt.address == "Ivan.Petrov@example.org"
    assert "550 5.1.1" in receipt.reason
    assert "User unknown" in receipt.reason
    assert receipt.occurred_at == datetime(2026, 11, 23, 10, 15, 1, tzinfo=UTC)


def test_a_soft_bounce_is_not_permanent_and_is_found_by_its_message_id() -> None:
    (receipt,) = parse_dsn(SOFT_DSN)
    assert receipt.status == "bounced"
    assert not receipt.permanent
    assert receipt.message_id == MESSAGE_ID
    assert receipt.address == "maria@example.ru"
    assert "Mailbox full" in receipt.reason
    assert receipt.occurred_at == datetime(2026, 11, 24, 7, 14, tzinfo=UTC)


def test_a_delay_warning_is_a_soft_bounce_that_says_so() -> None:
    (receipt,) = parse_dsn(DELAYED_DSN)
    assert receipt.status == "bounced"
    assert not receipt.permanent
    assert receipt.reason.startswith("delivery delayed")
    assert receipt.message_id == MESSAGE_ID


def test_each_recipient_block_gives_a_receipt_and_the_envelope_id_identifies_the_message() -> None:
    delivered, bounced = parse_dsn(TWO_RECIPIENT_DSN)
    assert (delivered.status, delivered.address) == ("delivered", "a@example.com")
    assert (bounced.status, bounced.address, bounced.permanent) == (
        "bounced",
        "b@example.com",
        True,
    )
    assert delivered.message_id == bounced.message_id == MESSAGE_ID


def test_an_arf_abuse_report_is_a_complaint() -> None:
    (receipt,) = parse_dsn(ARF_COMPLAINT)
    assert receipt.status == "complained"
    assert receipt.message_id == MESSAGE_ID
    assert receipt.address == "Anna@example.net"
    assert "abuse" in receipt.reason
    assert "ExampleFBL" in receipt.reason
    assert receipt.occurred_at == datetime(2026, 11, 26, 7, 58, 31, tzinfo=UTC)


def test_an_arf_not_spam_report_is_no_complaint() -> None:
    assert (
        parse_dsn(ARF_COMPLAINT.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")) == []
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (
            b"From: a@example.com\r\nSubject: hello\r\n\r\nJust a reply.\r\n",
            "not a delivery report",
        ),
        (
            b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n"
            b"\r\n--x--\r\n",
            "unsupported report-type",
        ),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: text/plain\r\n\r\nnothing\r\n--x--\r\n",
            "no message/delivery-status part",
        ),
    ],
)
def test_messages_that_are_not_reports_are_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_dsn(raw)


def test_a_dsn_for_a_message_really_sent_finds_that_message() -> None:
    """Send through SMTP, then bounce it the way an MTA does: return the received headers."""
    message = OutboundMessage(
        message_id=uuid.uuid4(),
        kind=ChannelKind.EMAIL,
        to="gone@example.org",
        text="hi",
        subject="Привет",
    )
    with SmtpSink() as sink:
        adapter = SmtpEmailAdapter(
            SmtpConfig(
                host=sink.host,
                port=sink.port,
                security="none",
                from_address="news@shop.example.com",
                local_hostname="client.otklik.test",
            )
        )

        async def send() -> None:
            await adapter.send(message)
            await adapter.aclose()

        asyncio.run(send())
        returned_headers = sink.messages[0].data.split(b"\r\n\r\n", 1)[0]
    dsn = SOFT_DSN.split(b"Content-Type: text/rfc822-headers")[0] + (
        b"Content-Type: text/rfc822-headers\r\n\r\n" + returned_headers + b"\r\n\r\n--==XX==--\r\n"
    )
    (receipt,) = parse_dsn(dsn)
    assert receipt.message_id == message.message_id


# --- the JSON webhook --------------------------------------------------------------------


def test_webhook_events_become_receipts() -> None:
    other = uuid.uuid4()
    body = json.dumps(
        {
            "events": [
                {
                    "type": "bounce",
                    "message_id": str(MESSAGE_ID),
                    "email": "Ivan@Example.ORG",
                    "permanent": True,
                    "reason": "550 5.1.1 user unknown",
                    "timestamp": "2026-11-23T10:15:03Z",
                    "provider_extra": {"ignored": True},
                },
                {"type": "complaint", "message_id": f"<{other}@shop.example.com>"},
                {"type": "delivered", "provider_message_id": "relay-123"},
                {"type": "unsubscribe", "message_id": str(other), "email": "a@example.com"},
                {"type": "failed", "message_id": str(other), "reason": "suppressed by relay"},
            ]
        }
    ).encode()
    bounce, complaint, delivered, unsubscribed, failed = parse_webhook(body)
    assert bounce.status == "bounced"
    assert bounce.permanent
    assert bounce.message_id == MESSAGE_ID
    assert bounce.address == "Ivan@example.org"
    assert bounce.reason == "550 5.1.1 user unknown"
    assert bounce.occurred_at == datetime(2026, 11, 23, 10, 15, 3, tzinfo=UTC)
    assert (complaint.status, complaint.message_id) == ("complained", other)
    assert (delivered.status, delivered.provider_message_id) == ("delivered", "relay-123")
    assert delivered.message_id is None
    assert unsubscribed.status == "unsubscribed"
    assert (failed.status, failed.permanent) == ("failed", False)
    assert parse_webhook('{"events": []}') == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", 'must be an object {"events"'),
        (b'{"events": {}}', 'must be an object {"events"'),
        (b'{"events": ["bounce"]}', r"events\[0\]: expected an object"),
        (
            b'{"events": [{"type": "open", "message_id": "x"}]}',
            r"events\[0\]\.type: expected one of",
        ),
        (b'{"events": [{"message_id": "x"}]}', r"events\[0\]\.type"),
        (b'{"events": [{"type": "bounce", "message_id": "not-a-uuid"}]}', "is not a UUID"),
        (b'{"events": [{"type": "bounce"}]}', "message_id or provider_message_id is required"),
        (
            b'{"events": [{"type": "bounce", "provider_message_id": "p", "permanent": "yes"}]}',
            r"events\[0\]\.permanent: expected bool",
        ),
        (
            b'{"events": [{"type": "bounce", "provider_message_id": "p", "timestamp": "eve"}]}',
            r"events\[0\]\.timestamp",
        ),
        (
            b'{"events": [{"type": "bounce", "provider_message_id": "p", "email": 5}]}',
            r"events\[0\]\.email: expected str",
        ),
        (
            b'{"events": [{"type": "bounce", "provider_message_id": "p", "email": "nobody"}]}',
            "is not an email address",
        ),
    ],
)
def test_malformed_webhooks_are_refused_with_the_field_that_is_wrong(
    body: bytes, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_webhook(body)


def test_a_malformed_event_refuses_the_whole_batch() -> None:
    body = {"events": [{"type": "bounce", "message_id": str(MESSAGE_ID)}, {"type": "nope"}]}
    with pytest.raises(ValueError, match=r"events\[1\]"):
        parse_webhook(json.dumps(body))


# --- the adapter dispatches on the content type ------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        (
            "application/json",
            b'{"events":[{"type":"complaint","provider_message_id":"p"}]}',
            "complained",
        ),
        (
            "application/json; charset=utf-8",
            b'{"events":[{"type":"delivered","provider_message_id":"p"}]}',
            "delivered",
        ),
        ("message/rfc822", HARD_DSN, "bounced"),
        ("", ARF_COMPLAINT, "complained"),
        ("", b'{"events":[{"type":"bounce","provider_message_id":"p"}]}', "bounced"),
    ],
)
def test_parse_receipts_dispatches_on_content_type(
    content_type: str, body: bytes, status: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    (receipt,) = ADAPTER.parse_receipts(body, headers)
    assert receipt.status == status


def test_a_report_posted_as_a_bare_multipart_body_is_parsed() -> None:
    _, body = HARD_DSN.split(b"\r\n\r\n", 1)
    content_type = (
        "multipart/report; report-type=delivery-status;"
        ' boundary="4F2B71C0A5B.1763892903/mx.shop.example.com"'
    )
    (receipt,) = ADAPTER.parse_receipts(body, {"content-type": content_type})
    assert receipt.permanent
    assert receipt.message_id == MESSAGE_ID


def test_parse_receipts_refuses_unknown_content_types() -> None:
    headers: dict[str, Any] = {"Content-Type": "text/html"}
    with pytest.raises(ValueError, match="unsupported receipt content type"):
        ADAPTER.parse_receipts(b"<p>hi</p>", headers)
