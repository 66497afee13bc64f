"""Bad input and size limits: each answered with a stable code, and nothing half-stored.

Request-level problems (bad JSON, oversize body, bad gzip) are a 400 and store nothing.
Problems with one item of a batch reject that item only: the answer is 200 with the rejected
indexes, the valid items are stored, and each rejected item is kept in `rejected_event`.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from otklik.config import Settings
from tests.conftest import LiveServer, serve
from tests.ingest.support import basic, events, nothing_stored, rejected, wait_for

MAX_BATCH_BYTES = 200_000  # small, so oversize bodies are cheap to build
EVENT_CAP = 32 * 1024


@pytest.fixture(scope="module")
def capped(settings: Settings, engine) -> Iterator[LiveServer]:
    custom = settings.model_copy(update={"ingest_max_batch_bytes": MAX_BATCH_BYTES})
    with serve(custom, engine) as server:
        yield server


@pytest.fixture
def client(capped: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=capped.url, timeout=30) as c:
        yield c


def track(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u-1", "event": "Clicked", "messageId": f"m-{n}", **extra}


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


# -- request-level errors: 400, nothing stored ----------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"batch": [}', b""], ids=repr)
def test_invalid_json_is_400_invalid_json(capped, client, tenant, raw):
    r = client.post("/v1/batch", content=raw, headers=basic(tenant.write_key))

    _error(r, 400, "invalid_json")
    assert nothing_stored(capped.engine, tenant.id)


@pytest.mark.parametrize("raw", [b"[]", b'"track"', b"42", b"null", b"[{}]"], ids=repr)
def test_a_body_that_is_not_an_object_is_400_invalid_body(capped, client, tenant, raw):
    r = client.post("/v1/track", content=raw, headers=basic(tenant.write_key))

    _error(r, 400, "invalid_body")
    assert nothing_stored(capped.engine, tenant.id)


@pytest.mark.parametrize("batch", [None, {}, "x", 1], ids=repr)
def test_a_batch_without_a_batch_array_is_400_invalid_batch(capped, client, tenant, batch):
    r = client.post("/v1/batch", json={"batch": batch}, headers=basic(tenant.write_key))

    _error(r, 400, "invalid_batch")
    assert nothing_stored(capped.engine, tenant.id)


def _oversize_batch() -> bytes:
    padding = "x" * 1000
    items = [track(i, properties={"p": padding}) for i in range(MAX_BATCH_BYTES // 1000 + 10)]
    raw = orjson.dumps({"batch": items})
    assert len(raw) > MAX_BATCH_BYTES
    return raw


def test_a_body_over_the_cap_is_400_payload_too_large(capped, client, tenant):
    r = client.post("/v1/batch", content=_oversize_batch(), headers=basic(tenant.write_key))

    _error(r, 400, "payload_too_large")
    assert nothing_stored(capped.engine, tenant.id)


def test_a_streamed_body_over_the_cap_is_400_payload_too_large(capped, client, tenant):
    """No Content-Length (chunked): the cap is enforced while reading."""
    raw = _oversize_batch()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 16_384):
            yield raw[start : start + 16_384]

    r = client.post("/v1/batch", content=chunks(), headers=basic(tenant.write_key))

    assert "content-length" not in r.request.headers
    _error(r, 400, "payload_too_large")
    assert nothing_stored(capped.engine, tenant.id)


def test_a_declared_content_length_over_the_cap_is_refused_before_reading(capped, tenant):
    """Only the headers are sent: the server must answer without waiting for the body."""
    import socket

    host, port = capped.url.removeprefix("http://").split(":")
    key = basic(tenant.write_key)["Authorization"]
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BATCH_BYTES * 10}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        reply = sock.recv(65536).decode(errors="replace")

    assert reply.startswith("HTTP/1.1 400"), reply
    assert "payload_too_large" in reply
    assert nothing_stored(capped.engine, tenant.id)


def test_a_gzip_bomb_is_400_payload_too_large(capped, client, tenant):
    inflated = b'{"batch": [' + b" " * (MAX_BATCH_BYTES * 50) + b"]}"
    bomb = gzip.compress(inflated)
    assert len(bomb) < MAX_BATCH_BYTES // 10

    r = client.post(
        "/v1/batch",
        content=bomb,
        headers={**basic(tenant.write_key), "Content-Encoding": "gzip"},
    )

    _error(r, 400, "payload_too_large")
    assert nothing_stored(capped.engine, tenant.id)


def _gzipped_valid_batch(tenant) -> bytes:
    return gzip.compress(orjson.dumps({"batch": [track()], "writeKey": tenant.write_key}))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda good: b"definitely not gzip",
        lambda good: good[:10] + b"\x00" * 10 + good[20:],
        lambda good: good[:-8],  # the trailer (CRC and size) cut off
        lambda good: good[: len(good) // 2],
    ],
    ids=["not-gzip", "corrupt", "no-trailer", "truncated"],
)
def test_broken_gzip_is_400_invalid_gzip(capped, client, tenant, mangle):
    raw = mangle(_gzipped_valid_batch(tenant))

    r = client.post("/v1/batch", content=raw, headers={"Content-Encoding": "gzip"})

    _error(r, 400, "invalid_gzip")
    assert nothing_stored(capped.engine, tenant.id)


def test_an_unknown_content_encoding_is_400_unsupported_encoding(capped, client, tenant):
    r = client.post(
        "/v1/batch",
        content=orjson.dumps({"batch": [track()]}),
        headers={**basic(tenant.write_key), "Content-Encoding": "br"},
    )

    _error(r, 400, "unsupported_encoding")
    assert nothing_stored(capped.engine, tenant.id)


def test_more_than_2500_items_is_400_too_many_events(capped, client, tenant):
    items = [{"type": "track", "userId": "u", "event": "e"}] * 2501

    r = client.post("/v1/batch", json={"batch": items}, headers=basic(tenant.write_key))

    _error(r, 400, "too_many_events")
    assert nothing_stored(capped.engine, tenant.id)


def test_exactly_2500_items_are_accepted(capped, client, tenant):
    items = [{"type": "track", "userId": "u", "event": "e"}] * 2500

    r = client.post("/v1/batch", json={"batch": items}, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2500
    assert len(events(capped.engine, tenant.id)) == 2500


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_single_call_over_32kb_is_400_event_too_large(capped, client, tenant, encoding):
    body = orjson.dumps({"userId": "u-1", "event": "Big", "properties": {"p": "x" * EVENT_CAP}})
    headers = basic(tenant.write_key)
    if encoding:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": encoding}

    r = client.post("/v1/track", content=body, headers=headers)

    _error(r, 400, "event_too_large")
    assert not events(capped.engine, tenant.id)


def test_a_single_call_just_under_32kb_is_accepted(capped, client, tenant):
    body = {"userId": "u-1", "event": "Big", "properties": {"p": ""}}
    body["properties"]["p"] = "x" * (EVENT_CAP - len(orjson.dumps(body)))
    assert len(orjson.dumps(body)) == EVENT_CAP

    r = client.post("/v1/track", content=orjson.dumps(body), headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text


# -- item-level errors inside a batch: 200, the rest stored, the bad ones recorded ----------

BAD_ITEMS: list[tuple[str, dict[str, Any]]] = [
    ("event_too_large", track(properties={"p": "x" * EVENT_CAP})),
    ("missing_identity", {"type": "track", "event": "No One"}),
    ("missing_identity", {"type": "identify", "userId": "", "anonymousId": None}),
    ("missing_event", {"type": "track", "userId": "u-1"}),
    ("missing_event", {"type": "track", "userId": "u-1", "event": "   "}),
    ("missing_group_id", {"type": "group", "userId": "u-1"}),
    ("missing_identity", {"type": "alias", "userId": "u-1"}),
    ("invalid_timestamp", track(timestamp="yesterday")),
    ("invalid_timestamp", track(timestamp=1700000000)),
    ("invalid_timestamp", track(timestamp="9999-12-31T23:59:59-05:00")),
    (
        "invalid_timestamp",
        track(originalTimestamp="0001-01-01T00:00:00Z", sentAt="9999-12-31T00:00:00Z"),
    ),
    ("invalid_field", track(properties=["not", "an", "object"])),
    ("invalid_field", {"type": "identify", "userId": "u-1", "traits": "gold"}),
    ("invalid_field", track(context=7)),
    ("invalid_field", track(userId={"id": 1})),
    ("invalid_type", {"type": "purchase", "userId": "u-1"}),
    ("invalid_type", {"userId": "u-1", "event": "no type"}),
    ("invalid_event", "not an object"),
    ("invalid_message_id", track(messageId=12345)),
]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_invalid_items_are_rejected_one_by_one_and_the_rest_stored(capped, client, tenant, gzipped):
    items: list[Any] = [track(1000)]
    for _code, item in BAD_ITEMS:
        items.append(item)
    items.append(track(1001))
    raw = orjson.dumps({"batch": items})
    headers = basic(tenant.write_key)
    if gzipped:
        raw, headers = gzip.compress(raw), {**headers, "Content-Encoding": "gzip"}

    r = client.post("/v1/batch", content=raw, headers=headers)

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["success"] is True
    assert answer["accepted"] == 2
    assert [(x["index"], x["code"]) for x in answer["rejected"]] == [
        (i + 1, code) for i, (code, _item) in enumerate(BAD_ITEMS)
    ]
    assert all(x["message"] for x in answer["rejected"])
    assert [row.message_id for row in events(capped.engine, tenant.id)] == ["m-1000", "m-1001"]
    recorded = rejected(capped.engine, tenant.id)
    assert [row.code for row in recorded] == [code for code, _item in BAD_ITEMS]
    for row, (_code, item) in zip(recorded, BAD_ITEMS, strict=True):
        assert row.message
        expected = orjson.dumps(item).decode()
        assert row.payload == expected[: len(row.payload)]  # kept, truncated if huge


SINGLE_BAD: list[tuple[str, dict[str, Any], str]] = [
    ("track", {"userId": "u-1"}, "missing_event"),
    ("identify", {"traits": {"email": "a@b.ru"}}, "missing_identity"),
    ("group", {"userId": "u-1"}, "missing_group_id"),
    ("alias", {"userId": "u-1"}, "missing_identity"),
    ("page", {"anonymousId": "a-1", "timestamp": "not a time"}, "invalid_timestamp"),
    ("t", {"userId": "u-1", "event": "e", "properties": "x"}, "invalid_field"),
]


@pytest.mark.parametrize(("route", "body", "code"), SINGLE_BAD)
def test_an_invalid_single_call_is_400_with_its_code_and_recorded(
    capped, client, tenant, route, body, code
):
    r = client.post(f"/v1/{route}", json=body, headers=basic(tenant.write_key))

    _error(r, 400, code)
    assert not events(capped.engine, tenant.id)
    # The record for the debugger is written after the answer; it arrives shortly.
    [row] = wait_for(lambda: rejected(capped.engine, tenant.id))
    assert row.code == code
    assert orjson.loads(row.payload) == body


def test_an_event_nested_too_deep_to_store_is_rejected_not_a_500(capped, client, tenant):
    deep = "[" * 300 + "]" * 300
    raw = (
        '{"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"d": '
        + deep
        + '}}, {"type": "track", "userId": "u", "event": "ok", "messageId": "fine"}]}'
    ).encode()

    r = client.post("/v1/batch", content=raw, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    assert [(x["index"], x["code"]) for x in r.json()["rejected"]] == [(0, "too_deep")]
    assert [row.message_id for row in events(capped.engine, tenant.id)] == ["fine"]
    [row] = rejected(capped.engine, tenant.id)
    assert row.code == "too_deep"


def test_batch_context_nested_too_deep_rejects_the_items_it_is_merged_into(capped, client, tenant):
    deep = "[" * 300 + "]" * 300
    item = orjson.dumps(track()).decode()
    raw = ('{"batch": [' + item + '], "context": {"d": ' + deep + "}}").encode()

    r = client.post("/v1/batch", content=raw, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    assert [x["code"] for x in r.json()["rejected"]] == ["too_deep"]
    assert not events(capped.engine, tenant.id)
