"""Console users and signed-in HTTP clients for tests of the web console."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from otklik.kit.db import session_scope
from otklik.users import service as users

if TYPE_CHECKING:
    from tests.conftest import LiveServer

PASSWORD = "correct-horse-battery-9"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class ConsoleUser:
    email: str
    password: str
    role: str


def add_user(
    engine: Engine, workspace_id: uuid.UUID, role: str, *, email: str | None = None
) -> ConsoleUser:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(engine) as session:
        users.add_member(session, workspace_id, email=email, role=role, password=PASSWORD)
    return ConsoleUser(email, PASSWORD, role)


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class ConsoleClient:
    """An httpx client signed in as one user; `post` adds the session's CSRF token."""

    def __init__(self, base_url: str, user: ConsoleUser) -> None:
        self.user = user
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.csrf = ""
        self.sign_in()

    def sign_in(self) -> None:
        form = self.http.get("/login")
        response = self.http.post(
            "/login",
            data={
                "email": self.user.email,
                "password": self.user.password,
                "csrf_token": csrf_of(form.text),
                "next": "/",
            },
        )
        assert response.status_code == 303, response.text
        self.csrf = csrf_of(self.http.get("/account").text)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sign_in(
    page: Page, live: LiveServer, user: ConsoleUser, path: str = "/", *, arrive: bool = True
) -> None:
    """Sign in through the real form in a browser; by default wait until `path` is shown."""
    page.goto(f"{live.url}/login" + (f"?next={quote(path, safe='')}" if path != "/" else ""))
    page.fill("#email", user.email)
    page.fill("#password", user.password)
    page.click("button[type=submit]")
    if arrive:
        expect(page).to_have_url(f"{live.url}{path}")
