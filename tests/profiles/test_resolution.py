"""Identity resolution, as a shop sees it through the API: one profile per person."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from otklik.models import Profile
from tests.conftest import LiveServer, Tenant
from tests.profiles.support import at, get, idents, lookup, order, send, timeline, track


def test_anonymous_visitor_who_identifies_is_one_profile_holding_their_page_views(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": at(0)},
        {"type": "page", "anonymousId": "anon-1", "name": "Shoes", "timestamp": at(1)},
        {
            "type": "identify",
            "anonymousId": "anon-1",
            "userId": "u-1",
            "traits": {"email": "ivan@mail.ru", "name": "Ivan"},
            "timestamp": at(2),
        },
    )
    live.drain()

    by_user = lookup(http, tenant, "user_id", "u-1")
    by_anon = lookup(http, tenant, "anonymous_id", "anon-1")
    assert by_user is not None and by_anon is not None
    assert by_user["id"] == by_anon["id"]
    assert idents(by_user) == {
        ("anonymous_id", "anon-1"),
        ("user_id", "u-1"),
        ("email", "ivan@mail.ru"),
    }
    assert by_user["traits"] == {"email": "ivan@mail.ru", "name": "Ivan"}
    events = timeline(http, tenant, by_user["id"])
    assert [(e["type"], e["name"]) for e in events] == [
        ("identify", None),
        ("page", "Shoes"),
        ("page", "Home"),
    ]
    assert by_user["aggregates"]["events_count"] == 3


def test_returning_user_on_a_new_device_is_merged_and_the_merge_is_logged(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "laptop", "userId": "u-7", "timestamp": at(0)},
    )
    live.drain()
    send(http, tenant, {"type": "page", "anonymousId": "phone", "name": "Home", "timestamp": at(5)})
    live.drain()
    phone_visitor = lookup(http, tenant, "anonymous_id", "phone")
    user = lookup(http, tenant, "user_id", "u-7")
    assert phone_visitor and user and phone_visitor["id"] != user["id"]

    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "phone", "userId": "u-7", "timestamp": at(6)},
    )
    live.drain()

    merged = lookup(http, tenant, "anonymous_id", "phone")
    assert merged is not None and merged["id"] == user["id"]
    assert merged["merged_ids"] == [phone_visitor["id"]]
    assert merged["aggregates"]["events_count"] == 3
    merges = get(http, tenant, "/merges", profile_id=user["id"])["items"]
    assert [(m["winner_id"], m["loser_id"], m["reason"]) for m in merges] == [
        (user["id"], phone_visitor["id"], "identify")
    ]
    system = timeline(http, tenant, user["id"], type="system")
    assert [e["name"] for e in system] == ["profile.merged"]
    assert system[0]["payload"]["properties"]["merge_id"] == merges[0]["id"]
    # The loser's id still answers, with the person it now belongs to.
    via_loser = get(http, tenant, f"/profiles/{phone_visitor['id']}")
    assert via_loser["id"] == user["id"]
    assert via_loser["requested_id"] == phone_visitor["id"]
    assert via_loser["merged_into"] == user["id"]
    # The merged profile's page view is on the person's timeline.
    names = [e["name"] for e in timeline(http, tenant, user["id"], type="page")]
    assert names == ["Home"]


def test_two_user_ids_on_one_shared_device_stay_two_people(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "family-tablet", "userId": "mum", "timestamp": at(0)},
        {"type": "identify", "anonymousId": "family-tablet", "userId": "son", "timestamp": at(1)},
        track("Viewed", 2, anonymousId="family-tablet", userId="son"),
    )
    live.drain()

    mum = lookup(http, tenant, "user_id", "mum")
    son = lookup(http, tenant, "user_id", "son")
    assert mum and son and mum["id"] != son["id"]
    assert ("user_id", "son") not in idents(mum)
    assert get(http, tenant, "/merges", profile_id=mum["id"])["items"] == []
    assert son["aggregates"]["events_count"] == 2


def test_two_user_ids_sharing_an_email_are_not_merged_but_listed_as_duplicates(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "acct-1",
            "traits": {"email": "Olga@Example.org", "name": "Olga"},
        },
        {"type": "identify", "userId": "acct-2", "traits": {"email": "olga@example.org"}},
    )
    live.drain()

    one = lookup(http, tenant, "user_id", "acct-1")
    two = lookup(http, tenant, "user_id", "acct-2")
    assert one and two and one["id"] != two["id"]
    groups = get(http, tenant, "/profiles/duplicates")
    assert len(groups) == 1
    group = groups[0]
    assert (group["key"], group["value"]) == ("email", "olga@example.org")
    assert {p["id"] for p in group["profiles"]} == {one["id"], two["id"]}
    assert sorted(p["user_ids"] for p in group["profiles"]) == [["acct-1"], ["acct-2"]]
    assert {"name": "Olga", "email": "Olga@Example.org"} in [p["traits"] for p in group["profiles"]]


def test_alias_joins_an_old_user_id_to_a_new_one(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "userId": "old-login", "traits": {"plan": "free"}, "timestamp": at(0)},
        {"type": "identify", "userId": "new-login", "traits": {"plan": "pro"}, "timestamp": at(1)},
    )
    live.drain()
    old = lookup(http, tenant, "user_id", "old-login")
    send(http, tenant, {"type": "alias", "previousId": "old-login", "userId": "new-login"})
    live.drain()

    new = lookup(http, tenant, "user_id", "new-login")
    assert new is not None and lookup(http, tenant, "user_id", "old-login") == new
    assert {("user_id", "old-login"), ("user_id", "new-login")} <= idents(new)
    assert new["traits"] == {"plan": "pro"}  # the surviving profile's values win
    merges = get(http, tenant, "/merges", profile_id=new["id"])["items"]
    assert old is not None
    assert [(m["loser_id"], m["reason"]) for m in merges] == [(old["id"], "alias")]


def test_messy_spellings_of_one_email_and_phone_find_one_profile(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "v-1", "traits": {"email": "  Ivan.Petrov@Mail.RU "}},
        {"type": "identify", "anonymousId": "v-2", "traits": {"email": "ivan.petrov@mail.ru"}},
        {"type": "identify", "anonymousId": "v-3", "traits": {"phone": "8 (912) 345-67-89"}},
        {"type": "identify", "anonymousId": "v-4", "traits": {"phone": "+7 912 345 6789"}},
        {"type": "identify", "anonymousId": "v-5", "traits": {"phone": "79123456789"}},
    )
    live.drain()

    by_email = lookup(http, tenant, "email", "IVAN.PETROV@mail.ru")
    by_phone = lookup(http, tenant, "phone", "8 (912) 345-67-89")
    assert by_email and by_phone
    assert {("anonymous_id", "v-1"), ("anonymous_id", "v-2")} <= idents(by_email)
    assert by_phone["phone"] == "+79123456789"
    assert {("anonymous_id", f"v-{n}") for n in (3, 4, 5)} <= idents(by_phone)
    assert lookup(http, tenant, "phone", "+79123456789") == by_phone


def test_placeholder_contacts_never_join_strangers(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    junk = {"email": "test@test.com", "phone": "79777777777"}
    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "stranger-1", "traits": junk},
        {"type": "identify", "anonymousId": "stranger-2", "traits": junk},
    )
    live.drain()

    one = lookup(http, tenant, "anonymous_id", "stranger-1")
    two = lookup(http, tenant, "anonymous_id", "stranger-2")
    assert one and two and one["id"] != two["id"]
    assert lookup(http, tenant, "email", "test@test.com") is None
    assert lookup(http, tenant, "phone", "79777777777") is None
    assert one["email"] is None and one["phone"] is None
    assert get(http, tenant, "/profiles/duplicates") == []


def test_identify_traits_set_set_once_and_unset(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "u-t",
            "traits": {"name": "Anna", "city": "Omsk", "source": "ads"},
            "timestamp": at(0),
        },
        {
            "type": "identify",
            "userId": "u-t",
            "traits": {
                "city": "Tomsk",
                "$set_once": {"source": "seo", "first_seen_page": "/sale"},
                "$unset": ["name"],
            },
            "timestamp": at(1),
        },
    )
    live.drain()

    profile = lookup(http, tenant, "user_id", "u-t")
    assert profile is not None
    assert profile["traits"] == {"city": "Tomsk", "source": "ads", "first_seen_page": "/sale"}


def test_orders_roll_up_and_a_resent_order_is_counted_once_with_the_corrected_total(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    items = [{"sku": "SKU-1", "name": "Boots", "price": 1500, "quantity": 2}]
    send(
        http,
        tenant,
        order("A-1", "3000.00", 10, userId="buyer", properties={"products": items}),
        order("A-2", 499.9, 20, userId="buyer"),
        order("A-2", 450, 21, userId="buyer"),  # the shop corrected the order: new messageId
    )
    live.drain()

    buyer = lookup(http, tenant, "user_id", "buyer")
    assert buyer is not None
    agg = buyer["aggregates"]
    assert agg["orders_count"] == 2
    assert Decimal(agg["revenue"]) == Decimal("3450.00")
    assert agg["last_order_at"] == at(20)
    orders = get(http, tenant, f"/profiles/{buyer['id']}/orders")["items"]
    assert [(o["external_id"], Decimal(o["total"])) for o in orders] == [
        ("A-2", Decimal("450.00")),
        ("A-1", Decimal("3000.00")),
    ]
    assert [(i["sku"], i["quantity"], Decimal(i["price"])) for i in orders[1]["items"]] == [
        ("SKU-1", 2, Decimal("1500.00"))
    ]


def test_an_event_naming_an_unknown_user_id_never_pulls_in_another_users_profile(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    # mum's tablet is known; an anonymous visitor left their email; then a new user logs in
    # on the tablet with that email. The email says who it is; the tablet is only shared.
    send(http, tenant, {"type": "identify", "anonymousId": "tablet", "userId": "mum"})
    send(
        http,
        tenant,
        {"type": "identify", "anonymousId": "web-9", "traits": {"email": "kid@mail.ru"}},
    )
    live.drain()
    send(
        http,
        tenant,
        {
            "type": "identify",
            "anonymousId": "tablet",
            "userId": "kid",
            "traits": {"email": "kid@mail.ru"},
        },
    )
    live.drain()

    mum = lookup(http, tenant, "user_id", "mum")
    kid = lookup(http, tenant, "user_id", "kid")
    assert mum and kid and mum["id"] != kid["id"]
    assert ("anonymous_id", "web-9") in idents(kid)
    assert ("user_id", "kid") not in idents(mum)


def test_a_merge_keeps_every_profile_merged_into_the_loser_pointing_at_the_new_root(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    # x placed an order, then turned out to be the person behind email e (profile l).
    send(http, tenant, order("X-1", 100, 0, anonymousId="x"))
    send(http, tenant, {"type": "identify", "anonymousId": "l", "traits": {"email": "e@mail.ru"}})
    live.drain()
    send(http, tenant, {"type": "identify", "anonymousId": "x", "traits": {"email": "e@mail.ru"}})
    send(http, tenant, {"type": "identify", "userId": "w-user"})
    live.drain()
    # One batch: the order is re-sent (the resolver loads x, a merged profile) and then the
    # email's profile is merged into w-user's profile.
    send(
        http,
        tenant,
        order("X-1", 120, 1, anonymousId="x"),
        {"type": "identify", "userId": "w-user", "traits": {"email": "e@mail.ru"}},
    )
    live.drain()

    person = lookup(http, tenant, "user_id", "w-user")
    assert person is not None
    assert lookup(http, tenant, "anonymous_id", "x") == person
    assert len(person["merged_ids"]) == 2
    with live.engine.connect() as conn:
        pointers = dict(
            conn.execute(
                select(Profile.id, Profile.merged_into).where(Profile.workspace_id == tenant.id)
            ).all()
        )
    assert {str(p) for p, root in pointers.items() if root is not None} == set(person["merged_ids"])
    assert {str(root) for root in pointers.values() if root is not None} == {person["id"]}
    assert Decimal(person["aggregates"]["revenue"]) == Decimal("120.00")
    assert [
        o["external_id"] for o in get(http, tenant, f"/profiles/{person['id']}/orders")["items"]
    ] == ["X-1"]
