"""Live events: a workspace's newest events and rejected input, polled by cursor."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from otklik.ingest import debug_repository as debug
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.support.console import ConsoleClient, add_user
from tests.support.statements import sent_on

AFTER = re.compile(r'id="(event|rejected)-poll".*?name="after" value="(\d+)"', re.S)


def send(live: LiveServer, write_key: str, *items: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{live.url}/v1/batch", json={"batch": list(items)}, auth=(write_key, ""), timeout=30
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def track(name: str, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": uuid.uuid4().hex,
        **extra,
    }


def cursors(html: str) -> dict[str, int]:
    return {kind: int(value) for kind, value in AFTER.findall(html)}


def seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


def test_the_page_shows_this_workspaces_events_newest_first(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    send(live, tenant.write_key, track("First Thing", "u-1"), track("Second Thing", "u-2"))
    send(live, other.write_key, track("Elsewhere Thing", "u-9"))
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get("/events/live")
    assert page.status_code == 200
    assert page.text.index("Second Thing") < page.text.index("First Thing")
    assert "Elsewhere Thing" not in page.text
    assert "u-2" in page.text
    assert 'hx-trigger="every 2s"' in page.text


def test_a_poll_returns_only_events_after_the_cursor_and_only_this_workspaces(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    send(live, tenant.write_key, track("Before Open", "u-1"))
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        cursor = cursors(viewer.get("/events/live").text)["event"]

        quiet = viewer.get("/events/live/rows", params={"after": cursor})
        assert quiet.status_code == 200
        assert "<tr" not in quiet.text

        send(live, tenant.write_key, track("After Open", "u-2"), track("Later Still", "u-3"))
        send(live, other.write_key, track("Not Ours", "u-9"))
        fresh = viewer.get("/events/live/rows", params={"after": cursor})
        assert fresh.status_code == 200
        assert "After Open" in fresh.text and "Later Still" in fresh.text
        assert "Before Open" not in fresh.text and "Not Ours" not in fresh.text
        assert fresh.text.index("Later Still") < fresh.text.index("After Open")  # newest first
        shown = seqs(fresh.text)
        assert len(shown) == 2 and min(shown) > cursor
        # The next cursor covers everything stored so far, this workspace's or not.
        next_cursor = int(fresh.headers["X-Live-Cursor"])
        assert next_cursor >= max(shown)

        again = viewer.get("/events/live/rows", params={"after": next_cursor})
        assert "<tr" not in again.text
        assert int(again.headers["X-Live-Cursor"]) == next_cursor


def test_a_poll_keeps_the_filters(live: LiveServer, engine: Engine, tenant: Tenant) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get("/events/live", params={"type": "track", "name": "order"})
        cursor = cursors(page.text)["event"]
        assert 'name="name" value="order"' in page.text
        send(
            live,
            tenant.write_key,
            track("Order Completed", "buyer-1"),
            track("Page Scrolled", "buyer-1"),
            {"type": "identify", "userId": "buyer-1", "traits": {"name": "order person"}},
        )
        rows = viewer.get(
            "/events/live/rows", params={"after": cursor, "type": "track", "name": "order"}
        ).text
        assert "Order Completed" in rows
        assert "Page Scrolled" not in rows and ">identify<" not in rows

        by_id = viewer.get("/events/live", params={"q": "UYER-1"}).text  # part, any case
        assert "Order Completed" in by_id and "Page Scrolled" in by_id
        assert "Order Completed" not in viewer.get("/events/live", params={"q": "nobody"}).text
        assert "Order Completed" not in viewer.get("/events/live", params={"type": "page"}).text


def test_a_resolved_event_links_to_its_customer(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    send(live, tenant.write_key, track("Resolved Thing", "known-user"))
    live.drain()
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        page = viewer.get("/events/live").text
    assert re.search(r'href="/customers/[0-9a-f-]{36}"', page)
    assert 'data-status="1"' in page and ">processed<" in page


def test_the_event_detail_shows_the_whole_payload_escaped(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    hostile = "<script>alert(1)</script>"
    send(live, tenant.write_key, track("Detail Thing", "u-1", properties={"note": hostile}))
    send(live, other.write_key, track("Other Detail", "u-1"))
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        [seq] = seqs(viewer.get("/events/live").text)
        detail = viewer.get(f"/events/{seq}")
        assert detail.status_code == 200
        assert "Detail Thing" in detail.text
        assert "&#34;note&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in detail.text
        assert hostile not in detail.text

        with ConsoleClient(live.url, add_user(engine, other.id, "viewer")) as outsider:
            [their_seq] = seqs(outsider.get("/events/live").text)
        foreign = viewer.get(f"/events/{their_seq}")
        assert foreign.status_code == 404
        assert "event_not_found" in foreign.text
        assert viewer.get("/events/999999999").status_code == 404


def test_rejected_events_show_their_code_and_reason_live(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        cursor = cursors(viewer.get("/events/live").text)["rejected"]
        answer = send(
            live,
            tenant.write_key,
            track("Fine Thing", "u-1"),
            {"type": "track", "userId": "u-1", "properties": {"tag": "no-name-<b>"}},
            {"type": "track", "event": "Nobody Did This"},
        )
        assert {r["code"] for r in answer["rejected"]} == {"missing_event", "missing_identity"}

        rows = viewer.get("/events/live/rejected", params={"after": cursor})
        assert rows.status_code == 200
        assert "missing_event" in rows.text and "track needs an" in rows.text
        assert "missing_identity" in rows.text and "Nobody Did This" in rows.text
        assert "no-name-&lt;b&gt;" in rows.text
        assert int(rows.headers["X-Live-Cursor"]) > cursor
        after = viewer.get("/events/live/rejected", params={"after": rows.headers["X-Live-Cursor"]})
        assert "<tr" not in after.text

        page = viewer.get("/events/live").text
        assert "missing_event" in page and "missing_identity" in page
        assert "Fine Thing" in page

    other = make_tenant(engine)
    with ConsoleClient(live.url, add_user(engine, other.id, "viewer")) as outsider:
        assert "missing_event" not in outsider.get("/events/live").text
        assert "missing_event" not in outsider.get("/events/live/rejected").text


def test_a_bad_cursor_is_refused_and_signing_in_is_needed(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as viewer:
        assert viewer.get("/events/live/rows", params={"after": "-1"}).status_code == 422
        assert viewer.get("/events/live/rows", params={"after": "x"}).status_code == 422
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/events/live").status_code == 303
        poll = anonymous.get("/events/live/rows", headers={"HX-Request": "true"})
        assert poll.headers["HX-Redirect"].startswith("/login")


def test_a_poll_reads_only_the_new_rows_by_primary_key(engine: Engine, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL plans by its statistics; see ingest/debug_repository.py")
    with engine.connect() as conn, sent_on(conn) as sent:
        debug.events_between(conn, uuid.uuid4(), 10, 20, debug.EventFilter("track"), 200)
        debug.rejected_between(conn, uuid.uuid4(), 10, 20, 200)
    statements = [(sql, p) for sql, p in sent if sql.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 2
    with engine.connect() as conn:
        for sql, params in statements:
            plan = " ".join(
                row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            )
            assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, plan
