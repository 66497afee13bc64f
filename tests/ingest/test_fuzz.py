"""Whatever arrives, the server answers with a 2xx or a 4xx carrying a stable code; never a 5xx.

Two fuzzers: hypothesis posts random JSON shaped loosely like Segment calls (wrong types in
every field) to the tracking routes; schemathesis walks the app's own OpenAPI document and
calls every operation with generated valid and invalid input.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.ingest.support import basic

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "\x00", "a\x00b", "null", "ж" * 300, "\ud7ff", "0", "1e999"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Rare but real: deeper than the store's JSON encoder goes.
deep_values = st.integers(min_value=240, max_value=300).map(nested)
timestamps = (
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-05:00",
            "2026-13-45",
            "yesterday",
            "",
        ]
    )
    | json_values
)
ids = st.text(max_size=10) | st.integers() | st.floats(allow_nan=False) | json_values
objects = st.dictionaries(st.text(max_size=8), json_values | deep_values, max_size=5)

# A valid starting point per type, so most mutations get past the first check and reach
# the deeper code (timestamps, storage, the resolver) with one or two wrong fields.
VALID: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u-1", "traits": {"email": "A@Example.com", "phone": "89123456789"}},
    "track": {
        "userId": "u-1",
        "event": "Order Completed",
        "properties": {"order_id": "o-1", "revenue": 10.5, "products": [{"sku": "s", "price": 1}]},
    },
    "page": {"anonymousId": "a-1", "name": "Home"},
    "screen": {"anonymousId": "a-1", "name": "Cart"},
    "group": {"userId": "u-1", "groupId": "g-1"},
    "alias": {"userId": "u-1", "previousId": "a-1"},
}
FIELDS: dict[str, Any] = {
    "type": st.sampled_from([*VALID, "zzz", ""]) | json_values,
    "userId": ids,
    "anonymousId": ids,
    "previousId": ids,
    "groupId": ids,
    "event": st.text(max_size=30) | json_values,
    "name": st.text(max_size=30) | json_values,
    "messageId": st.text(max_size=140) | json_values,
    "properties": objects | json_values,
    "traits": objects | json_values,
    "context": st.dictionaries(
        st.sampled_from(["ip", "direct", "traits", "library", "device", "active", "externalIds"]),
        json_values,
    )
    | json_values,
    "integrations": json_values,
    "timestamp": timestamps,
    "originalTimestamp": timestamps,
    "sentAt": timestamps,
    "writeKey": json_values,
}


@st.composite
def messages(draw: Any) -> dict[str, Any]:
    """A valid Segment message with a few fields dropped or replaced by junk of any type."""
    kind = draw(st.sampled_from(sorted(VALID)))
    msg: dict[str, Any] = {"type": kind, **VALID[kind]}
    for key in draw(st.sets(st.sampled_from(sorted(msg)), max_size=2)):
        del msg[key]
    for key in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=4)):
        msg[key] = draw(FIELDS[key])
    return msg


batch_bodies = st.fixed_dictionaries(
    {"batch": st.lists(messages() | json_values, max_size=6)},
    optional={
        "context": json_values | objects,
        "integrations": json_values,
        "sentAt": timestamps,
    },
)
ROUTE_BODIES = {"batch": batch_bodies | messages() | json_values, "track": messages() | json_values}


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    if r.status_code >= 400:
        assert isinstance(body.get("code"), str) and body["code"], body
        assert isinstance(body.get("message"), str), body
    else:
        assert r.status_code == 200
        assert body["success"] is True


@pytest.fixture
def fuzz_http(live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("route", ["batch", "track"])
def test_random_json_never_causes_a_server_error(live, fuzz_http, tenant, route):
    headers = basic(tenant.write_key)

    @FUZZ
    @given(body=ROUTE_BODIES[route], gzipped=st.booleans())
    def post(body: Any, gzipped: bool) -> None:
        raw = json.dumps(body).encode()  # stdlib: also writes integers over 64 bits
        extra = {}
        if gzipped:
            raw, extra = gzip.compress(raw), {"Content-Encoding": "gzip"}
        check(fuzz_http.post(f"/v1/{route}", content=raw, headers={**headers, **extra}))

    post()
    # Whatever was accepted, the resolver can work it off (a poison event would stall it).
    live.drain(timeout=60)


@FUZZ
@given(raw=st.binary(max_size=300), encoding=st.sampled_from([None, "gzip", "identity", "br"]))
def test_random_bytes_never_cause_a_server_error(live, fuzz_http, tenant, raw, encoding):
    headers = basic(tenant.write_key)
    if encoding:
        headers["Content-Encoding"] = encoding
    check(fuzz_http.post("/v1/batch", content=raw, headers=headers))


@FUZZ
@given(authorization=st.text(max_size=60).filter(lambda h: h.isprintable() and h.isascii()))
def test_random_authorization_headers_never_cause_a_server_error(live, fuzz_http, authorization):
    body = {"batch": [{"type": "track", "userId": "u", "event": "e"}]}
    try:
        r = fuzz_http.post("/v1/batch", json=body, headers={"Authorization": authorization})
    except httpx.LocalProtocolError:
        return  # not a legal header value; no client can send it
    assert r.status_code in (200, 401), r.text
    if r.status_code == 401:
        assert r.json()["code"] in (
            "missing_write_key",
            "invalid_write_key",
            "invalid_authorization",
        )


# -- schemathesis over the OpenAPI document ---------------------------------------------------

OPERATION_EXAMPLES = 30


def fuzz_operation(operation: schemathesis.APIOperation, base_url: str, headers: dict) -> None:
    """Valid and invalid generated calls of one operation; raises on the first 5xx."""
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=OPERATION_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])

    call()


def test_every_openapi_operation_survives_schemathesis(live, tenant):
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/batch" for op in operations)
    failures: list[str] = []

    for operation in operations:
        if operation.path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {tenant.secret_key}"}
        else:
            headers = basic(tenant.write_key)
        try:
            fuzz_operation(operation, live.url, headers)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")

    assert not failures, "\n\n".join(failures)
