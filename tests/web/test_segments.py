"""Segments in the console: the list, the builder page with its catalog, the live count (JSON)
checked against customers made through /v1/batch, validation errors at their path, saving
through the form and the build that follows, members, history, the customer card's block,
static lists, snapshots, deletes refused while referenced, and who may do what."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send
from tests.segments.support import create, event, identify, member_ids, segment, settle
from tests.support.console import ConsoleClient, add_user

SEGMENT_ID = re.compile(r"/segments/([0-9a-f-]{36})")
BUILDER_DATA = re.compile(
    r'<script type="application/json" id="seg-builder-data">(.*?)</script>', re.S
)
MOSCOW = {
    "kind": "all",
    "rules": [{"kind": "trait", "field": "city", "op": "eq", "value": "Moscow"}],
}
BUYERS = {
    "kind": "all",
    "rules": [
        {"kind": "event", "name": "Order Completed", "within_days": 30, "op": "gte", "value": 2}
    ],
}


@pytest.fixture
def marketer(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as client:
        yield client


@pytest.fixture
def viewer(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as client:
        yield client


def shop(live: LiveServer, http: httpx.Client, tenant: Tenant) -> dict[str, str]:
    """Anna (Moscow, three orders), Boris (Kazan, one order), Vera (Moscow, no orders) and
    Gleb (Moscow, two orders long ago); their profile ids by name."""
    send(
        http,
        tenant,
        identify("anna", 20, email="anna@example.com", city="Moscow", first_name="Anna", age=31),
        identify("boris", 20, email="boris@example.com", city="Kazan", first_name="Boris", age=45),
        identify("vera", 20, email="vera@example.com", city="moscow", first_name="Vera", age=22),
        identify("gleb", 200, email="gleb@example.com", city="Moscow", first_name="Gleb", age=60),
        event("anna", "Order Completed", 10, total=1200),
        event("anna", "Order Completed", 5, total=800),
        event("anna", "Order Completed", 1, total=500),
        event("boris", "Order Completed", 3, total=9000),
        event("gleb", "Order Completed", 120, total=100),
        event("gleb", "Order Completed", 110, total=100),
        event("vera", "Product Viewed", 2, sku="A-1"),
    )
    settle(live)
    return {
        name: pid_of(http, tenant, "user_id", name) for name in ("anna", "boris", "vera", "gleb")
    }


def preview(client: ConsoleClient, rules: Any, segment_id: str | None = None) -> httpx.Response:
    return client.http.post(
        "/segments/preview",
        json={"rules": rules, "segment_id": segment_id},
        headers={"X-CSRF-Token": client.csrf},
    )


def save_new(client: ConsoleClient, name: str, rules: Any, **fields: str) -> httpx.Response:
    body = {"name": name, "kind": "dynamic", "rules": json.dumps(rules), **fields}
    return client.post("/segments", body)


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = SEGMENT_ID.search(response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def builder_data(page: str) -> dict[str, Any]:
    found = BUILDER_DATA.search(page)
    assert found, "no builder data on the page"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def shown(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', page, re.S)
    assert found, f"no {testid} on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_the_builder_page_offers_what_the_workspace_holds(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    shop(live, http, tenant)
    listing = marketer.get("/segments")
    assert listing.status_code == 200
    assert 'href="/segments"' in listing.text and "No segments yet." in listing.text
    assert 'data-testid="new-segment"' in listing.text

    page = marketer.get("/segments/new").text
    data = builder_data(page)
    catalog = data["catalog"]
    assert catalog["traits"]["city"] == "string" and catalog["traits"]["age"] == "number"
    assert {"Order Completed", "Product Viewed"} <= set(catalog["events"])
    assert "user_id" in catalog["identifier_types"] and "email" in catalog["identifier_types"]
    assert (
        "contains" in catalog["operators"]["string"] and "between" in catalog["operators"]["number"]
    )
    assert "champions" in catalog["rfm_classes"] and "churn_risk" in catalog["scores"]
    assert data["rules"] is None and data["editable"] is True
    assert data["labels"]["op.gte"] == "at least"
    assert '<script src="/static/segments.js' in page and 'x-data="segmentBuilder"' in page
    assert marketer.get("/static/segments.js").status_code == 200


def test_the_live_count_matches_the_customers_and_links_to_their_cards(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    ids = shop(live, http, tenant)
    r = preview(marketer, MOSCOW)
    assert r.status_code == 200, r.text
    body = r.json()
    # Trait text compares without case: "moscow" is Moscow too.
    assert body["ok"] is True and body["count"] == 3
    assert {p["profile_id"] for p in body["sample"]} == {ids["anna"], ids["vera"], ids["gleb"]}
    assert isinstance(body["took_ms"], int) and body["took_ms"] >= 0
    anna = next(p for p in body["sample"] if p["profile_id"] == ids["anna"])
    assert anna["email"] == "anna@example.com" and anna["url"] == f"/customers/{ids['anna']}"
    assert marketer.get(anna["url"]).status_code == 200

    buyers = preview(marketer, BUYERS).json()
    assert buyers["count"] == 1 and [p["profile_id"] for p in buyers["sample"]] == [ids["anna"]]
    either = {"kind": "any", "rules": [BUYERS["rules"][0], MOSCOW["rules"][0]]}
    assert preview(marketer, either).json()["count"] == 3
    nested = {
        "kind": "all",
        "rules": [
            MOSCOW["rules"][0],
            {"kind": "not", "rule": BUYERS["rules"][0]},
            {"kind": "trait", "field": "age", "op": "between", "value": [20, 40]},
        ],
    }
    assert [p["profile_id"] for p in preview(marketer, nested).json()["sample"]] == [ids["vera"]]
    spenders = {
        "kind": "event",
        "name": "Order Completed",
        "measure": "sum",
        "property": "total",
        "within_days": 30,
        "op": "gte",
        "value": 2000,
    }
    found = preview(marketer, {"kind": "all", "rules": [spenders]}).json()
    assert {p["profile_id"] for p in found["sample"]} == {ids["anna"], ids["boris"]}


def test_invalid_rules_come_back_with_the_path_of_each_problem(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    shop(live, http, tenant)
    typo = {"kind": "trait", "field": "citty", "op": "eq", "value": "Moscow"}
    wrong_op = {"kind": "trait", "field": "age", "op": "contains", "value": 3}
    filtered = {"kind": "event", "name": "Order Completed", "op": "gte", "value": 1}
    filtered["where"] = [{"property": "total", "op": "gt", "value": "x"}]
    rules = {"kind": "all", "rules": [typo, {"kind": "any", "rules": [wrong_op]}, filtered]}
    r = preview(marketer, rules)
    assert r.status_code == 422, r.text
    errors = {(e["path"], e["code"]) for e in r.json()["errors"]}
    assert errors == {
        ("rules.rules[0].field", "unknown_trait"),
        ("rules.rules[1].rules[0].op", "operator_mismatch"),
        ("rules.rules[2].where[0].value", "wrong_type"),
    }
    shape = preview(marketer, {"kind": "all", "rules": [{"kind": "event", "value": 1}]})
    assert shape.status_code == 422
    assert ("rules.rules[0].name", "invalid_shape") in {
        (e["path"], e["code"]) for e in shape.json()["errors"]
    }
    empty = preview(marketer, {"kind": "any", "rules": []}).json()
    assert [e["path"] for e in empty["errors"]] == ["rules.rules"]
    not_json = marketer.http.post(
        "/segments/preview", content=b"{oops", headers={"X-CSRF-Token": marketer.csrf}
    )
    assert not_json.status_code == 422 and not_json.json()["ok"] is False
    no_token = marketer.http.post("/segments/preview", json={"rules": MOSCOW})
    assert no_token.status_code == 403


def test_a_saved_segment_is_built_with_the_counted_members(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    ids = shop(live, http, tenant)
    counted = preview(marketer, MOSCOW).json()["count"]
    r = save_new(marketer, "Moscow", MOSCOW, description="Customers in Moscow")
    segment_id = created_id(r)
    assert "done=created" in r.headers["location"]
    live.app.state.segments.drain()

    page = marketer.get(f"/segments/{segment_id}")
    assert page.status_code == 200
    assert 'data-state="ready"' in page.text and "Customers in Moscow" in page.text
    assert shown(page.text, "members-count") == str(counted)
    assert builder_data(page.text)["rules"]["rules"][0]["field"] == "city"
    assert re.search(r'data-testid="build-time">\d[\d,]* ms<', page.text)

    listing = marketer.get("/segments").text
    row = re.search(r'<tr data-segment="Moscow">.*?</tr>', listing, re.S)
    assert row and f"/segments/{segment_id}" in row.group(0) and "Ready" in row.group(0)
    assert shown(row.group(0), "members-count") == str(counted)
    assert "Dynamic" in row.group(0) and " ms" in row.group(0)

    members = marketer.get(f"/segments/{segment_id}?tab=members").text
    assert set(re.findall(r'data-member="([0-9a-f-]{36})"', members)) == {
        ids["anna"], ids["vera"], ids["gleb"]
    }  # fmt: skip
    assert member_ids(http, tenant, segment_id) == {ids["anna"], ids["vera"], ids["gleb"]}
    history = marketer.get(f"/segments/{segment_id}?tab=history").text
    assert history.count('data-move="entered"') == 3

    card = marketer.get(f"/customers/{ids['anna']}").text
    block = re.search(r'data-testid="customer-segments">(.*?)</ul>', card, re.S)
    assert (
        block and f'href="/segments/{segment_id}"' in block.group(1) and "Moscow" in block.group(1)
    )
    assert "Not in any segment." in marketer.get(f"/customers/{ids['boris']}").text

    # Boris moves to Moscow: the segment follows, and the history shows him entering.
    send(http, tenant, identify("boris", 0, city="Moscow"))
    settle(live)
    again = marketer.get(f"/segments/{segment_id}").text
    assert shown(again, "members-count") == str(counted + 1)
    history = marketer.get(f"/segments/{segment_id}?tab=history").text
    assert history.count('data-move="entered"') == 4


def test_save_errors_are_shown_and_nothing_is_saved(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    shop(live, http, tenant)
    bad = {"kind": "all", "rules": [{"kind": "trait", "field": "citty", "op": "eq", "value": "x"}]}
    r = save_new(marketer, "Typo", bad)
    assert r.status_code == 422
    assert 'data-path="rules.rules[0].field"' in r.text and 'data-code="unknown_trait"' in r.text
    data = builder_data(r.text)
    assert data["rules"] == bad and data["errors"][0]["path"] == "rules.rules[0].field"
    assert 'value="Typo"' in r.text

    not_json = marketer.post("/segments", {"name": "Broken", "kind": "dynamic", "rules": "{"})
    assert not_json.status_code == 422 and "The rules are not valid JSON." in not_json.text
    nameless = save_new(marketer, "  ", MOSCOW)
    assert nameless.status_code == 422 and 'data-field-error="name"' in nameless.text

    created_id(save_new(marketer, "Moscow", MOSCOW))
    taken = save_new(marketer, "Moscow", BUYERS)
    assert taken.status_code == 422 and "Another segment already has this name." in taken.text
    listing = marketer.get("/segments").text
    assert listing.count("<tr data-segment=") == 1


def test_renaming_keeps_the_build_and_new_rules_rebuild(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    ids = shop(live, http, tenant)
    segment_id = created_id(save_new(marketer, "Moscow", MOSCOW))
    live.app.state.segments.drain()
    stored = segment(http, tenant, segment_id)
    # The page's builder sends the stored tree back (with its defaults): no new version.
    r = marketer.post(
        f"/segments/{segment_id}",
        {"name": "Moscow people", "description": "", "rules": json.dumps(stored["rules"])},
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=saved")
    after = segment(http, tenant, segment_id)
    assert (after["name"], after["version"], after["state"]) == ("Moscow people", 1, "ready")
    same = marketer.post(
        f"/segments/{segment_id}", {"name": "Moscow people", "rules": json.dumps(MOSCOW)}
    )
    assert same.headers["location"].endswith("done=unchanged")

    r = marketer.post(f"/segments/{segment_id}", {"name": "Buyers", "rules": json.dumps(BUYERS)})
    assert r.headers["location"].endswith("done=rules_saved")
    assert segment(http, tenant, segment_id)["version"] == 2
    live.app.state.segments.drain()
    assert member_ids(http, tenant, segment_id) == {ids["anna"]}
    page = marketer.get(f"/segments/{segment_id}").text
    assert shown(page, "members-count") == "1" and 'data-state="ready"' in page

    r = marketer.post(f"/segments/{segment_id}/rebuild")
    assert r.status_code == 303 and "done=rebuilding" in r.headers["location"]
    assert segment(http, tenant, segment_id)["state"] in ("stale", "ready")
    live.app.state.segments.drain()
    assert segment(http, tenant, segment_id)["state"] == "ready"
    assert member_ids(http, tenant, segment_id) == {ids["anna"]}


def test_a_segment_others_refer_to_cannot_be_deleted(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    ids = shop(live, http, tenant)
    moscow = created_id(save_new(marketer, "Moscow", MOSCOW))
    inner = {"kind": "segment", "segment_id": moscow, "member": True}
    user = created_id(
        save_new(marketer, "Moscow buyers", {"kind": "all", "rules": [inner, BUYERS["rules"][0]]})
    )
    live.app.state.segments.drain()
    assert member_ids(http, tenant, user) == {ids["anna"]}
    # The builder of a segment offers the others, and a reference back to it is a cycle.
    data = builder_data(marketer.get(f"/segments/{moscow}").text)
    assert {s["name"] for s in data["catalog"]["segments"]} == {"Moscow", "Moscow buyers"}
    back = {"kind": "all", "rules": [{"kind": "segment", "segment_id": user}]}
    cycle = preview(marketer, back, moscow).json()["errors"]
    assert [(e["path"], e["code"]) for e in cycle] == [
        ("rules.rules[0].segment_id", "segment_cycle")
    ]

    r = marketer.post(f"/segments/{moscow}/delete")
    assert r.status_code == 409
    assert "Moscow buyers" in shown(r.text, "refused")
    assert segment(http, tenant, moscow)["name"] == "Moscow"

    assert marketer.post(f"/segments/{user}/delete").headers["location"] == "/segments?done=deleted"
    r = marketer.post(f"/segments/{moscow}/delete")
    assert r.status_code == 303
    assert marketer.get(f"/segments/{moscow}").status_code == 404
    assert "The segment is deleted." in marketer.get("/segments?done=deleted").text


def test_snapshots_and_static_lists_of_pasted_customers(
    live: LiveServer, http: httpx.Client, tenant: Tenant, marketer: ConsoleClient
) -> None:
    ids = shop(live, http, tenant)
    moscow = created_id(save_new(marketer, "Moscow", MOSCOW))
    live.app.state.segments.drain()
    r = marketer.post(f"/segments/{moscow}/snapshot", {"snapshot_name": "Moscow in March"})
    snap = created_id(r)
    page = marketer.get(f"/segments/{snap}").text
    assert 'data-kind="static"' in page and shown(page, "members-count") == "3"
    assert member_ids(http, tenant, snap) == {ids["anna"], ids["vera"], ids["gleb"]}
    taken = marketer.post(f"/segments/{moscow}/snapshot", {"snapshot_name": "Moscow in March"})
    assert taken.status_code == 409 and "already exists" in shown(taken.text, "refused")

    vip = created_id(marketer.post("/segments", {"name": "VIP", "kind": "static"}))
    form = marketer.get(f"/segments/{vip}").text
    assert 'name="people"' in form and "seg-builder-data" not in form
    pasted = f"anna@example.com\nboris\n{ids['vera']}\nnobody@example.com\n"
    r = marketer.post(f"/segments/{vip}/members", {"people": pasted, "as": "auto", "action": "add"})
    assert r.status_code == 200
    assert "3 customers added." in shown(r.text, "people-result")
    missing = re.search(r'data-testid="not-found">(.*?)</div>', r.text, re.S)
    assert missing and "nobody@example.com" in missing.group(1) and "anna@" not in missing.group(1)
    assert member_ids(http, tenant, vip) == {ids["anna"], ids["boris"], ids["vera"]}
    assert shown(r.text, "members-count") == "3"

    r = marketer.post(
        f"/segments/{vip}/members", {"people": "boris", "as": "user_id", "action": "remove"}
    )
    assert "1 customer removed." in shown(r.text, "people-result")
    assert member_ids(http, tenant, vip) == {ids["anna"], ids["vera"]}
    empty = marketer.post(f"/segments/{vip}/members", {"people": " \n", "action": "add"})
    assert empty.status_code == 422 and 'id="f-people-error"' in empty.text
    card = marketer.get(f"/customers/{ids['vera']}").text
    assert 'data-segment="VIP"' in card and 'data-segment="Moscow in March"' in card


def test_viewers_read_segments_but_cannot_change_them(
    live: LiveServer,
    http: httpx.Client,
    tenant: Tenant,
    marketer: ConsoleClient,
    viewer: ConsoleClient,
) -> None:
    shop(live, http, tenant)
    segment_id = create(http, tenant, MOSCOW, live, name="Moscow")["id"]
    listing = viewer.get("/segments")
    assert listing.status_code == 200 and 'data-segment="Moscow"' in listing.text
    assert 'data-testid="new-segment"' not in listing.text
    page = viewer.get(f"/segments/{segment_id}")
    assert page.status_code == 200
    assert 'data-testid="save"' not in page.text and 'data-testid="delete"' not in page.text
    assert builder_data(page.text)["editable"] is False
    assert preview(viewer, MOSCOW).json()["count"] == 3  # counting is reading

    assert viewer.get("/segments/new").status_code == 403
    refused = {
        "/segments": {"name": "Mine", "kind": "dynamic", "rules": json.dumps(MOSCOW)},
        f"/segments/{segment_id}": {"name": "Renamed", "rules": json.dumps(MOSCOW)},
        f"/segments/{segment_id}/rebuild": {},
        f"/segments/{segment_id}/delete": {},
        f"/segments/{segment_id}/snapshot": {"snapshot_name": "x"},
        f"/segments/{segment_id}/members": {"people": "anna@example.com"},
    }
    for path, body in refused.items():
        assert viewer.post(path, body).status_code == 403, path
    assert segment(http, tenant, segment_id)["name"] == "Moscow"
    assert marketer.get(f"/segments/{uuid.uuid4()}").status_code == 404
    assert marketer.get("/segments/not-an-id").status_code == 404
