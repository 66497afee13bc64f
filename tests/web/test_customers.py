"""Customers in the console: search by any identifier, the paged list and its filters, the card,
the timeline and event detail, editing a trait, and who may see and change what."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import LiveServer, Tenant, make_tenant
from tests.profiles.support import get, merge, order, pid_of, send, track
from tests.support.console import ConsoleClient, add_user

ROW = re.compile(r'data-customer="([0-9a-f-]{36})"')


def recent(days: float = 0) -> str:
    moment = datetime.now(UTC) - timedelta(days=days, minutes=5)
    return moment.isoformat().replace("+00:00", "Z")


def shop(live: LiveServer, http: httpx.Client, tenant: Tenant) -> dict[str, str]:
    """Olga (identified, with an order), Ivan (first/last name traits), an anonymous visitor
    and a loyalty-card holder seen long ago; their profile ids by short name."""
    send(
        http,
        tenant,
        {
            "type": "identify",
            "userId": "olga-1",
            "timestamp": recent(2),
            "traits": {
                "name": "Ольга Иванова",
                "email": "Olga.Ivanova@Example.com",
                "phone": "8 (912) 345-67-89",
                "city": "Москва",
                "vip": True,
            },
        },
        {
            **order("O-1", 1500, 5, userId="olga-1"),
            "timestamp": recent(1),
            "properties": {
                "order_id": "O-1",
                "total": 1500,
                "currency": "RUB",
                "products": [
                    {"product_id": "sku-1", "name": "Чайник", "price": 750, "quantity": 2}
                ],
            },
        },
        {
            "type": "identify",
            "userId": "ivan-2",
            "timestamp": recent(3),
            "traits": {"first_name": "Ivan", "last_name": "Petrov", "email": "ivan.p@mail.ru"},
        },
        {"type": "page", "anonymousId": "anon-xyz", "name": "Home", "timestamp": recent(0)},
        {
            "type": "identify",
            "userId": "card-holder",
            "timestamp": recent(40),
            "traits": {"loyalty_card": "LC-5555", "firstName": "Пётр"},
        },
    )
    live.drain()
    return {
        "olga": pid_of(http, tenant, "user_id", "olga-1"),
        "ivan": pid_of(http, tenant, "user_id", "ivan-2"),
        "anon": pid_of(http, tenant, "anonymous_id", "anon-xyz"),
        "card": pid_of(http, tenant, "user_id", "card-holder"),
    }


def found(console: ConsoleClient, **params: Any) -> list[str]:
    response = console.get("/customers", params=params)
    assert response.status_code == 200, response.text
    return ROW.findall(response.text)


@pytest.fixture
def people(live: LiveServer, http: httpx.Client, tenant: Tenant) -> dict[str, str]:
    return shop(live, http, tenant)


@pytest.fixture
def viewer(live: LiveServer, engine: Engine, tenant: Tenant) -> Any:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as client:
        yield client


def test_the_list_shows_live_customers_newest_first_with_their_figures(
    people: dict[str, str], viewer: ConsoleClient
) -> None:
    page = viewer.get("/customers")
    assert page.status_code == 200
    assert set(ROW.findall(page.text)) == set(people.values())
    assert "Ольга Иванова" in page.text and "olga.ivanova@example.com" in page.text
    assert "+79123456789" in page.text and "Ivan Petrov" in page.text
    assert re.search(r"1,500\.00", page.text), "revenue shown as money"
    assert 'hx-trigger="input changed delay:300ms, search"' in page.text
    assert 'hx-push-url="true"' in page.text and 'method="get" action="/customers"' in page.text
    assert '<label for="q">' in page.text


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("OLGA.IVA", "olga"),  # part of an email, any case
        ("example.com", "olga"),
        ("8 (912) 345-67-89", "olga"),  # a whole phone, domestic format
        ("+7 912 345", "olga"),  # the start of one, international
        ("9123456", "olga"),  # digits from the middle
        ("8 912 34", "olga"),  # the start, domestic trunk prefix
        ("ольга", "olga"),  # a name, Cyrillic, other case
        ("ИВАНОВА", "olga"),
        ("ivan petrov", "ivan"),  # first and last name together
        ("петр", "card"),  # ё typed as е
        ("olga-1", "olga"),  # exact user id
        ("anon-xyz", "anon"),  # exact anonymous id
        ("LC-5555", "card"),  # exact loyalty card
    ],
)
def test_search_finds_a_customer_by_any_identifier_or_name(
    people: dict[str, str], viewer: ConsoleClient, query: str, who: str
) -> None:
    assert found(viewer, q=query) == [people[who]]


def test_search_by_profile_id_and_nothing_found(
    people: dict[str, str], viewer: ConsoleClient
) -> None:
    assert found(viewer, q=people["ivan"]) == [people["ivan"]]
    empty = viewer.get("/customers", params={"q": "nobody-like-this"})
    assert empty.status_code == 200 and "No customers match." in empty.text
    # LIKE wildcards in the query are searched for literally.
    assert found(viewer, q="%") == [] and found(viewer, q="o_ga") == []


def test_htmx_gets_only_the_results_and_a_history_restore_the_whole_page(
    people: dict[str, str], viewer: ConsoleClient
) -> None:
    fragment = viewer.get("/customers", params={"q": "olga"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and ROW.findall(fragment.text) == [people["olga"]]
    restore = viewer.get(
        "/customers",
        params={"q": "olga"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text


def test_filters_narrow_the_list(people: dict[str, str], viewer: ConsoleClient) -> None:
    assert found(viewer, has_orders="1") == [people["olga"]]
    assert set(found(viewer, identified="1")) == {people["olga"], people["ivan"], people["card"]}
    assert set(found(viewer, has_email="1")) == {people["olga"], people["ivan"]}
    assert found(viewer, has_phone="1") == [people["olga"]]
    assert set(found(viewer, seen="30")) == {people["olga"], people["ivan"], people["anon"]}
    assert found(viewer, seen="30", has_email="1", q="petrov") == [people["ivan"]]
    # An unknown period is ignored rather than refused.
    assert len(found(viewer, seen="12345")) == 4
    page = viewer.get("/customers", params={"has_orders": "1", "seen": "7"})
    assert re.search(r'name="has_orders" value="1" checked', page.text)
    assert '<option value="7" selected>' in page.text


def test_the_list_pages_with_a_cursor_fifty_at_a_time(
    live: LiveServer, http: httpx.Client, tenant: Tenant, viewer: ConsoleClient
) -> None:
    send(
        http,
        tenant,
        *(
            {"type": "identify", "userId": f"p-{n:03d}", "traits": {"email": f"p{n}@shop.example"}}
            for n in range(63)
        ),
    )
    live.drain()
    first = viewer.get("/customers", params={"has_email": "1"})
    ids = ROW.findall(first.text)
    assert len(ids) == 50
    found_next = re.search(r'href="(/customers\?has_email=1&amp;cursor=[^"]+)"', first.text)
    assert found_next, first.text
    second = viewer.get(found_next.group(1).replace("&amp;", "&"))
    rest = ROW.findall(second.text)
    assert len(rest) == 13 and not set(rest) & set(ids)
    assert "First page" in second.text and 'rel="next"' not in second.text
    bad = viewer.get("/customers", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400


def test_the_card_shows_traits_identifiers_figures_channels_orders_and_timeline(
    people: dict[str, str], viewer: ConsoleClient
) -> None:
    card = viewer.get(f"/customers/{people['olga']}")
    assert card.status_code == 200
    text = card.text
    assert "Ольга Иванова" in text and 'data-trait="city">Москва' in text
    assert 'data-trait="vip">true' in text
    for kind in ("user_id", "email", "phone"):
        assert f'data-identity="{kind}"' in text
    assert "olga.ivanova@example.com" in text and "+79123456789" in text
    assert 'data-testid="orders-count">1<' in text and "1,500.00" in text
    assert 'data-order="O-1"' in text and "Чайник" in text
    assert re.search(r'data-channel="email">.*?Reachable', text, re.S)
    assert re.search(r'data-channel="telegram">.*?No address', text, re.S)
    assert text.count("Not recorded yet") == 4
    assert "Order Completed" in text and "Identify" in text
    # A reader sees no edit form.
    assert 'action="/customers/' not in text


def test_the_timeline_pages_and_each_event_opens_with_its_payload_escaped(
    live: LiveServer, http: httpx.Client, tenant: Tenant, viewer: ConsoleClient
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "userId": "busy", "traits": {"name": "Busy"}, "timestamp": recent(1)},
        *(track(f"Step {n}", n, userId="busy") for n in range(30)),
        track("Note", 100, userId="busy", properties={"note": "<script>alert(1)</script>"}),
    )
    live.drain()
    pid = pid_of(http, tenant, "user_id", "busy")
    card = viewer.get(f"/customers/{pid}")
    seqs = re.findall(r'data-seq="(\d+)"', card.text)
    assert len(seqs) == 25
    more = re.search(r'href="(/customers/[^"]+/timeline\?cursor=[^"]+)"', card.text)
    assert more, card.text
    fragment = viewer.get(more.group(1), headers={"HX-Request": "true"})
    rest = re.findall(r'data-seq="(\d+)"', fragment.text)
    assert len(rest) == 7 and "<html" not in fragment.text and not set(rest) & set(seqs)
    whole = viewer.get(more.group(1))  # without JavaScript: a page of its own
    assert "<html" in whole.text and re.findall(r'data-seq="(\d+)"', whole.text) == rest

    note = re.search(rf'href="(/customers/{pid}/events/(\d+))" class="tl-kind">Note<', card.text)
    assert note, card.text
    detail = viewer.get(note.group(1))
    assert detail.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text
    assert "<script>alert(1)" not in detail.text
    assert '"note":' in detail.text.replace("&#34;", '"')


def test_ids_of_other_workspaces_and_other_customers_are_not_found(
    people: dict[str, str], live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    send(http, other, {"type": "identify", "userId": "stranger", "traits": {"name": "S"}})
    live.drain()
    stranger = pid_of(http, other, "user_id", "stranger")
    timeline = get(http, other, f"/profiles/{stranger}/timeline")["items"]
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as c:
        assert c.get(f"/customers/{stranger}").status_code == 404
        assert c.get(f"/customers/{stranger}/timeline").status_code == 404
        assert c.get(f"/customers/{stranger}/events/{timeline[0]['seq']}").status_code == 404
        assert c.get("/customers/not-an-id").status_code == 404
        assert c.get(f"/customers/{uuid.uuid4()}").status_code == 404
        # An event of another customer of the same workspace is not this one's.
        olga_events = re.findall(r'data-seq="(\d+)"', c.get(f"/customers/{people['olga']}").text)
        assert c.get(f"/customers/{people['ivan']}/events/{olga_events[0]}").status_code == 404
        assert ROW.findall(c.get("/customers", params={"q": "stranger"}).text) == []


def test_a_merged_away_id_leads_to_the_survivor_and_an_erased_one_says_so(
    people: dict[str, str], http: httpx.Client, tenant: Tenant, viewer: ConsoleClient
) -> None:
    assert merge(http, tenant, people["olga"], people["anon"]).status_code == 201
    moved = viewer.get(f"/customers/{people['anon']}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/customers/{people['olga']}"
    assert people["anon"] not in ROW.findall(viewer.get("/customers").text)
    card = viewer.get(f"/customers/{people['olga']}")
    assert "1 profile merged into this one" in card.text and "Profiles merged" in card.text

    erased = http.delete(f"/api/v1/profiles/{people['ivan']}", headers=tenant.bearer)
    assert erased.status_code == 204
    assert people["ivan"] not in ROW.findall(viewer.get("/customers").text)
    card = viewer.get(f"/customers/{people['ivan']}")
    assert card.status_code == 200 and "Erased" in card.text and "ivan.p@mail.ru" not in card.text


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("string", "Казань", "Казань"),
        ("number", "42", 42),
        ("number", "2,5", 2.5),
        ("boolean", "true", True),
        ("json", '{"size": "M", "tags": [1, 2]}', {"size": "M", "tags": [1, 2]}),
    ],
)
def test_an_operator_sets_a_trait_of_any_kind(
    people: dict[str, str],
    live: LiveServer,
    http: httpx.Client,
    engine: Engine,
    tenant: Tenant,
    kind: str,
    raw: str,
    expected: Any,
) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "operator")) as operator:
        card = operator.get(f"/customers/{people['olga']}")
        assert f'action="/customers/{people["olga"]}/traits"' in card.text
        done = operator.post(
            f"/customers/{people['olga']}/traits", {"key": "pref", "kind": kind, "value": raw}
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/customers/{people['olga']}?notice=traits_saved#traits"
        assert get(http, tenant, f"/profiles/{people['olga']}")["traits"]["pref"] == expected
        after = operator.get(done.headers["location"].split("#")[0])
        assert "traits are saved." in after.text
        assert "Traits edited" in after.text


def test_unsetting_a_trait_and_bad_values_are_told_back(
    people: dict[str, str], live: LiveServer, http: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    url = f"/customers/{people['olga']}/traits"
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as marketer:
        assert marketer.post(url, {"key": "city", "kind": "unset"}).status_code == 303
        assert "city" not in get(http, tenant, f"/profiles/{people['olga']}")["traits"]
        for form, message in [
            ({"key": "x", "kind": "json", "value": "{nope"}, "The value is not valid JSON."),
            ({"key": "x", "kind": "number", "value": "ten"}, "The value is not a number."),
            ({"key": "x", "kind": "boolean", "value": "maybe"}, "enter true or false"),
            ({"key": "", "kind": "string", "value": "v"}, "Give the trait a name"),
            ({"key": "$unset", "kind": "string", "value": "v"}, "Give the trait a name"),
            ({"key": "x", "kind": "colour", "value": "v"}, "Choose what kind of value"),
        ]:
            refused = marketer.post(url, form)
            assert refused.status_code == 422, form
            assert message in refused.text and 'role="alert"' in refused.text
            assert f'value="{form["key"]}"' in refused.text  # the form keeps what was typed
        assert "x" not in get(http, tenant, f"/profiles/{people['olga']}")["traits"]


def test_a_viewer_may_not_edit_traits(
    people: dict[str, str], http: httpx.Client, tenant: Tenant, viewer: ConsoleClient
) -> None:
    denied = viewer.post(
        f"/customers/{people['olga']}/traits", {"key": "city", "kind": "string", "value": "X"}
    )
    assert denied.status_code == 403 and "permission_denied" in denied.text
    assert get(http, tenant, f"/profiles/{people['olga']}")["traits"]["city"] == "Москва"


def test_editing_needs_the_csrf_token_and_a_signed_in_user(
    people: dict[str, str], live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    url = f"/customers/{people['olga']}/traits"
    with ConsoleClient(live.url, add_user(engine, tenant.id, "admin")) as admin:
        forged = admin.http.post(url, data={"key": "city", "kind": "string", "value": "X"})
        assert forged.status_code == 403 and "csrf_failed" in forged.text
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/customers").status_code in (303, 307, 401)
