"""A rule tree is checked against the workspace: a typo is an error with its path, never a
segment that silently matches nobody."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, Tenant, make_tenant
from tests.profiles.support import send
from tests.segments.support import create, event, identify, post, settle


@pytest.fixture
def shop(http: httpx.Client, tenant: Tenant, live: LiveServer) -> Tenant:
    send(
        http,
        tenant,
        identify(
            "v1", 5, email="v1@example.com", city="Omsk", age=31, vip=True, signup="2025-02-03"
        ),
        event("v1", "Order Completed", 2, order_id="o-1", total=120.5, category="shoes"),
    )
    settle(live)
    return tenant


def problems(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_rules", body
    details: list[dict[str, str]] = body["details"]
    assert body["message"].startswith(details[0]["path"])
    return details


def check(http: httpx.Client, tenant: Tenant, rules: dict[str, Any]) -> list[dict[str, str]]:
    return problems(post(http, tenant, "/segments/preview", {"rules": rules}))


def test_unknown_trait_is_an_error_with_its_path(http: httpx.Client, shop: Tenant) -> None:
    rules = {
        "kind": "all",
        "rules": [
            {"kind": "trait", "field": "city", "op": "eq", "value": "Omsk"},
            {"kind": "trait", "field": "ctiy", "op": "eq", "value": "Omsk"},
        ],
    }
    [error] = check(http, shop, rules)
    assert error["path"] == "rules.rules[1].field"
    assert error["code"] == "unknown_trait"
    assert "ctiy" in error["message"]


def test_unknown_trait_is_allowed_when_asked(http: httpx.Client, shop: Tenant) -> None:
    rules = {
        "kind": "trait",
        "field": "loyalty_tier",
        "op": "eq",
        "value": "gold",
        "allow_unknown": True,
    }
    r = post(http, shop, "/segments/preview", {"rules": rules})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 0


def test_operator_must_fit_the_trait_type(http: httpx.Client, shop: Tenant) -> None:
    rules = {
        "kind": "any",
        "rules": [
            {"kind": "trait", "field": "city", "op": "gt", "value": 3},
            {"kind": "trait", "field": "age", "op": "contains", "value": "3"},
            {"kind": "trait", "field": "signup", "op": "days_ago_more_than", "value": "ten"},
            {"kind": "trait", "field": "age", "op": "between", "value": [40, 30]},
            {"kind": "trait", "field": "vip", "op": "is_true", "value": 1},
        ],
    }
    errors = {e["path"]: e["code"] for e in check(http, shop, rules)}
    assert errors == {
        "rules.rules[0].op": "operator_mismatch",
        "rules.rules[1].op": "operator_mismatch",
        "rules.rules[2].value": "wrong_type",
        "rules.rules[3].value": "wrong_type",
        "rules.rules[4].value": "unexpected_value",
    }


def test_unknown_event_property_and_field(http: httpx.Client, shop: Tenant) -> None:
    rules = {
        "kind": "all",
        "rules": [
            {"kind": "event", "name": "Order Complete"},
            {
                "kind": "event",
                "name": "Order Completed",
                "where": [{"property": "colour", "op": "eq", "value": "red"}],
            },
            {"kind": "attribute", "field": "orders", "op": "gte", "value": 1},
            {"kind": "score", "field": "p_dead", "op": "lt", "value": 0.5},
            {"kind": "rfm", "classes": ["champions", "chumps"]},
            {"kind": "identifier", "type": "passport"},
            {"kind": "event", "name": "Order Completed", "measure": "sum"},
        ],
    }
    errors = {e["path"]: e["code"] for e in check(http, shop, rules)}
    assert errors == {
        "rules.rules[0].name": "unknown_event",
        "rules.rules[1].where[0].property": "unknown_property",
        "rules.rules[2].field": "unknown_field",
        "rules.rules[3].field": "unknown_field",
        "rules.rules[4].classes[1]": "unknown_rfm_class",
        "rules.rules[5].type": "unknown_identifier",
        "rules.rules[6].property": "missing_property",
    }


def test_malformed_trees_name_the_node(http: httpx.Client, shop: Tenant) -> None:
    errors = check(http, shop, {"kind": "all", "rules": [{"kind": "trait", "field": "city"}]})
    assert [e["path"] for e in errors] == ["rules.rules[0].op"]
    errors = check(http, shop, {"kind": "not", "rule": {"kind": "nope"}})
    assert errors[0]["path"] == "rules.rule"
    assert errors[0]["code"] == "invalid_shape"
    errors = check(http, shop, {"kind": "any", "rules": []})
    assert errors[0]["path"] == "rules.rules"
    errors = check(http, shop, {"kind": "trait", "field": "city", "op": "eq", "value": 1, "x": 2})
    assert errors[0]["path"] == "rules.x"
    errors = check(http, shop, {"kind": "event", "name": "Order Completed", "value": "abc"})
    assert [e["path"] for e in errors] == ["rules.value"]  # one error, not one per union member


def test_segments_may_not_refer_to_each_other_in_a_circle(
    http: httpx.Client, shop: Tenant, live: LiveServer
) -> None:
    a = create(http, shop, {"kind": "trait", "field": "city", "op": "exists"}, live, name="A")
    b = create(http, shop, {"kind": "segment", "segment_id": a["id"]}, live, name="B")
    c = create(http, shop, {"kind": "segment", "segment_id": b["id"]}, live, name="C")
    r = http.patch(
        f"/api/v1/segments/{a['id']}",
        json={"rules": {"kind": "not", "rule": {"kind": "segment", "segment_id": c["id"]}}},
        headers=shop.bearer,
    )
    [error] = problems(r)
    assert error == {
        "path": "rules.rule.segment_id",
        "code": "segment_cycle",
        "message": error["message"],
    }
    r = http.patch(
        f"/api/v1/segments/{a['id']}",
        json={"rules": {"kind": "segment", "segment_id": a["id"]}},
        headers=shop.bearer,
    )
    assert problems(r)[0]["code"] == "segment_cycle"
    # Referred to, A cannot be deleted; C, referred to by nobody, can.
    r = http.delete(f"/api/v1/segments/{a['id']}", headers=shop.bearer)
    assert r.status_code == 409 and r.json()["code"] == "segment_in_use"
    assert http.delete(f"/api/v1/segments/{c['id']}", headers=shop.bearer).status_code == 204


def test_another_workspaces_segment_is_unknown(
    http: httpx.Client, shop: Tenant, live: LiveServer
) -> None:
    mine = create(http, shop, {"kind": "trait", "field": "city", "op": "exists"}, live)
    other = make_tenant(live.engine)
    rules = {"kind": "segment", "segment_id": mine["id"]}
    assert check(http, other, rules)[0]["code"] == "unknown_segment"
    r = http.get(f"/api/v1/segments/{mine['id']}", headers=other.bearer)
    assert r.status_code == 404 and r.json()["code"] == "segment_not_found"
    assert http.get("/api/v1/segments", headers=other.bearer).json() == []


def test_names_are_unique_and_kinds_take_the_right_input(
    http: httpx.Client, shop: Tenant, live: LiveServer
) -> None:
    rules = {"kind": "trait", "field": "city", "op": "exists"}
    create(http, shop, rules, live, name="Everyone with a city")
    r = post(http, shop, "/segments", {"name": "Everyone with a city", "rules": rules})
    assert r.status_code == 409 and r.json()["code"] == "segment_name_taken"
    r = post(http, shop, "/segments", {"name": "Static", "kind": "static", "rules": rules})
    assert r.status_code == 422 and r.json()["code"] == "unexpected_rules"
    r = post(http, shop, "/segments", {"name": "No rules"})
    assert r.status_code == 422 and r.json()["code"] == "missing_rules"


def test_nul_characters_are_refused_not_a_server_error(http: httpx.Client, shop: Tenant) -> None:
    r = post(http, shop, "/segments", {"name": "a\u0000b", "kind": "static"})
    assert r.status_code == 422, r.text
    rules = {"kind": "trait", "field": "city", "op": "eq", "value": "x\u0000"}
    r = post(http, shop, "/segments/preview", {"rules": rules})
    assert r.status_code == 422, r.text
