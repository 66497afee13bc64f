"""What the server adds to and changes in a message before storing it (Segment's rules)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from otklik.kit.time import iso, parse_iso
from tests.ingest.support import basic, by_message_id, events


def post_batch(http, tenant, items, **top):
    r = http.post("/v1/batch", json={"batch": items, **top}, headers=basic(tenant.write_key))
    assert r.status_code == 200, r.text
    assert "rejected" not in r.json(), r.json()
    return r


def one(live, tenant):
    [row] = events(live.engine, tenant.id)
    return row


def close(a: datetime, b: datetime, within: float = 1.0) -> bool:
    return abs((a - b).total_seconds()) <= within


def test_received_at_is_stamped_by_the_server(live, http, tenant):
    before = datetime.now(UTC)
    post_batch(http, tenant, [{"type": "track", "userId": "u", "event": "e"}])
    after = datetime.now(UTC)

    row = one(live, tenant)
    received = parse_iso(row.payload["receivedAt"])
    assert before - timedelta(seconds=1) <= received <= after + timedelta(seconds=1)
    assert close(row.received_at, received, 0.001)


def test_a_client_supplied_received_at_is_overwritten(live, http, tenant):
    post_batch(
        http,
        tenant,
        [{"type": "track", "userId": "u", "event": "e", "receivedAt": "2001-01-01T00:00:00Z"}],
    )

    assert parse_iso(one(live, tenant).payload["receivedAt"]).year >= 2025


@pytest.mark.parametrize("sent_at_where", ["batch", "item"])
def test_clock_skew_is_corrected_from_sent_at_and_original_timestamp(
    live, http, tenant, sent_at_where
):
    """The device clock is an hour slow; the event happened 10 minutes before it was sent."""
    now = datetime.now(UTC)
    device_sent = now - timedelta(hours=1)
    item = {
        "type": "track",
        "userId": "u",
        "event": "e",
        "originalTimestamp": iso(device_sent - timedelta(minutes=10)),
    }
    top = {}
    if sent_at_where == "batch":
        top["sentAt"] = iso(device_sent)
    else:
        item["sentAt"] = iso(device_sent)

    post_batch(http, tenant, [item], **top)

    row = one(live, tenant)
    received = parse_iso(row.payload["receivedAt"])
    expected = received - timedelta(minutes=10)  # timestamp = receivedAt - (sentAt - original)
    assert close(parse_iso(row.payload["timestamp"]), expected)
    assert close(row.timestamp, expected)
    assert row.payload["originalTimestamp"] == item["originalTimestamp"]


def test_an_explicit_timestamp_is_kept_as_sent(live, http, tenant):
    """Server SDKs and historical imports set `timestamp`; no skew correction applies."""
    post_batch(
        http,
        tenant,
        [
            {
                "type": "track",
                "userId": "u",
                "event": "e",
                "timestamp": "2020-02-29T12:30:00.250+03:00",
                "originalTimestamp": "2020-02-29T09:00:00Z",
                "sentAt": "2026-01-01T00:00:00Z",
            }
        ],
    )

    row = one(live, tenant)
    given = datetime(2020, 2, 29, 9, 30, 0, 250_000, tzinfo=UTC)
    assert parse_iso(row.payload["timestamp"]) == given
    assert row.timestamp == given


def test_an_original_timestamp_without_sent_at_is_used_as_is(live, http, tenant):
    post_batch(
        http,
        tenant,
        [
            {
                "type": "track",
                "userId": "u",
                "event": "e",
                "originalTimestamp": "2021-05-01T10:00:00Z",
            }
        ],
    )

    assert one(live, tenant).timestamp == datetime(2021, 5, 1, 10, tzinfo=UTC)


def test_without_any_time_the_event_is_stamped_with_received_at(live, http, tenant):
    post_batch(http, tenant, [{"type": "track", "userId": "u", "event": "e"}])

    row = one(live, tenant)
    assert row.payload["timestamp"] == row.payload["receivedAt"]


def test_context_ip_is_filled_from_the_request_when_absent(live, http, tenant):
    post_batch(http, tenant, [{"type": "track", "userId": "u", "event": "e"}])

    assert one(live, tenant).payload["context"]["ip"] == "127.0.0.1"


def test_context_ip_given_by_the_client_is_kept(live, http, tenant):
    post_batch(
        http, tenant, [{"type": "track", "userId": "u", "event": "e", "context": {"ip": "8.8.8.8"}}]
    )

    assert one(live, tenant).payload["context"]["ip"] == "8.8.8.8"


def test_context_direct_asks_for_the_request_ip(live, http, tenant):
    context = {"ip": "8.8.8.8", "direct": True}
    post_batch(http, tenant, [{"type": "track", "userId": "u", "event": "e", "context": context}])

    stored = one(live, tenant).payload["context"]
    assert stored["ip"] == "127.0.0.1"
    assert stored["direct"] is True


def test_batch_context_and_integrations_are_merged_into_each_item(live, http, tenant):
    items = [
        {
            "type": "track",
            "userId": "u",
            "event": "own",
            "messageId": "own",
            "context": {"library": {"name": "item-lib"}, "ip": "1.2.3.4"},
            "integrations": {"Mixpanel": False},
        },
        {"type": "page", "anonymousId": "a", "messageId": "plain"},
    ]
    post_batch(
        http,
        tenant,
        items,
        context={"library": {"name": "batch-lib"}, "locale": "ru-RU"},
        integrations={"All": False, "Mixpanel": True},
    )

    rows = by_message_id(live.engine, tenant.id)
    own, plain = rows["own"].payload, rows["plain"].payload
    # The item's own keys win; batch keys fill the gaps.
    assert own["context"]["library"] == {"name": "item-lib"}
    assert own["context"]["locale"] == "ru-RU"
    assert own["context"]["ip"] == "1.2.3.4"
    assert own["integrations"] == {"All": False, "Mixpanel": False}
    assert plain["context"]["library"] == {"name": "batch-lib"}
    assert plain["context"]["locale"] == "ru-RU"
    assert plain["integrations"] == {"All": False, "Mixpanel": True}


def test_a_missing_message_id_is_generated_as_a_uuid(live, http, tenant):
    post_batch(
        http,
        tenant,
        [
            {"type": "track", "userId": "u", "event": "first"},
            {"type": "track", "userId": "u", "event": "second", "messageId": ""},
        ],
    )

    rows = events(live.engine, tenant.id)
    ids = [row.message_id for row in rows]
    assert len(set(ids)) == 2
    for row in rows:
        assert str(uuid.UUID(row.message_id)) == row.message_id
        assert row.payload["messageId"] == row.message_id


def test_a_given_message_id_is_kept(live, http, tenant):
    post_batch(
        http, tenant, [{"type": "track", "userId": "u", "event": "e", "messageId": "mine-1"}]
    )

    row = one(live, tenant)
    assert row.message_id == row.payload["messageId"] == "mine-1"


def test_the_write_key_is_never_stored(live, http, tenant):
    item = {"type": "track", "userId": "u", "event": "e", "writeKey": tenant.write_key}
    r = http.post("/v1/batch", json={"batch": [item], "writeKey": tenant.write_key})
    assert r.status_code == 200
    r = http.post("/v1/track", json={"userId": "u", "event": "e2", "writeKey": tenant.write_key})
    assert r.status_code == 200

    for row in events(live.engine, tenant.id):
        assert "writeKey" not in row.payload
        assert tenant.write_key not in str(row.payload)


def test_unknown_fields_are_kept_exactly_as_sent(live, http, tenant):
    item = {
        "type": "page",
        "anonymousId": "a",
        "name": "Каталог",
        "category": "Shop",
        "channel": "server",
        "version": 2,
        "custom": {"nested": [1, 2.5, None, True, "ж"]},
        "properties": {"url": "https://shop.example/ru/каталог"},
    }
    post_batch(http, tenant, [item])

    stored = one(live, tenant).payload
    for key in ("name", "category", "channel", "version", "custom", "properties"):
        assert stored[key] == item[key]


def test_ids_are_stored_as_strings_and_in_columns(live, http, tenant):
    post_batch(
        http,
        tenant,
        [{"type": "track", "userId": 42, "anonymousId": " anon-1 ", "event": " Viewed "}],
    )

    row = one(live, tenant)
    assert (row.user_id, row.anonymous_id, row.name) == ("42", "anon-1", "Viewed")
    assert row.payload["userId"] == "42"
    assert row.payload["event"] == " Viewed "  # the payload keeps what was sent


def test_nul_characters_are_replaced_so_every_store_can_keep_them(live, http, tenant):
    """PostgreSQL can store no NUL in text or JSON; it becomes U+FFFD instead of a 500."""
    raw = (
        b'{"batch": [{"type": "track", "userId": "u\\u0000", "event": "e",'
        b' "properties": {"k\\u0000": "v\\u0000", "escaped": "\\\\u0000"}}]}'
    )

    r = http.post("/v1/batch", content=raw, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    row = one(live, tenant)
    assert row.user_id == "u\ufffd"
    assert row.payload["properties"] == {"k\ufffd": "v\ufffd", "escaped": "\\u0000"}
