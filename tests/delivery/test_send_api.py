"""The transactional API end to end: one request queues one message; the pipeline checks
consent, suppression and policy, renders, sends through the workspace's provider, and keeps
the whole story on the message and on the person's timeline."""

from __future__ import annotations

from datetime import datetime

import httpx

from otklik.channels.logging_fake import OUTBOX
from otklik.kit.pagination import encode_cursor
from tests.conftest import LiveServer, Tenant
from tests.delivery.support import api, ok, person, send_message, set_up, settled, template
from tests.profiles.support import timeline


def outbox_for(message_id: str) -> list:
    return [m for m in OUTBOX.items() if str(m.message_id) == message_id]


def test_a_consenting_person_gets_a_personalised_tracked_email(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant)
    pid = person(live, http, tenant, first_name="Ольга")
    r = send_message(http, tenant, template=key, to={"profile_id": pid})
    queued = ok(r, 202)
    assert queued["created"] is True
    msg = settled(http, tenant, queued["id"])
    assert msg["state"] == "sent", msg
    assert [a["outcome"] for a in msg["history"]] == ["sent"]
    [out] = outbox_for(queued["id"])
    assert out.subject == "Hello, Ольга"
    assert "/t/c/" in out.html and "/t/o/" in out.html  # links wrapped, pixel added
    assert "shop.example" not in out.html  # the target hides inside the signed token
    assert out.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert out.text  # a text part made from the HTML
    names = [e["name"] for e in timeline(http, tenant, pid)]
    assert "Email Sent" in names


def test_the_same_idempotency_key_sends_once(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant)
    first = send_message(http, tenant, template=key, to={"profile_id": pid}, idempotency_key="o-1")
    again = send_message(http, tenant, template=key, to={"profile_id": pid}, idempotency_key="o-1")
    assert first.status_code == 202 and again.status_code == 200, again.text
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    settled(http, tenant, first.json()["id"])
    assert len(outbox_for(first.json()["id"])) == 1


def test_marketing_without_consent_is_skipped_with_the_reason_but_transactional_goes(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    promo = template(http, tenant)
    receipt = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant, consent=False)
    skipped = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=promo, to={"profile_id": pid}), 202)["id"],
    )
    assert (skipped["state"], skipped["reason_code"]) == ("skipped", "no_consent")
    assert skipped["history"] == []  # never handed to a provider
    sent = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=receipt, to={"profile_id": pid}), 202)["id"],
    )
    assert sent["state"] == "sent"


def test_suppressed_addresses_get_nothing(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant, email="Gone@Example.org")
    ok(
        api(
            http,
            tenant,
            "POST",
            "/suppressions",
            json={"channel": "email", "address": "gone@example.org"},
        ),
        201,
    )
    msg = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
    )
    assert (msg["state"], msg["reason_code"]) == ("skipped", "suppressed")


def test_quiet_hours_defer_marketing_to_the_morning_in_the_persons_zone(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    # Quiet all day except one minute, so "now" is inside the quiet period whenever this runs.
    now = datetime.now().astimezone()
    set_up(
        http, tenant, settings={"quiet_hours": {"enabled": True, "start": "00:00", "end": "00:00"}}
    )
    key = template(http, tenant)
    pid = person(live, http, tenant, timezone="Asia/Yekaterinburg")
    ok(
        api(
            http,
            tenant,
            "PUT",
            "/delivery-settings",
            json={"quiet_hours": {"enabled": True, "start": "00:01", "end": "00:00"}},
        )
    )
    msg = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
    )
    assert now.tzinfo is not None
    if msg["state"] == "deferred":
        assert msg["reason_code"] == "quiet_hours"
        assert "Asia/Yekaterinburg" in msg["reason"]
        due = datetime.fromisoformat(msg["due_at"].replace("Z", "+00:00"))
        assert due.astimezone().utcoffset() is not None and due > datetime.now().astimezone()
    else:  # the one free minute, 00:00 in Yekaterinburg
        assert msg["state"] == "sent"


def test_a_frequency_cap_defers_or_drops_and_says_why(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant)
    pid = person(live, http, tenant)
    ok(
        api(
            http,
            tenant,
            "POST",
            "/frequency-policies",
            json={"name": "2 a day", "max_messages": 2, "window_seconds": 86400, "action": "defer"},
        ),
        201,
    )
    states = []
    for _ in range(3):
        mid = ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"]
        states.append(settled(http, tenant, mid))
    assert [s["state"] for s in states] == ["sent", "sent", "deferred"]
    assert states[2]["reason_code"] == "frequency_cap" and "2 a day" in states[2]["reason"]
    first_sent = datetime.fromisoformat(states[0]["sent_at"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(states[2]["due_at"].replace("Z", "+00:00"))
    assert abs((due - first_sent).total_seconds() - 86400) < 5
    # Transactional messages are never capped.
    receipt = template(http, tenant, purpose="transactional")
    assert (
        settled(
            http,
            tenant,
            ok(send_message(http, tenant, template=receipt, to={"profile_id": pid}), 202)["id"],
        )["state"]
        == "sent"
    )


def test_provider_faults_are_retried_and_dead_addresses_suppressed(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(
        http,
        tenant,
        config={"retry_addresses": ["busy@example.org"], "gone_addresses": ["dead@example.org"]},
    )
    key = template(http, tenant, purpose="transactional")
    busy = person(live, http, tenant, email="busy@example.org")
    dead = person(live, http, tenant, email="dead@example.org")
    retried = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=key, to={"profile_id": busy}), 202)["id"],
    )
    assert retried["state"] == "queued" and retried["reason_code"] == "fake_retry"
    assert [a["outcome"] for a in retried["history"]] == ["retry"]
    failed = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=key, to={"profile_id": dead}), 202)["id"],
    )
    assert (failed["state"], failed["reason_code"]) == ("failed", "fake_gone")
    listed = ok(api(http, tenant, "GET", "/suppressions", params={"channel": "email"}))
    assert [(s["address"], s["reason"]) for s in listed["items"]] == [
        ("dead@example.org", "hard_bounce")
    ]


def test_opens_clicks_and_one_click_unsubscribe_come_back_as_events(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant)
    pid = person(live, http, tenant)
    mid = ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"]
    settled(http, tenant, mid)
    [out] = outbox_for(mid)
    pixel = out.html.split('src="')[-1].split('"')[0]
    click = next(h for h in out.html.split('href="')[1:] if "/t/c/" in h).split('"')[0]
    assert http.get(pixel).headers["content-type"] == "image/gif"
    r = http.get(click, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://shop.example/sale?utm_source=email&utm_campaign=s1"
    tampered = click[:-3] + ("A" if click[-3] != "A" else "B") + click[-2:]
    assert http.get(tampered, follow_redirects=False).status_code == 404
    msg = ok(api(http, tenant, "GET", f"/messages/{mid}"))
    assert msg["state"] == "clicked" and msg["opened_at"] and msg["clicked_at"]
    unsubscribe = out.headers["List-Unsubscribe"].strip("<>")
    assert http.get(unsubscribe).status_code == 200  # asking is not unsubscribing
    r = http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    consents = ok(api(http, tenant, "GET", f"/profiles/{pid}/consents"))
    assert [(c["channel"], c["status"], c["source"]) for c in consents] == [
        ("email", "denied", "unsubscribe_link")
    ]
    names = [e["name"] for e in timeline(http, tenant, pid)]
    for name in ("Email Sent", "Email Opened", "Email Link Clicked", "Consent Changed"):
        assert name in names
    again = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
    )
    assert (again["state"], again["reason_code"]) == ("skipped", "unsubscribed")


def test_bad_requests_get_stable_codes(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant)
    r = send_message(http, tenant, template="nope", to={"email": "a@b.ru"})
    assert (r.status_code, r.json()["code"]) == (404, "template_not_found")
    r = send_message(http, tenant, template=key, to={})
    assert (r.status_code, r.json()["code"]) == (422, "no_recipient")
    r = send_message(http, tenant, template=key, to={"email": "nobody@nowhere.ru"})
    assert r.status_code == 404
    r = api(
        http,
        tenant,
        "POST",
        "/templates",
        json={
            "key": "broken",
            "channel": "email",
            "content": {"subject": "x", "body": "<p>{% if %}</p>"},
        },
    )
    assert r.status_code == 422 and r.json()["code"] == "template_error"
    assert r.json()["details"]["line"] == 1
    r = api(
        http, tenant, "POST", "/channels", json={"kind": "email", "provider": "pigeon", "name": "x"}
    )
    assert (r.status_code, r.json()["code"]) == (422, "unknown_provider")
    r = api(
        http,
        tenant,
        "POST",
        "/channels",
        json={"kind": "email", "provider": "logging", "name": "y", "config": {"typo": 1}},
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_channel_config")
    forged = encode_cursor(["not a time", "not an id"])
    for path in ("/messages", "/suppressions"):
        r = api(http, tenant, "GET", path, params={"cursor": forged})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


def test_the_message_log_pages_newest_first_without_gaps(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    key = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant)
    sent = [
        ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"]
        for _ in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = ok(
            api(
                http,
                tenant,
                "GET",
                "/messages",
                params={"limit": 2, **({"cursor": cursor} if cursor else {})},
            )
        )
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(sent) and len(seen) == 5


def test_a_providers_bounce_report_fails_the_message_and_suppresses_the_address(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    """The receipts URL of an SMTP provider takes the JSON bounce format (or DSN mail)."""
    smtp = {"host": "127.0.0.1", "port": 9, "security": "none", "from_address": "shop@example.org"}
    channel = ok(
        api(
            http,
            tenant,
            "POST",
            "/channels",
            json={
                "kind": "email",
                "provider": "smtp",
                "name": "relay",
                "config": smtp,
                "is_default": False,
            },
        ),
        201,
    )
    set_up(http, tenant)  # the logging provider stays the default, so the send succeeds
    key = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant, email="bounce@example.org")
    mid = ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"]
    assert settled(http, tenant, mid)["state"] == "sent"
    path = "/" + channel["receipts_url"].split("/", 3)[3]
    report = {
        "events": [
            {
                "type": "bounce",
                "message_id": mid,
                "email": "bounce@example.org",
                "permanent": True,
                "reason": "550 5.1.1 user unknown",
            }
        ]
    }
    assert http.post(path, json=report).json() == {"received": 1, "matched": 1}
    msg = ok(api(http, tenant, "GET", f"/messages/{mid}"))
    assert (msg["state"], msg["reason_code"]) == ("failed", "hard_bounce")
    assert [e["kind"] for e in msg["events"]] == ["bounced"]
    listed = ok(api(http, tenant, "GET", "/suppressions", params={"channel": "email"}))
    assert [(s["address"], s["reason"]) for s in listed["items"]] == [
        ("bounce@example.org", "hard_bounce")
    ]
    assert "Email Bounced" in [e["name"] for e in timeline(http, tenant, pid)]
    bad = http.post(
        path,
        content=b'{"events": [{"type": "nonsense"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "bad_receipt")
    assert http.post(path[:-4] + "AAAA", json=report).status_code == 404
