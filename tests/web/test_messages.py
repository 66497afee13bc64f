"""The console's messages area: the log with filters, each message's story and skip reason,
the suppression list, and consent recorded on the customer card."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant, make_tenant
from tests.delivery.support import api, ok, person, send_message, set_up, settled, template
from tests.support.console import ConsoleClient, add_user


def code_of(response: httpx.Response) -> str:
    found = re.search(r"<code>([a-z_]+)</code>", response.text)
    assert found, response.text
    return found.group(1)


def shown_ids(html: str) -> set[str]:
    return set(re.findall(r'data-message="([0-9a-f-]{36})"', html))


def queue(http: httpx.Client, tenant: Tenant, key: str, pid: str) -> dict[str, Any]:
    sent = ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)
    return dict(settled(http, tenant, sent["id"]))


def test_sent_and_skipped_messages_are_in_the_log_and_filter_by_state_channel_and_customer(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    set_up(http, tenant)
    promo = template(http, tenant, key="spring-sale")
    receipt = template(http, tenant, key="receipt", purpose="transactional")
    fan = person(live, http, tenant, email="fan@example.org")
    stranger = person(live, http, tenant, consent=False, email="stranger@example.org")
    sent = queue(http, tenant, promo, fan)
    skipped = queue(http, tenant, promo, stranger)
    receipt_sent = queue(http, tenant, receipt, stranger)
    assert (sent["state"], skipped["state"], receipt_sent["state"]) == ("sent", "skipped", "sent")

    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        log = viewer.get("/messages")
        assert log.status_code == 200
        assert shown_ids(log.text) == {sent["id"], skipped["id"], receipt_sent["id"]}
        assert "spring-sale" in log.text and "v1" in log.text
        assert f'href="/customers/{stranger}"' in log.text
        counts = re.search(r'data-count-state="skipped"[^>]*>.*?class="count">(\d+)<', log.text)
        assert counts and counts.group(1) == "1"

        only_skipped = viewer.get("/messages", params={"state": "skipped"})
        assert shown_ids(only_skipped.text) == {skipped["id"]}
        assert "no_consent" in only_skipped.text
        by_reason = viewer.get("/messages", params={"reason": "no_consent"})
        assert shown_ids(by_reason.text) == {skipped["id"]}
        assert shown_ids(viewer.get("/messages", params={"channel": "sms"}).text) == set()
        by_channel = viewer.get("/messages", params={"channel": "email", "state": "sent"})
        assert shown_ids(by_channel.text) == {sent["id"], receipt_sent["id"]}
        by_email = viewer.get("/messages", params={"customer": "Stranger@Example.org"})
        assert shown_ids(by_email.text) == {skipped["id"], receipt_sent["id"]}
        by_id = viewer.get("/messages", params={"customer": fan})
        assert shown_ids(by_id.text) == {sent["id"]}
        nobody = viewer.get("/messages", params={"customer": "nobody@example.org"})
        assert shown_ids(nobody.text) == set() and "No customer has that identifier" in nobody.text
        # Unknown filter values are ignored rather than failing the page.
        assert viewer.get("/messages", params={"state": "bogus"}).status_code == 200


def test_a_skipped_message_explains_its_reason_and_a_sent_one_shows_its_attempts(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    set_up(http, tenant)
    promo = template(http, tenant, key="newsletter")
    fan = person(live, http, tenant)
    stranger = person(live, http, tenant, consent=False)
    sent = queue(http, tenant, promo, fan)
    skipped = queue(http, tenant, promo, stranger)

    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get(f"/messages/{skipped['id']}")
        assert page.status_code == 200
        assert "Why it was not sent" in page.text
        assert "has not agreed to receive marketing messages on this channel" in page.text
        assert "<code>no_consent</code>" in page.text
        assert f'href="/customers/{stranger}"' in page.text
        assert 'data-kind="created"' in page.text and 'data-kind="skipped"' in page.text
        assert 'data-kind="attempt"' not in page.text  # never handed to a provider

        story = viewer.get(f"/messages/{sent['id']}")
        assert story.status_code == 200
        assert 'data-kind="attempt" data-outcome="sent"' in story.text
        assert "Attempt 1" in story.text and "logging" in story.text
        assert "Accepted by the provider" in story.text
        assert "Marketing" in story.text and "Transactional API" in story.text
        assert "Why it was not sent" not in story.text


def test_a_deferred_message_says_why_it_waits_and_when_it_will_be_tried(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    set_up(http, tenant)
    cap = {"name": "One a day", "channel": "email", "max_messages": 1, "window_seconds": 86400}
    ok(api(http, tenant, "POST", "/frequency-policies", json=cap), 201)
    promo = template(http, tenant)
    fan = person(live, http, tenant)
    assert queue(http, tenant, promo, fan)["state"] == "sent"
    waiting = queue(http, tenant, promo, fan)
    assert (waiting["state"], waiting["reason_code"]) == ("deferred", "frequency_cap")
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get(f"/messages/{waiting['id']}")
        assert "Why it is waiting" in page.text
        assert "as many messages as a frequency policy allows" in page.text
        assert 'data-testid="next-try"' in page.text and "in 1 day" in page.text
        deferred = viewer.get("/messages", params={"state": "deferred"})
        assert shown_ids(deferred.text) == {waiting["id"]}


def test_another_workspaces_message_and_junk_ids_are_not_found(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    set_up(http, other)
    key = template(http, other, purpose="transactional")
    theirs = queue(http, other, key, person(live, http, other))
    with ConsoleClient(live.url, add_user(engine, tenant.id, "admin")) as admin:
        foreign = admin.get(f"/messages/{theirs['id']}")
        assert foreign.status_code == 404 and code_of(foreign) == "message_not_found"
        assert admin.get("/messages/not-an-id").status_code == 404
        assert theirs["id"] not in admin.get("/messages").text


def test_suppressions_are_added_removed_and_imported_and_stop_even_transactional_mail(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    set_up(http, tenant)
    receipt = template(http, tenant, purpose="transactional")
    pid = person(live, http, tenant, email="blocked@example.org")
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as marketer:
        added = marketer.post(
            "/suppressions",
            {"channel": "email", "address": " Blocked@Example.ORG ", "detail": "asked by phone"},
            follow_redirects=True,
        )
        assert added.status_code == 200
        assert "nothing will be sent to it" in added.text
        assert 'data-suppressed="blocked@example.org"' in added.text
        again = marketer.post(
            "/suppressions",
            {"channel": "email", "address": "blocked@example.org"},
            follow_redirects=True,
        )
        assert "already on the suppression list" in again.text
        junk = marketer.post("/suppressions", {"channel": "email", "address": "not an email"})
        assert junk.status_code == 422 and code_of(junk) == "invalid_email"
        bad_phone = marketer.post("/suppressions", {"channel": "sms", "address": "12"})
        assert bad_phone.status_code == 422 and code_of(bad_phone) == "invalid_phone"
        listed = ok(api(http, tenant, "GET", "/suppressions"))["items"]
        assert [(s["address"], s["reason"]) for s in listed] == [("blocked@example.org", "manual")]

        # The pipeline honours it, and the message says so in words.
        skipped = queue(http, tenant, receipt, pid)
        assert (skipped["state"], skipped["reason_code"]) == ("skipped", "suppressed")
        story = marketer.get(f"/messages/{skipped['id']}")
        assert "The address is on the suppression list" in story.text
        card = marketer.get(f"/customers/{pid}")
        assert 'data-testid="suppressed"' in card.text

        confirm = marketer.get(
            "/suppressions/remove", params={"channel": "email", "address": "blocked@example.org"}
        )
        assert confirm.status_code == 200 and "Yes, allow messages" in confirm.text
        form = {"channel": "email", "address": "blocked@example.org"}
        unconfirmed = marketer.post("/suppressions/remove", form)
        assert unconfirmed.status_code == 422 and code_of(unconfirmed) == "not_confirmed"
        removed = marketer.post("/suppressions/remove", {**form, "confirm": "yes"})
        assert removed.status_code == 303
        assert ok(api(http, tenant, "GET", "/suppressions"))["items"] == []
        gone = marketer.post("/suppressions/remove", {**form, "confirm": "yes"})
        assert gone.status_code == 404 and code_of(gone) == "suppression_not_found"

        csv = (
            "Name;Email\nAnna;Anna@Example.org\nBob;junk\n\n"
            "Dan;\nCarl;carl@example.org\nA;anna@example.org\n"
        )
        report = marketer.post(
            "/suppressions/import",
            {"channel": "email"},
            files={"file": ("list.csv", csv.encode(), "text/csv")},
        )
        assert report.status_code == 200, report.text
        assert "2 addresses added" in report.text
        assert "1 repeated line skipped" in report.text
        assert '<tr data-line="3">' in report.text and "<code>junk</code>" in report.text
        assert '<tr data-line="5">' in report.text  # a row with an empty address
        assert "That is not an email address." in report.text
        imported = ok(api(http, tenant, "GET", "/suppressions", params={"q": "example"}))
        assert sorted((s["address"], s["reason"]) for s in imported["items"]) == [
            ("anna@example.org", "imported"),
            ("carl@example.org", "imported"),
        ]
        phones = marketer.post(
            "/suppressions/import",
            {"channel": "sms"},
            files={"file": ("p.csv", b"+7 912 345-67-89\n8 (912) 345 67 89\nhello\n")},
        )
        assert "1 address added" in phones.text and '<tr data-line="3">' in phones.text
        wide = marketer.post(
            "/suppressions/import",
            {"channel": "email"},
            files={"file": ("w.csv", b"a,b\nc,d\n", "text/csv")},
        )
        assert wide.status_code == 422 and code_of(wide) == "no_column"
        empty = marketer.post("/suppressions/import", {"channel": "email"})
        assert empty.status_code == 422 and code_of(empty) == "no_file"
        search = marketer.get("/suppressions", params={"channel": "sms"})
        assert 'data-suppressed="+79123456789"' in search.text
        assert "anna@example.org" not in search.text


def test_viewers_read_the_lists_but_only_messengers_change_them(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    for role in ("viewer", "operator"):
        with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as client:
            listing = client.get("/suppressions")
            assert listing.status_code == 200
            assert "Add to the list" not in listing.text and "multipart" not in listing.text
            assert client.get("/messages").status_code == 200
            denied = client.post("/suppressions", {"channel": "email", "address": "a@b.org"})
            assert denied.status_code == 403 and code_of(denied) == "permission_denied"
            imported = client.post(
                "/suppressions/import",
                {"channel": "email"},
                files={"file": ("a.csv", b"a@b.org\n", "text/csv")},
            )
            assert imported.status_code == 403
            removal = client.get(
                "/suppressions/remove", params={"channel": "email", "address": "x"}
            )
            assert removal.status_code == 403
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as marketer:
        http = marketer.http
        forged = http.post("/suppressions", data={"channel": "email", "address": "a@b.org"})
        assert forged.status_code == 403 and code_of(forged) == "csrf_failed"


def test_consent_recorded_on_the_card_is_what_the_api_reports(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    set_up(http, tenant, settings={"topics": [{"key": "news", "name": "News"}]})
    pid = person(live, http, tenant, consent=False)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "operator")) as operator:
        card = operator.get(f"/customers/{pid}")
        assert 'action="/customers/' in card.text and "Record consent" in card.text
        given = operator.post(
            f"/customers/{pid}/consents",
            {"channel": "email", "purpose": "marketing", "status": "granted"},
        )
        assert given.status_code == 303
        assert given.headers["location"].startswith(f"/customers/{pid}?notice=consent_saved")
        topic = operator.post(
            f"/customers/{pid}/consents",
            {"channel": "email", "purpose": "marketing", "topic": "news", "status": "denied"},
        )
        assert topic.status_code == 303
        consents = ok(api(http, tenant, "GET", f"/profiles/{pid}/consents"))
        assert sorted((c["topic"], c["status"], c["source"]) for c in consents) == [
            ("", "granted", "console"),
            ("news", "denied", "console"),
        ]
        card = operator.get(f"/customers/{pid}")
        assert re.search(
            r'data-consent="email:marketing:">.*?data-status="granted"', card.text, re.S
        )
        assert re.search(r'data-consent="email:marketing:news">.*?News.*?Refused', card.text, re.S)
        assert "recorded in the console" in card.text

        wrong = operator.post(
            f"/customers/{pid}/consents",
            {"channel": "fax", "purpose": "marketing", "status": "granted"},
        )
        assert wrong.status_code == 422 and code_of(wrong) == "invalid_consent"
        unknown_topic = operator.post(
            f"/customers/{pid}/consents",
            {"channel": "email", "purpose": "marketing", "topic": "nope", "status": "granted"},
        )
        assert unknown_topic.status_code == 422
        other = make_tenant(engine)
        stranger = person(live, http, other)
        foreign = operator.post(
            f"/customers/{stranger}/consents",
            {"channel": "email", "purpose": "marketing", "status": "denied"},
        )
        assert foreign.status_code == 404
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        assert "Record consent" not in viewer.get(f"/customers/{pid}").text
        denied = viewer.post(
            f"/customers/{pid}/consents",
            {"channel": "email", "purpose": "marketing", "status": "denied"},
        )
        assert denied.status_code == 403 and code_of(denied) == "permission_denied"
