"""Signing in and out of the console, sessions, CSRF, and what each role may open."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from otklik.web.session import SESSION_COOKIE
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.support.console import PASSWORD, ConsoleClient, add_user, csrf_of


def login(client: httpx.Client, email: str, password: str, **extra: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, **extra}
    )


def test_pages_need_a_sign_in_and_remember_where_you_were_going(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        response = client.get("/account?x=1")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Faccount%3Fx%3D1"
        assert client.get("/").headers["location"] == "/login"
        htmx = client.get("/account", headers={"HX-Request": "true"})
        assert htmx.headers["HX-Redirect"].startswith("/login")


def test_signing_in_sets_a_safe_cookie_and_goes_to_the_page_asked_for(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    with httpx.Client(base_url=live.url) as client:
        response = login(client, user.email.upper(), PASSWORD, next="/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        cookie = response.headers["set-cookie"]
        assert f"{SESSION_COOKIE}=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie.replace("Lax", "lax")
        page = client.get("/account")
        assert page.status_code == 200
        assert user.email in page.text
        token = client.cookies[SESSION_COOKIE]
        assert token not in page.text
        assert "argon2" not in page.text
        assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_the_next_page_after_sign_in_is_never_another_site(
    live: LiveServer, engine: Engine, tenant: Tenant, target: str
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    with httpx.Client(base_url=live.url) as client:
        response = login(client, user.email, PASSWORD, next=target)
        assert response.headers["location"] == "/"


def test_wrong_password_and_unknown_email_get_the_same_answer(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    with httpx.Client(base_url=live.url) as client:
        wrong = login(client, user.email, "not-the-password")
        unknown = login(client, "nobody-here@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


def test_a_sign_in_form_without_its_token_is_refused(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    with httpx.Client(base_url=live.url) as client:
        response = client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"}
        )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_guessing_passwords_is_slowed_down(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "viewer")
    with httpx.Client(base_url=live.url) as client:
        codes = [login(client, user.email, f"guess-number-{i}").status_code for i in range(11)]
        assert codes[:10] == [401] * 10
        assert codes[10] == 429
        # Even the right password waits now.
        assert login(client, user.email, PASSWORD).status_code == 429


def test_posts_without_the_session_csrf_token_are_refused(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as console:
        forged = console.http.post("/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        assert "csrf_failed" in forged.text
        assert console.get("/account").status_code == 200
        header = console.http.post("/logout", headers={"X-CSRF-Token": console.csrf})
        assert header.status_code == 303


def test_signing_out_ends_the_session_on_the_server(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as console:
        token = console.http.cookies[SESSION_COOKIE]
        response = console.post("/logout")
        assert response.headers["location"] == "/login?notice=signed_out"
    with httpx.Client(base_url=live.url, cookies={SESSION_COOKIE: token}) as replay:
        assert replay.get("/account").status_code == 303


def test_changing_the_password_keeps_this_browser_signed_in(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "operator")
    with ConsoleClient(live.url, user) as console, ConsoleClient(live.url, user) as other:
        mismatch = console.post(
            "/account/password",
            {"current": PASSWORD, "new": "new-password-22", "repeat": "new-password-23"},
        )
        assert mismatch.status_code == 422
        response = console.post(
            "/account/password",
            {"current": PASSWORD, "new": "new-password-22", "repeat": "new-password-22"},
        )
        assert response.status_code == 303
        assert console.get("/account").status_code == 200
        assert other.get("/account").status_code == 303


def test_a_user_switches_between_their_workspaces_only(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    user = add_user(engine, tenant.id, "admin")
    second = make_tenant(engine)
    stranger = make_tenant(engine)
    add_user(engine, second.id, "viewer", email=user.email)
    with ConsoleClient(live.url, user) as console:
        home = console.get("/")
        assert second.slug in home.text
        assert console.post("/workspace", {"workspace_id": str(second.id)}).status_code == 303
        assert f"<h1>{second.slug}</h1>" in console.get("/").text
        denied = console.post("/workspace", {"workspace_id": str(stranger.id)})
        assert denied.status_code == 403


def test_the_interface_speaks_russian_when_asked(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    with httpx.Client(base_url=live.url) as client:
        page = client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
        assert 'lang="ru"' in page.text
        assert "Войти" in page.text
        english = client.get("/login", headers={"Accept-Language": "de-DE,en;q=0.5"})
        assert 'lang="en"' in english.text
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as console:
        response = console.post("/language", {"locale": "ru", "next": "/account"})
        assert response.headers["location"] == "/account"
        assert 'lang="ru"' in console.get("/account").text


def test_the_dashboard_counts_customers_and_todays_events(
    live: LiveServer, engine: Engine, tenant: Tenant
) -> None:
    batch = {
        "batch": [
            {"type": "identify", "userId": f"u{i}", "traits": {"email": f"p{i}@example.com"}}
            for i in range(3)
        ]
        + [{"type": "track", "anonymousId": "anon-1", "event": "Product Viewed"}]
    }
    with httpx.Client(base_url=live.url, auth=(tenant.write_key, "")) as sdk:
        assert sdk.post("/v1/batch", json=batch).status_code == 200
    live.drain()
    with ConsoleClient(live.url, add_user(engine, tenant.id, "viewer")) as console:
        page = console.get("/").text
    assert 'data-testid="customers-count">4<' in page
    assert 'data-testid="events-today">4<' in page
    assert "75%" in page


def test_console_pages_cannot_be_framed_or_sniffed(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        page = client.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
