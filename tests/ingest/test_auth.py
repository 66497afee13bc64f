"""Write keys: every way the SDKs send one, every way one can be wrong, and tenancy."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import make_tenant
from tests.ingest.support import basic, events, nothing_stored

TRACK = {"userId": "u-1", "event": "Signed Up"}


def _stored_one(live, tenant) -> None:
    [row] = events(live.engine, tenant.id)
    assert (row.type, row.name, row.user_id) == ("track", "Signed Up", "u-1")


def test_basic_auth_with_the_write_key_and_an_empty_password(live, http, tenant):
    r = http.post("/v1/track", json=TRACK, headers=basic(tenant.write_key))

    assert r.status_code == 200, r.text
    _stored_one(live, tenant)


def test_basic_auth_without_the_colon_still_works(live, http, tenant):
    r = http.post("/v1/track", json=TRACK, headers=basic(tenant.write_key, colon=False))

    assert r.status_code == 200, r.text
    _stored_one(live, tenant)


def test_write_key_in_the_body_without_a_header(live, http, tenant):
    r = http.post("/v1/track", json={**TRACK, "writeKey": tenant.write_key})

    assert r.status_code == 200, r.text
    _stored_one(live, tenant)


def test_bearer_token_with_the_write_key_in_the_body(live, http, tenant):
    """Segment's OAuth mode: the bearer token is the OAuth token, the key is in the body."""
    r = http.post(
        "/v1/batch",
        json={"batch": [{"type": "track", **TRACK}], "writeKey": tenant.write_key},
        headers={"Authorization": "Bearer some-oauth-access-token"},
    )

    assert r.status_code == 200, r.text
    _stored_one(live, tenant)


def test_basic_auth_with_an_empty_user_falls_back_to_the_body_key(live, http, tenant):
    headers = {"Authorization": "Basic " + base64.b64encode(b":").decode()}

    r = http.post("/v1/track", json={**TRACK, "writeKey": tenant.write_key}, headers=headers)

    assert r.status_code == 200, r.text
    _stored_one(live, tenant)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer some-oauth-access-token"}, {"Authorization": "Basic"}],
    ids=["nothing", "bearer-without-body-key", "empty-basic"],
)
def test_no_write_key_anywhere_is_401_missing_write_key(live, http, tenant, headers):
    r = http.post("/v1/track", json=TRACK, headers=headers)

    assert r.status_code == 401
    assert r.json()["code"] == "missing_write_key"
    assert r.json()["message"]
    assert nothing_stored(live.engine, tenant.id)


@pytest.mark.parametrize("where", ["basic", "body"])
def test_an_unknown_write_key_is_401_invalid_write_key(live, http, tenant, where):
    bogus = "wk_" + "x" * 32
    if where == "basic":
        r = http.post("/v1/track", json=TRACK, headers=basic(bogus))
    else:
        r = http.post("/v1/track", json={**TRACK, "writeKey": bogus})

    assert r.status_code == 401
    assert r.json()["code"] == "invalid_write_key"
    assert nothing_stored(live.engine, tenant.id)


def test_a_revoked_write_key_stops_working_at_once(live, http, tenant):
    # Warm the key cache first: revoking must clear it.
    assert http.post("/v1/track", json=TRACK, headers=basic(tenant.write_key)).status_code == 200
    keys = http.get("/api/v1/keys", headers=tenant.bearer).json()
    [write_key] = [k for k in keys if k["kind"] == "write"]

    revoke = http.delete(f"/api/v1/keys/{write_key['id']}", headers=tenant.bearer)
    assert revoke.status_code == 204

    r = http.post(
        "/v1/track", json={**TRACK, "event": "After Revoke"}, headers=basic(tenant.write_key)
    )
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_write_key"
    assert [row.name for row in events(live.engine, tenant.id)] == ["Signed Up"]


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"\xff\xfe:").decode(), "Digest abc"],
    ids=["not-base64", "not-utf8", "unknown-scheme"],
)
def test_a_malformed_authorization_header_is_401_invalid_authorization(
    live, http, tenant, authorization
):
    body = {**TRACK, "writeKey": tenant.write_key}

    r = http.post("/v1/track", json=body, headers={"Authorization": authorization})

    assert r.status_code == 401
    assert r.json()["code"] == "invalid_authorization"
    assert nothing_stored(live.engine, tenant.id)


def test_a_write_key_stores_into_its_own_workspace_only(live, http, engine, tenant):
    other = make_tenant(engine)

    mine = http.post(
        "/v1/track", json={**TRACK, "messageId": "m-1"}, headers=basic(tenant.write_key)
    )
    theirs = http.post(
        "/v1/track", json={**TRACK, "messageId": "m-2"}, headers=basic(other.write_key)
    )

    assert (mine.status_code, theirs.status_code) == (200, 200)
    assert [row.message_id for row in events(live.engine, tenant.id)] == ["m-1"]
    assert [row.message_id for row in events(live.engine, other.id)] == ["m-2"]


def test_the_basic_key_wins_over_a_different_key_in_the_body(live, http, engine, tenant):
    other = make_tenant(engine)
    body = {**TRACK, "writeKey": other.write_key}

    assert http.post("/v1/track", json=body, headers=basic(tenant.write_key)).status_code == 200

    assert len(events(live.engine, tenant.id)) == 1
    assert nothing_stored(live.engine, other.id)


def test_a_write_key_cannot_call_the_rest_api(http, tenant):
    r = http.get("/api/v1/keys", headers={"Authorization": f"Bearer {tenant.write_key}"})

    assert r.status_code == 403
    assert r.json()["code"] == "secret_key_required"


def test_a_key_name_with_a_nul_character_is_422_not_a_server_error(http, tenant):
    r = http.post("/api/v1/keys", json={"kind": "write", "name": "a\x00b"}, headers=tenant.bearer)

    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
