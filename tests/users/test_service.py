"""Console accounts: who may have one, what a role allows, and how sessions behave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from otklik.kit.db import session_scope
from otklik.kit.time import utc_now
from otklik.users import passwords
from otklik.users import service as users
from otklik.users.roles import Permission, allows
from tests.conftest import Tenant, make_tenant

PASSWORD = "correct-horse-battery-9"


def test_each_role_has_exactly_its_permissions() -> None:
    assert all(allows("admin", p) for p in Permission)
    assert allows("marketer", Permission.MANAGE_DATA)
    assert not allows("marketer", Permission.MANAGE_WORKSPACE)
    assert allows("operator", Permission.EDIT_CUSTOMERS)
    assert not allows("operator", Permission.MANAGE_DATA)
    assert allows("viewer", Permission.VIEW)
    assert not allows("viewer", Permission.EDIT_CUSTOMERS)
    assert not allows("owner", Permission.VIEW)


def test_passwords_are_hashed_with_argon2_and_checked() -> None:
    hashed = passwords.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert passwords.verify(hashed, PASSWORD)
    assert not passwords.verify(hashed, PASSWORD + "x")
    assert not passwords.verify(None, PASSWORD)
    assert not passwords.verify("not-a-hash", PASSWORD)


@pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaa", " " * 12, "x" * 300])
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.hash_password(weak)


def test_a_member_signs_in_and_gets_a_session_in_their_workspace(
    engine: Engine, tenant: Tenant
) -> None:
    now = utc_now()
    with session_scope(engine) as session:
        users.add_member(
            session, tenant.id, email="Ann@Example.COM", role="marketer", password=PASSWORD
        )
    with session_scope(engine) as session:
        user = users.authenticate(session, "ann@example.com", PASSWORD, now)
        token, _ = users.start_session(session, user, now)
    with session_scope(engine) as session:
        signed = users.signed_in(session, token, now)
    assert signed is not None
    assert signed.user.email == "ann@example.com"
    assert signed.workspace.id == tenant.id
    assert signed.role == "marketer"
    with session_scope(engine) as session:
        assert (
            users.signed_in(session, token, now + users.SESSION_TTL + timedelta(seconds=1)) is None
        )
        users.end_session(session, token)
    with session_scope(engine) as session:
        assert users.signed_in(session, token, now) is None


def test_wrong_password_unknown_email_and_garbage_fail_alike(
    engine: Engine, tenant: Tenant
) -> None:
    with session_scope(engine) as session:
        users.add_member(
            session, tenant.id, email="bob@example.com", role="viewer", password=PASSWORD
        )
    for email, password in [
        ("bob@example.com", "wrong-password-1"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ]:
        with session_scope(engine) as session, pytest.raises(users.InvalidCredentials) as caught:
            users.authenticate(session, email, password, utc_now())
        assert caught.value.code == "invalid_credentials"


def test_one_account_can_join_several_workspaces_with_different_roles(
    engine: Engine, tenant: Tenant
) -> None:
    other = make_tenant(engine)
    with session_scope(engine) as session:
        users.add_member(
            session, tenant.id, email="cat@example.com", role="admin", password=PASSWORD
        )
        user = users.add_member(
            session, other.id, email="cat@example.com", role="viewer", password=None
        )
    with session_scope(engine) as session:
        roles = {ws.id: role for ws, role in users.workspaces_of(session, user.id)}
        assert roles == {tenant.id: "admin", other.id: "viewer"}
        with pytest.raises(users.UserExists):
            users.add_member(
                session, other.id, email="cat@example.com", role="admin", password=None
            )


def test_the_last_admin_cannot_be_demoted_or_removed(engine: Engine, tenant: Tenant) -> None:
    with session_scope(engine) as session:
        admin = users.add_member(
            session, tenant.id, email="dan@example.com", role="admin", password=PASSWORD
        )
    with session_scope(engine) as session, pytest.raises(users.LastAdmin):
        users.set_role(session, tenant.id, admin.id, "viewer")
    with session_scope(engine) as session, pytest.raises(users.LastAdmin):
        users.remove_member(session, tenant.id, admin.id)
    with session_scope(engine) as session:
        users.add_member(
            session, tenant.id, email="eve@example.com", role="admin", password=PASSWORD
        )
    with session_scope(engine) as session:
        users.set_role(session, tenant.id, admin.id, "viewer")


def test_bad_member_input_is_refused_with_codes(engine: Engine, tenant: Tenant) -> None:
    with session_scope(engine) as session:
        with pytest.raises(users.InvalidEmail):
            users.add_member(session, tenant.id, email="nope", role="admin", password=PASSWORD)
        with pytest.raises(users.UnknownRole):
            users.add_member(
                session, tenant.id, email="f@example.com", role="owner", password=PASSWORD
            )
        with pytest.raises(passwords.WeakPassword):
            users.add_member(session, tenant.id, email="f@example.com", role="admin", password=None)


def test_changing_the_password_signs_out_other_sessions(engine: Engine, tenant: Tenant) -> None:
    now = utc_now()
    with session_scope(engine) as session:
        user = users.add_member(
            session, tenant.id, email="gus@example.com", role="viewer", password=PASSWORD
        )
        token, _ = users.start_session(session, user, now)
    with session_scope(engine) as session, pytest.raises(users.WrongPassword):
        users.change_password(session, user.id, "not-the-password", "another-password-2")
    with session_scope(engine) as session:
        users.change_password(session, user.id, PASSWORD, "another-password-2")
    with session_scope(engine) as session:
        assert users.signed_in(session, token, now) is None
        users.authenticate(session, "gus@example.com", "another-password-2", now)
