"""Self-test of the browser helper's pure parts (the browser itself: tests/web)."""

from __future__ import annotations

import os

import pytest

from .browser import CHROMIUM_ENV, BrowserUnavailable, chromium_path, is_local_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/login",
        "http://127.5.0.1/",
        "https://localhost/x",
        "ws://[::1]:9000/live",
        "about:blank",
        "data:text/plain,hi",
        "blob:http://127.0.0.1:8000/1234",
    ],
)
def test_local_urls_pass(url: str) -> None:
    assert is_local_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://localhost.example.com/",
        "http://127.0.0.1.nip.io/",
        "ftp://127.0.0.1/",
        "chrome://version",
    ],
)
def test_other_urls_are_blocked(url: str) -> None:
    assert not is_local_url(url)


def test_chromium_path_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    with pytest.raises(BrowserUnavailable, match=r"scripts/setup\.sh"):
        chromium_path()
    monkeypatch.setenv(CHROMIUM_ENV, os.devnull)  # exists but is no executable file
    with pytest.raises(BrowserUnavailable):
        chromium_path()
