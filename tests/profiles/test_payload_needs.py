"""Which events the resolver places from their id columns alone, without decoding payloads."""

from __future__ import annotations

from otklik.profiles.identity import Ident, needs_payload
from otklik.profiles.orders import ORDER_EVENTS
from tests.profiles.support import lookup, send, track


def needs(kind: str, name: str | None, payload: dict) -> bool:
    return needs_payload(kind, name, payload, ORDER_EVENTS)


def test_plain_views_need_no_payload_even_when_they_describe_their_device() -> None:
    device = {"manufacturer": "Samsung", "model": "SM-S911B", "id": "d-1", "type": "android"}
    assert not needs("page", None, {"context": {"ip": "1.2.3.4"}})
    assert not needs("track", "Product Viewed", {"context": {"device": device}})
    assert not needs("screen", None, {"context": {"device": {**device, "token": ""}}})


def test_what_adds_identifiers_or_changes_the_profile_needs_the_payload() -> None:
    assert needs("identify", None, {})
    assert needs("alias", None, {})
    assert needs("track", "Order Completed", {})
    assert needs("screen", None, {"context": {"device": {"token": "push-1"}}})
    assert needs("page", None, {"context": {"traits": {"email": "a@b.ru"}}})
    assert needs("page", None, {"context": {"externalIds": []}})
    assert needs("track", "Viewed", {"context": {"active": False}})


def test_an_identifier_is_its_own_lookup_key() -> None:
    owners = {("user_id", "u-1"): "p-1"}
    assert owners.get(Ident("user_id", "u-1")) == "p-1"
    assert Ident("user_id", "u-1").priority < Ident("anonymous_id", "u-1").priority


def test_a_view_carrying_a_push_token_attaches_it_and_one_without_does_not(live, http, tenant):
    send(
        http,
        tenant,
        track("Product Viewed", 1, userId="u-7", context={"device": {"token": "tok-7"}}),
        track("Product Viewed", 2, userId="u-8", context={"device": {"model": "Pixel"}}),
    )
    live.drain()

    with_token = lookup(http, tenant, "push_token", "tok-7")
    assert with_token is not None
    assert with_token["id"] == lookup(http, tenant, "user_id", "u-7")["id"]
    assert lookup(http, tenant, "user_id", "u-8") is not None
