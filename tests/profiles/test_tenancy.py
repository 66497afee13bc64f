"""One workspace never sees, changes or erases another's people; the REST API needs a secret key."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import LiveServer, Tenant, make_tenant
from tests.profiles.support import get, lookup, merge, send, undo

NOBODY = "01890000-0000-7000-8000-000000000000"


@pytest.fixture
def other(live: LiveServer) -> Tenant:
    return make_tenant(live.engine)


def test_another_workspace_cannot_read_change_merge_export_or_erase_a_profile(
    live: LiveServer, http: httpx.Client, tenant: Tenant, other: Tenant
) -> None:
    send(
        http,
        tenant,
        {"type": "identify", "userId": "u-1", "traits": {"email": "shared@mail.ru"}},
        {"type": "identify", "userId": "u-2", "traits": {"email": "shared@mail.ru"}},
    )
    live.drain()
    one = lookup(http, tenant, "user_id", "u-1")
    two = lookup(http, tenant, "user_id", "u-2")
    assert one and two
    mine = merge(http, tenant, one["id"], two["id"])
    assert mine.status_code == 201
    merge_id = mine.json()["merge"]["id"]
    send(http, other, {"type": "identify", "userId": "u-own"})
    live.drain()
    theirs = lookup(http, other, "user_id", "u-own")
    assert theirs is not None
    as_other = other.bearer

    for path in ("", "/timeline", "/orders", "/export"):
        r = http.get(f"/api/v1/profiles/{one['id']}{path}", headers=as_other)
        assert (r.status_code, r.json()["code"]) == (404, "profile_not_found"), path
    r = http.get("/api/v1/merges", params={"profile_id": one["id"]}, headers=as_other)
    assert r.status_code == 404
    r = http.patch(f"/api/v1/profiles/{one['id']}/traits", json={"set": {"x": 1}}, headers=as_other)
    assert r.status_code == 404
    for winner, loser in ((theirs["id"], one["id"]), (one["id"], theirs["id"])):
        r = http.post(
            "/api/v1/profiles/merge",
            json={"winner_id": winner, "loser_id": loser},
            headers=as_other,
        )
        assert (r.status_code, r.json()["code"]) == (404, "profile_not_found")
    r = undo(http, other, merge_id)
    assert (r.status_code, r.json()["code"]) == (404, "merge_not_found")
    assert http.delete(f"/api/v1/profiles/{one['id']}", headers=as_other).status_code == 404

    # Nothing leaks into the other workspace's lists and searches.
    assert lookup(http, other, "user_id", "u-1") is None
    assert lookup(http, other, "email", "shared@mail.ru") is None
    assert [p["id"] for p in get(http, other, "/profiles")["items"]] == [theirs["id"]]
    assert get(http, other, "/profiles", q="shared@mail.ru")["items"] == []
    assert get(http, other, "/merges")["items"] == []
    assert get(http, other, "/profiles/duplicates") == []
    # And the owner's data is intact.
    still = get(http, tenant, f"/profiles/{one['id']}")
    assert still["erased"] is False and "x" not in still["traits"]
    assert undo(http, tenant, merge_id).status_code == 200


def test_the_same_identifier_in_two_workspaces_is_two_people(
    live: LiveServer, http: httpx.Client, tenant: Tenant, other: Tenant
) -> None:
    for t in (tenant, other):
        send(http, t, {"type": "identify", "userId": "same-id", "traits": {"email": "a@b.ru"}})
    live.drain()

    mine = lookup(http, tenant, "email", "a@b.ru")
    theirs = lookup(http, other, "email", "a@b.ru")
    assert mine and theirs and mine["id"] != theirs["id"]
    assert lookup(http, tenant, "user_id", "same-id") == mine
    assert get(http, tenant, "/profiles/duplicates") == []


def test_the_rest_api_wants_a_secret_key(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    paths = ["/api/v1/profiles", f"/api/v1/profiles/{NOBODY}", "/api/v1/merges"]
    for path in paths:
        r = http.get(path)
        assert (r.status_code, r.json()["code"]) == (401, "missing_api_key"), path
        r = http.get(path, headers={"Authorization": f"Bearer {tenant.write_key}"})
        assert (r.status_code, r.json()["code"]) == (403, "secret_key_required"), path
        basic = base64.b64encode(f"{tenant.write_key}:".encode()).decode()
        r = http.get(path, headers={"Authorization": f"Basic {basic}"})
        assert (r.status_code, r.json()["code"]) == (403, "secret_key_required"), path
        r = http.get(path, headers={"Authorization": "Bearer sk_not-a-key"})
        assert (r.status_code, r.json()["code"]) == (401, "invalid_api_key"), path
    r = http.delete(f"/api/v1/profiles/{NOBODY}")
    assert r.status_code == 401
    r = http.post("/api/v1/profiles/merge", json={"winner_id": NOBODY, "loser_id": NOBODY})
    assert r.status_code == 401
