"""Workspace settings, API keys and users: admins only, validated, and no secret shown twice."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from otklik.kit.db import session_scope
from otklik.users import service as users
from otklik.workspaces import service as workspaces
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.support.console import PASSWORD, ConsoleClient, ConsoleUser, add_user

TOKEN = re.compile(r'id="new-token" type="text" readonly value="([^"]+)"')
TRACK = {"type": "track", "event": "Key Test", "userId": "u-1"}


@pytest.fixture
def admin(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "admin")) as client:
        yield client


def send_with(live: LiveServer, key: str) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/batch", json={"batch": [TRACK]}, auth=(key, ""), timeout=30)


def key_ids(engine: Engine, workspace_id: uuid.UUID) -> dict[str, uuid.UUID]:
    with session_scope(engine) as session:
        return {key.prefix: key.id for key in workspaces.list_keys(session, workspace_id)}


def member_ids(engine: Engine, workspace_id: uuid.UUID) -> dict[str, tuple[uuid.UUID, str]]:
    with session_scope(engine) as session:
        return {u.email: (u.id, role) for u, role in users.members(session, workspace_id)}


def create_key(admin: ConsoleClient, kind: str = "write", name: str = "Shop") -> str:
    response = admin.post("/settings/keys", {"kind": kind, "name": name})
    assert response.status_code == 201, response.text
    found = TOKEN.search(response.text)
    assert found, "the new key is not on the page"
    return found.group(1)


@pytest.mark.parametrize("role", ["marketer", "operator", "viewer"])
def test_every_settings_action_is_refused_to_other_roles(
    live: LiveServer, engine: Engine, tenant: Tenant, role: str
) -> None:
    admin_user = add_user(engine, tenant.id, "admin")
    admin_id, _ = member_ids(engine, tenant.id)[admin_user.email]
    [key_id, *_] = key_ids(engine, tenant.id).values()
    keys_before = key_ids(engine, tenant.id)
    with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as client:
        me, _ = member_ids(engine, tenant.id)[client.user.email]
        answers = [
            client.get("/settings"),
            client.get("/settings/keys"),
            client.get("/settings/users"),
            client.post("/settings", {"name": "Taken", "timezone": "UTC"}),
            client.post("/settings/keys", {"kind": "secret", "name": "mine"}),
            client.post(f"/settings/keys/{key_id}/revoke"),
            client.post("/settings/users", {"email": "x@example.com", "role": "admin"}),
            client.post(f"/settings/users/{me}/role", {"role": "admin"}),
            client.post(f"/settings/users/{admin_id}/remove"),
        ]
    for answer in answers:
        assert answer.status_code == 403, answer.request.url
        assert "permission_denied" in answer.text
    assert key_ids(engine, tenant.id) == keys_before
    roles = {email: role for email, (_, role) in member_ids(engine, tenant.id).items()}
    assert roles == {admin_user.email: "admin", client.user.email: role}


def test_an_admin_saves_the_workspace_settings(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    page = admin.get("/settings")
    assert page.status_code == 200
    assert '<option value="Europe/Moscow"' in page.text
    assert 'value="RU" selected' in page.text and 'value="RUB" selected' in page.text

    saved = admin.post(
        "/settings",
        {
            "name": "  Shop Two  ",
            "timezone": "Asia/Yekaterinburg",
            "default_region": "kz",
            "currency": "kzt",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings?notice=saved"
    with session_scope(engine) as session:
        ws = workspaces.get_workspace(session, tenant.id)
        stored = (ws.name, ws.timezone, ws.default_region, ws.currency)
    assert stored == ("Shop Two", "Asia/Yekaterinburg", "KZ", "KZT")
    again = admin.get("/settings?notice=saved").text
    assert "Saved." in again and 'value="Asia/Yekaterinburg" selected' in again


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "Choose a time zone from the list"),
        ("timezone", "../etc/passwd", "Choose a time zone from the list"),
        ("default_region", "XX", "Choose a region from the list"),
        ("default_region", "001", "Choose a region from the list"),
        ("currency", "ABC", "Choose a currency from the list"),
        ("name", "   ", "Enter a name."),
        ("name", "n" * 201, "at most 200 characters"),
    ],
)
def test_invalid_settings_are_refused_field_by_field(
    engine: Engine, tenant: Tenant, admin: ConsoleClient, field: str, value: str, message: str
) -> None:
    good = {"name": "Shop", "timezone": "Europe/Moscow", "default_region": "RU", "currency": "RUB"}
    response = admin.post("/settings", {**good, field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    assert response.text.count('class="field-error"') == 1
    with session_scope(engine) as session:
        ws = workspaces.get_workspace(session, tenant.id)
        assert (ws.name, ws.timezone) == (tenant.slug, "UTC")  # nothing saved


def test_the_sdk_snippets_point_at_this_server_with_a_placeholder_key(
    live: LiveServer, tenant: Tenant, admin: ConsoleClient
) -> None:
    page = admin.get("/settings").text
    host = live.url.removeprefix("http://")
    assert f'apiHost: "{host}/v1", protocol: "http"' in page  # analytics.js
    assert f'host: "{live.url}"' in page  # @segment/analytics-node
    assert f'analytics.host = "{live.url}"' in page
    assert f'rudder_analytics.dataPlaneUrl = "{live.url}"' in page
    assert 'write_key = "&lt;WRITE_KEY&gt;"' in page
    assert tenant.write_key not in page and tenant.secret_key not in page


def test_a_created_write_key_is_shown_once_and_works(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    created = admin.post("/settings/keys", {"kind": "write", "name": "Web shop"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    token = TOKEN.search(created.text).group(1)  # type: ignore[union-attr]
    assert token.startswith("wk_")
    assert "shown only this once" in created.text
    assert f'analytics.write_key = "{token}"' in created.text  # the snippet uses it

    assert send_with(live, token).status_code == 200

    listing = admin.get("/settings/keys").text
    assert "Web shop" in listing and token[:10] in listing
    for path in ("/settings", "/settings/keys", "/settings/users"):
        assert token not in admin.get(path).text
        assert token[10:] not in admin.get(path).text


def test_a_created_secret_key_opens_the_rest_api_and_is_never_listed(
    live: LiveServer, tenant: Tenant, admin: ConsoleClient
) -> None:
    token = create_key(admin, "secret", "Back office")
    assert token.startswith("sk_")
    answer = httpx.get(
        f"{live.url}/api/v1/workspace", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["slug"] == tenant.slug
    for path in ("/settings", "/settings/keys", "/settings/users"):
        text = admin.get(path).text
        assert token not in text and tenant.secret_key not in text


def test_a_bad_key_kind_is_refused(admin: ConsoleClient) -> None:
    response = admin.post("/settings/keys", {"kind": "root", "name": "x"})
    assert response.status_code == 422
    assert "Choose a write key or a secret key." in response.text
    assert 'id="new-token"' not in response.text


def test_a_revoked_key_stops_working(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    token = create_key(admin)
    assert send_with(live, token).status_code == 200  # now in the key cache
    key_id = key_ids(engine, tenant.id)[token[:10]]

    revoked = admin.post(f"/settings/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/settings/keys?notice=key_revoked"

    refused = send_with(live, token)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_write_key"
    listing = admin.get("/settings/keys").text
    assert "revoked" in listing
    assert f'/settings/keys/{key_id}/revoke"' not in listing  # no second revoke button
    assert admin.post(f"/settings/keys/{key_id}/revoke").status_code == 404


def test_another_workspaces_key_cannot_be_revoked(
    live: LiveServer, engine: Engine, admin: ConsoleClient
) -> None:
    other = make_tenant(engine)
    [their_key, *_] = key_ids(engine, other.id).values()
    response = admin.post(f"/settings/keys/{their_key}/revoke")
    assert response.status_code == 404
    assert send_with(live, other.write_key).status_code == 200


def test_the_form_needs_its_csrf_token(live: LiveServer, admin: ConsoleClient) -> None:
    response = admin.http.post("/settings/keys", data={"kind": "write", "name": "x"})
    assert response.status_code == 403
    assert "csrf_failed" in response.text


def test_an_admin_adds_a_user_who_can_then_sign_in(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    added = admin.post(
        "/settings/users", {"email": email, "role": "marketer", "password": PASSWORD, "name": "N"}
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/settings/users?notice=user_added"
    assert member_ids(engine, tenant.id)[email][1] == "marketer"
    assert email in admin.get("/settings/users").text
    with session_scope(engine) as session:
        hashes = [user.password_hash for user, _ in users.members(session, tenant.id)]
    for path in ("/settings", "/settings/keys", "/settings/users"):
        page = admin.get(path).text
        assert "$argon2" not in page
        assert not [h for h in hashes if h in page]
    with ConsoleClient(live.url, ConsoleUser(email, PASSWORD, "marketer")) as newcomer:
        assert newcomer.get("/").status_code == 200

    # Someone with an account elsewhere joins without a new password.
    other = make_tenant(engine)
    elsewhere = add_user(engine, other.id, "viewer")
    joined = admin.post("/settings/users", {"email": elsewhere.email, "role": "operator"})
    assert joined.status_code == 303
    assert member_ids(engine, tenant.id)[elsewhere.email][1] == "operator"


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"email": "not-an-email", "role": "viewer", "password": PASSWORD}, 422, "not a valid"),
        ({"email": "fresh@example.com", "role": "viewer"}, 422, "needs a password"),
        ({"email": "fresh@example.com", "role": "viewer", "password": "short"}, 422, "password"),
        ({"email": "fresh@example.com", "role": "owner", "password": PASSWORD}, 422, "roles"),
    ],
)
def test_adding_a_user_with_bad_input_says_why(
    engine: Engine, tenant: Tenant, admin: ConsoleClient, form: dict, status: int, message: str
) -> None:
    response = admin.post("/settings/users", form)
    assert response.status_code == status
    assert message in response.text
    assert 'role="alert"' in response.text
    assert form["email"] not in member_ids(engine, tenant.id)


def test_adding_a_member_twice_is_a_conflict(
    engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    response = admin.post("/settings/users", {"email": admin.user.email, "role": "viewer"})
    assert response.status_code == 409
    assert "already a member" in response.text


def test_roles_change_and_members_are_removed(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    viewer = add_user(engine, tenant.id, "viewer")
    viewer_id, _ = member_ids(engine, tenant.id)[viewer.email]

    changed = admin.post(f"/settings/users/{viewer_id}/role", {"role": "operator"})
    assert changed.status_code == 303
    assert changed.headers["location"] == "/settings/users?notice=role_changed"
    assert member_ids(engine, tenant.id)[viewer.email][1] == "operator"

    removed = admin.post(f"/settings/users/{viewer_id}/remove")
    assert removed.status_code == 303
    assert viewer.email not in member_ids(engine, tenant.id)
    assert admin.post(f"/settings/users/{viewer_id}/remove").status_code == 404


def test_the_last_admin_can_be_neither_demoted_nor_removed(
    engine: Engine, tenant: Tenant, admin: ConsoleClient
) -> None:
    me, _ = member_ids(engine, tenant.id)[admin.user.email]
    demoted = admin.post(f"/settings/users/{me}/role", {"role": "viewer"})
    assert demoted.status_code == 409
    assert "must keep at least one admin" in demoted.text
    removed = admin.post(f"/settings/users/{me}/remove")
    assert removed.status_code == 409
    assert "must keep at least one admin" in removed.text
    assert member_ids(engine, tenant.id)[admin.user.email][1] == "admin"

    # With a second admin, the first may step down.
    second = add_user(engine, tenant.id, "admin")
    assert admin.post(f"/settings/users/{me}/role", {"role": "viewer"}).status_code == 303
    assert member_ids(engine, tenant.id)[admin.user.email][1] == "viewer"
    assert admin.get("/settings").status_code == 403
    assert second.email in member_ids(engine, tenant.id)


def test_another_workspaces_members_are_out_of_reach(engine: Engine, admin: ConsoleClient) -> None:
    other = make_tenant(engine)
    outsider = add_user(engine, other.id, "viewer")
    outsider_id, _ = member_ids(engine, other.id)[outsider.email]
    assert admin.post(f"/settings/users/{outsider_id}/role", {"role": "admin"}).status_code == 404
    assert admin.post(f"/settings/users/{outsider_id}/remove").status_code == 404
    assert member_ids(engine, other.id)[outsider.email][1] == "viewer"
    assert outsider.email not in admin.get("/settings/users").text
