"""Pages people reach from a message: the preference centre, double opt-in confirmation and
unsubscribe. No sign-in, only signed links; every choice is recorded with its source."""

from __future__ import annotations

import re
import time

import httpx

from otklik.channels.logging_fake import OUTBOX
from tests.conftest import LiveServer, Tenant
from tests.delivery.support import api, ok, person, send_message, set_up, settled, template

TOPICS = {"topics": [{"key": "news", "name": "Новости"}, {"key": "sales", "name": "Распродажи"}]}


def consents(
    http: httpx.Client, tenant: Tenant, pid: str
) -> dict[tuple[str, str], tuple[str, str]]:
    rows = ok(api(http, tenant, "GET", f"/profiles/{pid}/consents"))
    return {(r["channel"], r["topic"]): (r["status"], r["source"]) for r in rows}


def preferences_link(http: httpx.Client, tenant: Tenant, pid: str, key: str) -> str:
    mid = ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"]
    settled(http, tenant, mid)
    [out] = [m for m in OUTBOX.items() if str(m.message_id) == mid]
    found = re.search(r'href="([^"]*/p/[^"]+)"', out.html or "")
    assert found, out.html
    return found.group(1)


def test_the_preference_centre_shows_channels_and_topics_and_saves_choices(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant, settings=TOPICS)
    key = template(
        http,
        tenant,
        purpose="transactional",
        content={"subject": "Заказ", "body": '<a href="{{ preferences_url }}">Настройки</a>'},
    )
    pid = person(live, http, tenant)
    link = preferences_link(http, tenant, pid, key)
    page = http.get(link, headers={"Accept-Language": "ru"})
    assert page.status_code == 200
    assert "Новости" in page.text and "Распродажи" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    r = http.post(link, data={"channel:email": "on", "topic:email:news": "on"})
    assert r.status_code == 200
    assert consents(http, tenant, pid) == {
        ("email", ""): ("granted", "test"),  # unchanged: it was granted already
        ("email", "sales"): ("denied", "preference_centre"),
    }
    r = http.post(link, data={"all": "off"})
    assert consents(http, tenant, pid)[("email", "")] == ("denied", "preference_centre")


def test_a_tampered_or_foreign_link_is_not_found(live: LiveServer, http: httpx.Client) -> None:
    assert http.get("/p/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert http.get("/c/nonsense").status_code == 404
    assert http.post("/u/nonsense").status_code == 404


def test_double_opt_in_sends_a_link_and_marketing_starts_after_the_click(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant)
    promo = template(http, tenant)
    pid = person(live, http, tenant, consent=False, email="new@example.org")
    r = api(
        http,
        tenant,
        "PUT",
        f"/profiles/{pid}/consents",
        json={"channel": "email", "status": "granted", "source": "signup_form", "confirm": True},
    )
    assert ok(r)[0]["status"] == "pending"
    skipped = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=promo, to={"profile_id": pid}), 202)["id"],
    )
    assert skipped["reason_code"] == "consent_pending"
    confirmation = None
    for _ in range(200):
        mails = [m for m in OUTBOX.items() if m.to == "new@example.org" and "/c/" in (m.html or "")]
        if mails:
            confirmation = mails[-1]
            break
        time.sleep(0.05)
    assert confirmation is not None, "no confirmation email"
    link = re.search(r'href="([^"]*/c/[^"]+)"', confirmation.html or "")
    assert link, confirmation.html
    assert "/t/c/" not in link.group(1)  # the confirmation link is not wrapped for tracking
    page = http.get(link.group(1))
    assert page.status_code == 200
    assert consents(http, tenant, pid)[("email", "")] == ("granted", "double_opt_in")
    sent = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=promo, to={"profile_id": pid}), 202)["id"],
    )
    assert sent["state"] == "sent"


def test_unsubscribing_from_a_topic_message_keeps_the_other_topics(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant, settings=TOPICS)
    sales = template(http, tenant, topic="sales")
    news = template(http, tenant, topic="news")
    pid = person(live, http, tenant)
    mid = ok(send_message(http, tenant, template=sales, to={"profile_id": pid}), 202)["id"]
    settled(http, tenant, mid)
    [out] = [m for m in OUTBOX.items() if str(m.message_id) == mid]
    link = out.headers["List-Unsubscribe"].strip("<>")
    page = http.post(link, headers={"Accept-Language": "ru"})
    assert page.status_code == 200 and "Распродажи" in page.text
    assert consents(http, tenant, pid)[("email", "sales")] == ("denied", "unsubscribe_link")
    blocked = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=sales, to={"profile_id": pid}), 202)["id"],
    )
    assert blocked["reason_code"] == "topic_unsubscribed"
    fine = settled(
        http,
        tenant,
        ok(send_message(http, tenant, template=news, to={"profile_id": pid}), 202)["id"],
    )
    assert fine["state"] == "sent"
