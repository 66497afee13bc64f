"""A person's rights: a copy of everything held about them, and erasure of it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from otklik.models import Event, Identity, MergeLog, Order, Profile, RejectedEvent
from tests.conftest import LiveServer, Tenant
from tests.profiles.support import at, get, lookup, order, send, timeline

PII = ("u-gdpr", "a-gdpr", "a-phone", "Ivan", "ivan@gdpr.ru", "+79123450077", "Lenina")


def the_person(live: LiveServer, http: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    """Ivan: browsed anonymously, identified, bought, and came back on a second device."""
    send(
        http,
        tenant,
        {"type": "page", "anonymousId": "a-gdpr", "name": "Home", "timestamp": at(0)},
        {
            "type": "identify",
            "userId": "u-gdpr",
            "anonymousId": "a-gdpr",
            "traits": {
                "name": "Ivan",
                "email": "Ivan@GDPR.ru",
                "phone": "+7 912 345-00-77",
                "address": "Lenina 1",
            },
            "timestamp": at(1),
        },
        order(
            "G-1",
            990,
            2,
            userId="u-gdpr",
            properties={
                "products": [{"sku": "SKU-9", "name": "Kettle", "price": 990}],
                "shipping_address": "Lenina 1",
            },
        ),
        {"type": "page", "anonymousId": "a-phone", "name": "Deals", "timestamp": at(3)},
        # Someone else, who must not be touched.
        {"type": "identify", "userId": "u-other", "traits": {"name": "Olga"}, "timestamp": at(4)},
    )
    live.drain()
    send(
        http,
        tenant,
        {"type": "identify", "userId": "u-gdpr", "anonymousId": "a-phone", "timestamp": at(5)},
    )
    live.drain()
    found = lookup(http, tenant, "user_id", "u-gdpr")
    assert found is not None and len(found["merged_ids"]) == 1
    return found


def test_export_holds_traits_identifiers_events_orders_and_merges(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    ivan = the_person(live, http, tenant)

    # Asking with the merged-away profile's id exports the whole person too.
    doc = get(http, tenant, f"/profiles/{ivan['merged_ids'][0]}/export")

    assert doc["exported_at"]
    assert doc["profile"]["id"] == ivan["id"]
    assert doc["profile"]["traits"]["address"] == "Lenina 1"
    assert {(i["type"], i["value"]) for i in doc["profile"]["identities"]} == {
        ("user_id", "u-gdpr"),
        ("anonymous_id", "a-gdpr"),
        ("anonymous_id", "a-phone"),
        ("email", "ivan@gdpr.ru"),
        ("phone", "+79123450077"),
    }
    assert {p["id"] for p in doc["profiles"]} == {ivan["id"], *ivan["merged_ids"]}
    assert [(e["type"], e["name"]) for e in doc["events"]] == [
        ("page", "Home"),
        ("identify", None),
        ("track", "Order Completed"),
        ("page", "Deals"),
        ("identify", None),
        ("system", "profile.merged"),
    ]
    assert doc["events"][1]["payload"]["traits"]["name"] == "Ivan"
    (bought,) = doc["orders"]
    assert (bought["external_id"], Decimal(bought["total"])) == ("G-1", Decimal("990.00"))
    assert [(i["sku"], i["name"]) for i in bought["items"]] == [("SKU-9", "Kettle")]
    assert [(m["winner_id"], m["loser_id"]) for m in doc["merges"]] == [
        (ivan["id"], ivan["merged_ids"][0])
    ]
    assert "Olga" not in orjson.dumps(doc).decode()


def test_erasure_removes_personal_data_everywhere_and_keeps_the_anonymous_figures(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    ivan = the_person(live, http, tenant)
    cluster = [ivan["id"], *ivan["merged_ids"]]
    r = http.post(
        "/v1/batch",
        json={"writeKey": tenant.write_key, "batch": [{"type": "track", "event": "no ids"}]},
    )
    assert r.status_code == 200
    with live.engine.connect() as conn:
        rejected_before = conn.execute(
            select(func.count())
            .select_from(RejectedEvent)
            .where(RejectedEvent.workspace_id == tenant.id)
        ).scalar_one()

    r = http.delete(f"/api/v1/profiles/{ivan['merged_ids'][0]}", headers=tenant.bearer)
    assert r.status_code == 204, r.text
    assert r.content == b""

    with live.engine.connect() as conn:
        ids = [Profile.id.in_([uuid.UUID(p) for p in cluster])]
        profiles = conn.execute(select(Profile).where(*ids)).all()
        assert {str(p.id) for p in profiles} == set(cluster)
        for p in profiles:
            assert (p.traits, p.email, p.phone) == ({}, None, None)
            assert p.erased_at is not None
        root = next(p for p in profiles if str(p.id) == ivan["id"])
        assert (root.orders_count, root.revenue) == (1, Decimal("990.00"))
        assert root.events_count == ivan["aggregates"]["events_count"]
        assert (
            conn.execute(
                select(func.count()).select_from(Identity).where(Identity.workspace_id == tenant.id)
            ).scalar_one()
            == 1
        )  # only u-other's user id is left
        events = conn.execute(
            select(Event).where(Event.profile_id.in_([uuid.UUID(p) for p in cluster]))
        ).all()
        assert len(events) == 7  # 5 of Ivan's, the merge record, the erasure record
        for e in events:
            assert (e.user_id, e.anonymous_id) == (None, None)
            assert set(e.payload) <= {
                "type",
                "event",
                "name",
                "timestamp",
                "messageId",
                "properties",
            }
            assert e.payload["messageId"] == e.message_id
            dumped = orjson.dumps(e.payload).decode()
            assert not [word for word in PII if word.lower() in dumped.lower()], dumped
        kept = next(e for e in events if e.name == "Order Completed")
        assert kept.payload["properties"] == {"order_id": "G-1", "total": 990, "currency": "RUB"}
        assert [e.payload for e in events if e.name == "profile.erased"] != []
        logs = conn.execute(select(MergeLog.snapshot).where(MergeLog.workspace_id == tenant.id))
        for (snapshot,) in logs:
            assert not [w for w in PII if w.lower() in orjson.dumps(snapshot).decode().lower()]
        (total,) = conn.execute(select(Order.total).where(Order.workspace_id == tenant.id)).one()
        assert total == Decimal("990.00")
        assert (
            conn.execute(
                select(func.count())
                .select_from(RejectedEvent)
                .where(RejectedEvent.workspace_id == tenant.id)
            ).scalar_one()
            == rejected_before
        )
        untouched = conn.execute(
            select(Event.payload).where(Event.workspace_id == tenant.id, Event.user_id == "u-other")
        ).all()
        assert [p.payload["traits"] for p in untouched] == [{"name": "Olga"}]

    # Nobody is found by the old identifiers any more...
    for kind, value in (
        ("user_id", "u-gdpr"),
        ("email", "ivan@gdpr.ru"),
        ("anonymous_id", "a-gdpr"),
    ):
        assert lookup(http, tenant, kind, value) is None
    assert get(http, tenant, "/profiles", q="ivan@gdpr.ru")["items"] == []
    # ...the profile stays as an anonymous record with its figures...
    tomb = get(http, tenant, f"/profiles/{ivan['id']}")
    assert tomb["erased"] is True and tomb["traits"] == {} and tomb["identities"] == []
    assert tomb["aggregates"]["revenue"] == "990.00"
    assert timeline(http, tenant, ivan["id"], type="system")[0]["name"] == "profile.erased"
    # ...it takes no edits or merges, erasing again changes nothing...
    r = http.patch(
        f"/api/v1/profiles/{ivan['id']}/traits", json={"set": {"a": 1}}, headers=tenant.bearer
    )
    assert (r.status_code, r.json()["code"]) == (409, "profile_erased")
    other = lookup(http, tenant, "user_id", "u-other")
    assert other is not None
    r = http.post(
        "/api/v1/profiles/merge",
        json={"winner_id": other["id"], "loser_id": ivan["id"]},
        headers=tenant.bearer,
    )
    assert (r.status_code, r.json()["code"]) == (409, "profile_erased")
    assert http.delete(f"/api/v1/profiles/{ivan['id']}", headers=tenant.bearer).status_code == 204
    assert len(timeline(http, tenant, ivan["id"], type="system")) == 2
    # ...and if the person comes back, they are a new profile.
    send(http, tenant, {"type": "identify", "userId": "u-gdpr", "traits": {"name": "Ivan"}})
    live.drain()
    again = lookup(http, tenant, "user_id", "u-gdpr")
    assert again is not None and again["id"] not in cluster
    assert again["aggregates"]["events_count"] == 1
