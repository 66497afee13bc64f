"""Duplicates and merges in the console: suggestions, the side-by-side view, merge, log, undo."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant, make_tenant
from tests.profiles.support import get, merge, order, pid_of, send, undo
from tests.support.console import ConsoleClient, add_user


def two_olgas(live: LiveServer, http: httpx.Client, tenant: Tenant) -> tuple[str, str]:
    """Two accounts sharing a phone written two ways; the second one has placed an order."""
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "olga-1",
            "traits": {"name": "Olga", "phone": "+7 912 345-67-89", "city": "Moscow"},
        },
        {
            "type": "identify",
            "userId": "olga-2",
            "traits": {"name": "Olga", "phone": "8 (912) 345 67 89", "city": "Kazan"},
        },
        order("O-1", 1500, 5, userId="olga-2"),
    )
    live.drain()
    return pid_of(http, tenant, "user_id", "olga-1"), pid_of(http, tenant, "user_id", "olga-2")


def merges_of(http: httpx.Client, tenant: Tenant, profile_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(http, tenant, "/merges", profile_id=profile_id)["items"]
    return items


def refused_code(response: httpx.Response) -> str:
    found = re.search(r"<code>([a-z_]+)</code>", response.text)
    assert found, response.text
    return found.group(1)


def test_a_marketer_merges_suggested_duplicates_and_undoes_the_merge(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    first, second = two_olgas(live, http, tenant)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as console:
        listing = console.get("/duplicates")
        assert listing.status_code == 200
        assert "Same phone" in listing.text and "+79123456789" in listing.text
        assert "Same name" in listing.text
        links = {f"a={first}&amp;b={second}", f"a={second}&amp;b={first}"}
        assert any(f"/duplicates/compare?{link}" in listing.text for link in links)

        page = console.get("/duplicates/compare", params={"a": first, "b": second})
        assert page.status_code == 200
        assert "Moscow" in page.text and "Kazan" in page.text
        assert 'data-trait="city"' in page.text and "olga-1" in page.text
        # The one with the order survives unless the user chooses otherwise.
        assert re.search(rf'value="{second}" x-model="winner" required checked', page.text)
        assert 'action="/duplicates/merge"' in page.text

        form = {"a": first, "b": second, "winner": second}
        unconfirmed = console.post("/duplicates/merge", form)
        assert unconfirmed.status_code == 422
        assert "Tick the confirmation box" in unconfirmed.text
        assert get(http, tenant, f"/profiles/{first}")["merged_into"] is None

        done = console.post("/duplicates/merge", {**form, "confirm": "yes"})
        assert done.status_code == 303
        assert done.headers["location"] == "/merges?notice=merged"
        merged = get(http, tenant, f"/profiles/{first}")
        assert merged["id"] == second and merged["merged_into"] == second
        assert merged["traits"]["city"] == "Kazan"  # the survivor's value wins
        assert console.get("/duplicates").text.count('data-testid="duplicate-group"') == 0

        log = console.get("/merges?notice=merged")
        assert "The customers are merged." in log.text
        assert "Manual" in log.text
        assert f'href="/customers/{second}"' in log.text
        assert f'href="/customers/{first}"' in log.text
        (entry,) = merges_of(http, tenant, second)
        merge_id = entry["id"]
        assert f'href="/merges/{merge_id}/undo"' in log.text

        confirm = console.get(f"/merges/{merge_id}/undo")
        assert confirm.status_code == 200 and "Yes, undo this merge" in confirm.text
        assert console.post(f"/merges/{merge_id}/undo").status_code == 422
        undone = console.post(f"/merges/{merge_id}/undo", {"confirm": "yes"})
        assert undone.status_code == 303
        assert undone.headers["location"] == "/merges?notice=merge_undone"

        apart = get(http, tenant, f"/profiles/{first}")
        assert apart["id"] == first and apart["merged_into"] is None
        assert apart["traits"]["city"] == "Moscow"
        assert get(http, tenant, f"/profiles/{second}")["merged_ids"] == []
        log = console.get("/merges")
        assert "Undone" in log.text and f"/merges/{merge_id}/undo" not in log.text
        assert "Same phone" in console.get("/duplicates").text

        again = console.post(f"/merges/{merge_id}/undo", {"confirm": "yes"})
        assert again.status_code == 409
        assert "already been undone" in again.text and refused_code(again) == "already_undone"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_readers_see_duplicates_and_the_log_but_may_not_merge_or_undo(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant, role: str
) -> None:
    first, second = two_olgas(live, http, tenant)
    with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as console:
        assert console.get("/duplicates").status_code == 200
        page = console.get("/duplicates/compare", params={"a": first, "b": second})
        assert page.status_code == 200 and "Kazan" in page.text
        assert 'action="/duplicates/merge"' not in page.text
        form = {"a": first, "b": second, "winner": second, "confirm": "yes"}
        refused = console.post("/duplicates/merge", form)
        assert refused.status_code == 403 and "permission_denied" in refused.text
        assert get(http, tenant, f"/profiles/{first}")["merged_into"] is None

        assert merge(http, tenant, second, first).status_code == 201
        merge_id = merges_of(http, tenant, second)[0]["id"]
        log = console.get("/merges")
        assert log.status_code == 200 and "Manual" in log.text
        assert f"/merges/{merge_id}/undo" not in log.text
        assert console.get(f"/merges/{merge_id}/undo").status_code == 403
        denied = console.post(f"/merges/{merge_id}/undo", {"confirm": "yes"})
        assert denied.status_code == 403 and "permission_denied" in denied.text
        assert get(http, tenant, f"/profiles/{first}")["merged_into"] == second


def test_merge_and_undo_without_the_csrf_token_are_refused(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    first, second = two_olgas(live, http, tenant)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as console:
        form = {"a": first, "b": second, "winner": second, "confirm": "yes"}
        forged = console.http.post("/duplicates/merge", data=form)
        assert forged.status_code == 403 and "csrf_failed" in forged.text
        assert get(http, tenant, f"/profiles/{first}")["merged_into"] is None

        assert merge(http, tenant, second, first).status_code == 201
        merge_id = merges_of(http, tenant, second)[0]["id"]
        forged = console.http.post(
            f"/merges/{merge_id}/undo", data={"confirm": "yes", "csrf_token": "forged"}
        )
        assert forged.status_code == 403 and "csrf_failed" in forged.text
        assert get(http, tenant, f"/profiles/{first}")["merged_into"] == second


def test_another_workspaces_customers_and_merges_are_not_found(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    stranger = make_tenant(engine)
    theirs = two_olgas(live, http, stranger)
    ours = two_olgas(live, http, tenant)
    assert merge(http, stranger, theirs[1], theirs[0]).status_code == 201
    their_merge = merges_of(http, stranger, theirs[1])[0]["id"]
    with ConsoleClient(live.url, add_user(engine, tenant.id, "admin")) as console:
        for pair in ((theirs[0], theirs[1]), (ours[0], theirs[0]), (theirs[1], ours[1])):
            page = console.get("/duplicates/compare", params={"a": pair[0], "b": pair[1]})
            assert page.status_code == 404 and "profile_not_found" in page.text
        form = {"a": ours[0], "b": theirs[1], "winner": ours[0], "confirm": "yes"}
        refused = console.post("/duplicates/merge", form)
        assert refused.status_code == 404 and refused_code(refused) == "profile_not_found"
        assert "The merge did not happen" in refused.text
        assert console.get(f"/merges/{their_merge}/undo").status_code == 404
        undo_theirs = console.post(f"/merges/{their_merge}/undo", {"confirm": "yes"})
        assert undo_theirs.status_code == 404 and refused_code(undo_theirs) == "merge_not_found"
        assert their_merge not in console.get("/merges").text
        assert str(theirs[0]) not in console.get("/duplicates").text
    assert get(http, stranger, f"/profiles/{theirs[0]}")["merged_into"] == theirs[1]
    assert get(http, tenant, f"/profiles/{ours[0]}")["merged_into"] is None


def test_bad_links_and_forms_get_a_clear_error(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    first, second = two_olgas(live, http, tenant)
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as console:
        for params in ({"a": "not-an-id", "b": second}, {"a": first}, {}):
            page = console.get("/duplicates/compare", params=params)
            assert page.status_code == 400 and "invalid_id" in page.text
        same = console.get("/duplicates/compare", params={"a": first, "b": first})
        assert same.status_code == 422 and "same_profile" in same.text
        unknown = console.get("/duplicates/compare", params={"a": first, "b": str(uuid.uuid4())})
        assert unknown.status_code == 404
        stray = {"a": first, "b": second, "winner": str(uuid.uuid4()), "confirm": "yes"}
        assert console.post("/duplicates/merge", stray).status_code == 400
        assert console.get("/merges/nonsense/undo").status_code == 400
        assert console.get(f"/merges/{uuid.uuid4()}/undo").status_code == 404
        assert console.get("/merges", params={"cursor": "junk"}).status_code == 400

        # Merged elsewhere meanwhile: the page that was open no longer matches the store.
        assert merge(http, tenant, second, first).status_code == 201
        stale = console.post(
            "/duplicates/merge", {"a": first, "b": second, "winner": first, "confirm": "yes"}
        )
        assert stale.status_code == 409 and refused_code(stale) == "profile_already_merged"
        assert "already been merged" in stale.text
        gone = console.get("/duplicates/compare", params={"a": first, "b": second})
        assert gone.status_code == 409


def test_merges_are_undone_latest_first_and_the_log_says_why(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    first, second = two_olgas(live, http, tenant)
    send(http, tenant, {"type": "identify", "userId": "olga-3", "traits": {"name": "O."}})
    live.drain()
    third = pid_of(http, tenant, "user_id", "olga-3")
    assert merge(http, tenant, second, first).status_code == 201
    assert merge(http, tenant, third, second).status_code == 201
    earlier, later = (m["id"] for m in reversed(merges_of(http, tenant, third)))
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as console:
        log = console.get("/merges")
        assert "undo the later merge first" in log.text
        assert f"/merges/{earlier}/undo" not in log.text
        blocked = console.get(f"/merges/{earlier}/undo")
        assert blocked.status_code == 200 and f'href="/merges/{later}/undo"' in blocked.text
        refused = console.post(f"/merges/{earlier}/undo", {"confirm": "yes"})
        assert refused.status_code == 409 and refused_code(refused) == "undo_order"
        assert f'href="/merges/{later}/undo"' in refused.text

        assert console.post(f"/merges/{later}/undo", {"confirm": "yes"}).status_code == 303
        assert console.post(f"/merges/{earlier}/undo", {"confirm": "yes"}).status_code == 303
    assert undo(http, tenant, earlier).status_code == 409
    for pid in (first, second, third):
        assert get(http, tenant, f"/profiles/{pid}")["id"] == pid


def test_the_log_is_paged_newest_first_and_names_automatic_merges(
    live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "userId": "old-login", "traits": {"name": "Old"}},
        {"type": "identify", "userId": "new-login", "traits": {"name": "New"}},
    )
    live.drain()
    send(http, tenant, {"type": "alias", "previousId": "old-login", "userId": "new-login"})
    live.drain()
    first, second = two_olgas(live, http, tenant)
    assert merge(http, tenant, second, first).status_code == 201
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as console:
        newest = console.get("/merges", params={"limit": 1})
        assert "Manual" in newest.text and "Alias" not in newest.text
        cursor = re.search(r'href="/merges\?cursor=([^"&]+)&amp;limit=1" rel="next"', newest.text)
        assert cursor, newest.text
        older = console.get(f"/merges?cursor={cursor.group(1)}&limit=1")
        assert older.status_code == 200
        assert "Alias" in older.text and "Manual" not in older.text
        assert 'rel="next"' not in older.text and 'href="/merges?limit=1"' in older.text
