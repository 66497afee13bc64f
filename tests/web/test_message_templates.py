"""Message templates in the console: marketers and admins create and edit templates, see a
live preview rendered with a real customer, SMS parts and lengths while typing, get broken
templates back with the line, keep every save as a version, restore old ones and send tests."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from otklik.channels.logging_fake import OUTBOX
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.delivery.support import api, ok, person, set_up, settled
from tests.support.console import ConsoleClient, add_user

EMAIL = {
    "subject": "Hello, {{ profile.first_name|default('friend') }}",
    "body_format": "html",
    "body": '<p>Your city: {{ profile.traits.city }}</p>\n<a href="{{ unsubscribe_url }}">Stop</a>',
}
TEMPLATE_ID = re.compile(r"/templates/([0-9a-f-]{36})")


@pytest.fixture
def marketer(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "marketer")) as client:
        yield client


def create(
    client: ConsoleClient,
    *,
    channel: str = "email",
    key: str | None = None,
    purpose: str = "marketing",
    **content: str,
) -> tuple[str, str]:
    """Create a template through the form; returns its id and key."""
    key = key or f"t-{uuid.uuid4().hex[:8]}"
    fields = content or (EMAIL if channel == "email" else {"text": "Hi"})
    r = client.post(
        "/templates",
        {"channel": channel, "key": key, "name": f"Name {key}", "purpose": purpose, **fields},
    )
    assert r.status_code == 303, r.text
    found = TEMPLATE_ID.search(r.headers["location"])
    assert found and "notice=template_created" in r.headers["location"]
    return found.group(1), key


def preview(client: ConsoleClient, channel: str, **fields: str) -> str:
    r = client.post("/templates/preview", {"channel": channel, **fields})
    assert r.status_code == 200, r.text
    return r.text


def shown(html: str, name: str) -> str:
    found = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', html)
    assert found, f"no {name} in the page"
    return found.group(1).strip()


def save(client: ConsoleClient, template_id: str, **fields: str) -> httpx.Response:
    """Save a new version; the name is left out, so it stays as it was."""
    return client.post(f"/templates/{template_id}", {"purpose": "marketing", "topic": "", **fields})


def test_a_marketer_creates_an_email_template_and_finds_it_in_the_list_and_the_api(
    marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    form = marketer.get("/templates/new?channel=email")
    assert form.status_code == 200
    for name in ("subject", "preheader", "body_format", "body", "text", "key", "purpose", "topic"):
        assert f'id="f-{name}"' in form.text, name
    assert 'hx-trigger="input changed delay:400ms"' in form.text

    template_id, key = create(marketer, key="welcome.email")
    listing = marketer.get("/templates").text
    row = re.search(r'<tr data-template="welcome.email">.*?</tr>', listing, re.S)
    assert (
        row and "Name welcome.email" in row.group(0) and f"/templates/{template_id}" in row.group(0)
    )
    assert "Marketing" in row.group(0) and 'data-channel="email"' in row.group(0)
    assert 'data-template="welcome.email"' not in marketer.get("/templates?channel=sms").text

    found = ok(api(http, tenant, "GET", f"/templates/{key}"))
    assert found["id"] == template_id and found["current_version"] == 1
    assert found["content"] == EMAIL
    editor = marketer.get(f"/templates/{template_id}").text
    assert marketer.user.email in editor  # the author of version 1


def test_each_channel_shows_its_own_fields(marketer: ConsoleClient) -> None:
    expected = {
        "sms": {"text"},
        "telegram": {"text", "photo", "buttons"},
        "webpush": {"title", "text", "url", "icon"},
        "mobile_push": {"title", "text", "url", "icon"},
        "webhook": {"text", "subject"},
    }
    every = {"subject", "title", "preheader", "body_format", "body", "text", "photo", "url"}
    every |= {"icon", "buttons"}
    for channel, fields in expected.items():
        page = marketer.get(f"/templates/new?channel={channel}").text
        shown = {n for n in every if f'data-field="{n}"' in page}
        assert shown == fields, channel
    assert marketer.get("/templates/new?channel=fax").status_code == 422


def test_a_syntax_error_comes_back_with_the_field_and_line_and_nothing_is_saved(
    marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    body = "<p>Hi</p>\n<p>{{ profile.first_name }</p>\n<p>{% if x %}</p>"
    r = marketer.post(
        "/templates",
        {"channel": "email", "key": "broken", "purpose": "marketing", "subject": "S", "body": body},
    )
    assert r.status_code == 422
    error = re.search(r'data-field-error="body" data-line="(\d+)">([^\n]*)', r.text)
    assert error and error.group(1) == "2", r.text
    assert "Line 2:" in error.group(2)
    assert 'id="f-body"' in r.text and "{{ profile.first_name }" in r.text  # the text is kept
    assert api(http, tenant, "GET", "/templates/broken").status_code == 404

    template_id, key = create(marketer)
    r = save(marketer, template_id, subject="Hi {{ x", body="<p>ok</p>")
    assert r.status_code == 422
    assert re.search(r'data-field-error="subject" data-line="1"', r.text)
    assert ok(api(http, tenant, "GET", f"/templates/{key}"))["current_version"] == 1


def test_bad_input_is_shown_at_its_field(marketer: ConsoleClient) -> None:
    _, key = create(marketer)
    cases: list[tuple[dict[str, str], str]] = [
        ({"channel": "email", "key": key, "subject": "S", "body": "B"}, "key"),  # taken
        ({"channel": "email", "key": "Bad Key!", "subject": "S", "body": "B"}, "key"),
        ({"channel": "email", "key": "no-subject", "body": "B"}, "subject"),
        ({"channel": "sms", "key": "x1", "text": "t", "purpose": "spam"}, "purpose"),
        ({"channel": "sms", "key": "x2", "text": "t", "topic": "no-such-topic"}, "topic"),
        (
            {"channel": "telegram", "key": "x3", "text": "t", "buttons": "Ok | https://a\nnope"},
            "buttons",
        ),
    ]
    for fields, field in cases:
        r = marketer.post("/templates", {"purpose": "marketing", **fields})
        assert r.status_code == 422, fields
        assert f'data-field-error="{field}"' in r.text, (fields, r.text)
    r = marketer.post(
        "/templates",
        {"channel": "telegram", "key": "x4", "text": "t", "buttons": "Ok | https://a\nnope"},
    )
    assert 'data-field-error="buttons" data-line="2"' in r.text


def test_telegram_buttons_round_trip_through_the_form(
    marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    buttons = (
        "Open | https://shop.example/a || Help | https://shop.example/h\nCart | https://x.example/c"
    )
    template_id, key = create(marketer, channel="telegram", text="Hi", buttons=buttons)
    content = ok(api(http, tenant, "GET", f"/templates/{key}"))["content"]
    assert content["buttons"] == [
        [
            {"text": "Open", "url": "https://shop.example/a"},
            {"text": "Help", "url": "https://shop.example/h"},
        ],
        [{"text": "Cart", "url": "https://x.example/c"}],
    ]
    assert buttons in marketer.get(f"/templates/{template_id}").text


def test_the_preview_renders_a_real_customer_and_escapes_html_in_traits(
    live: LiveServer, marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    email = f"olga-{uuid.uuid4().hex[:6]}@example.org"
    person(live, http, tenant, email=email, first_name="<b>Olga</b>", city="Казань")
    fields = {**EMAIL, "subject": "Hi {{ profile.first_name }}", "preview_customer": email}
    fields["body"] += "\n<p>{{ profile.first_name }} {{ profle.first_name }}{{ data.x }}</p>"
    html = preview(marketer, "email", **fields)
    assert "<b>Olga</b>" not in html
    assert shown(html, "preview-subject") == "Hi &lt;b&gt;Olga&lt;/b&gt;"
    frame = re.search(r'<iframe[^>]*sandbox=""[^>]*srcdoc="([^"]*)"', html)
    assert frame, html
    # Escaped once by the template (autoescape), once more for the srcdoc attribute.
    assert "&amp;lt;b&amp;gt;Olga" in frame.group(1) and "Казань" in frame.group(1)
    assert "<script" not in frame.group(1)
    warning = shown(html, "unknown-variables")
    assert "profle" in warning and "data" not in warning  # data.* is known, if empty
    assert email in shown(html, "preview-person")

    with_data = preview(
        marketer, "sms", text="Order {{ data.order_id }}", preview_data='{"order_id": 42}'
    )
    assert shown(with_data, "preview-text") == "Order 42"
    sample = preview(marketer, "sms", text="Hi {{ profile.first_name }}", preview_customer="")
    assert shown(sample, "preview-text") == "Hi Анна"  # a made-up person of the region
    missing = preview(marketer, "sms", text="x", preview_customer="nobody@example.org")
    assert 'data-field="preview_customer"' in missing
    bad_json = preview(marketer, "sms", text="x", preview_data="[1, 2")
    assert 'data-field="preview_data"' in bad_json


def test_the_preview_shows_template_errors_with_the_line_instead_of_a_result(
    marketer: ConsoleClient,
) -> None:
    html = preview(marketer, "sms", text="one\ntwo {{ profile.x | nosuchfilter }}")
    error = re.search(r'<p data-field="text" data-line="(\d+)">', html)
    assert error and error.group(1) == "2", html
    assert 'data-testid="sms-counts"' not in html
    mjml = preview(marketer, "email", subject="S", body_format="mjml", body="<mjml><mj-body>")
    assert 'data-testid="preview-error"' in mjml


def test_sms_parts_and_encoding_are_counted_on_the_rendered_text(marketer: ConsoleClient) -> None:
    cases = [
        ("Ж" * 70, "UCS-2", "70", "1"),
        ("Ж" * 71, "UCS-2", "71", "2"),
        ("a" * 160, "GSM-7", "160", "1"),
        ("a" * 161, "GSM-7", "161", "2"),
    ]
    for text, encoding, chars, parts in cases:
        html = preview(marketer, "sms", text=text)
        assert shown(html, "sms-encoding") == encoding
        assert shown(html, "sms-chars") == chars
        assert shown(html, "sms-parts") == parts, text
    # What is counted is the rendered text, with the person's name in it.
    html = preview(marketer, "sms", text="Привет, {{ profile.first_name }}!" + "!" * 58)
    assert shown(html, "preview-text").startswith("Привет, Анна!")
    assert (shown(html, "sms-chars"), shown(html, "sms-parts")) == ("71", "2")


def test_push_and_telegram_lengths_are_counted_against_the_channel_limits(
    marketer: ConsoleClient,
) -> None:
    html = preview(marketer, "webpush", title="T" * 101, text="Body")
    title = re.search(r'data-testid="measure-title" class="over">(.*?)</li>', html, re.S)
    assert title and "101 of 100" in title.group(1) and "too long" in title.group(1)
    assert re.search(r'data-testid="measure-text" class="">\s*Text:\s*4 of 1,000', html)
    tg = preview(marketer, "telegram", text="x" * 1100, photo="https://shop.example/p.jpg")
    assert "1,100 of 4,096" in tg and "1,024" in tg


def test_versions_keep_every_save_and_an_old_one_can_be_restored(
    marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    template_id, key = create(marketer, channel="sms", text="First")
    r = save(marketer, template_id, text="Second")
    assert r.status_code == 303 and "notice=template_saved" in r.headers["location"]
    again = save(marketer, template_id, text="Second")
    assert "notice=template_unchanged" in again.headers["location"]
    editor = marketer.get(f"/templates/{template_id}").text
    assert re.findall(r'data-version="(\d+)"', editor) == ["2", "1"]
    assert editor.count(marketer.user.email) >= 2

    old = marketer.get(f"/templates/{template_id}/versions/1")
    assert old.status_code == 200 and ">First</textarea>" in old.text
    assert shown(old.text, "preview-text") == "First"
    assert marketer.get(f"/templates/{template_id}/versions/9").status_code == 404
    assert marketer.get(f"/templates/{template_id}/versions/0").status_code == 404

    r = marketer.post(f"/templates/{template_id}/versions/1/restore")
    assert r.status_code == 303 and "notice=template_restored" in r.headers["location"]
    found = ok(api(http, tenant, "GET", f"/templates/{key}"))
    assert (found["current_version"], found["content"]) == (3, {"text": "First"})
    assert (
        ok(api(http, tenant, "GET", f"/templates/{key}?version=2"))["content"]["text"] == "Second"
    )


def test_a_test_send_goes_out_through_the_logging_provider_with_a_customers_data(
    live: LiveServer, marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    set_up(http, tenant, channel="email")
    pid = person(live, http, tenant, consent=False, first_name="Вера")
    email = ok(api(http, tenant, "GET", f"/profiles/{pid}"))["email"]
    template_id, _ = create(marketer)
    save(marketer, template_id, subject="v2 for {{ profile.first_name }}", body="<p>v2</p>")
    r = marketer.post(
        f"/templates/{template_id}/test",
        {"test_address": "qa@example.com", "test_customer": email},
    )
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/messages/([0-9a-f-]{36})", r.headers["location"])
    assert found
    message = settled(http, tenant, found.group(1))
    assert message["state"] == "sent", message
    [out] = [m for m in OUTBOX.items() if str(m.message_id) == found.group(1)]
    assert (out.to, out.subject) == ("qa@example.com", "v2 for Вера")

    no_address = marketer.post(f"/templates/{template_id}/test", {"test_address": " "})
    assert no_address.status_code == 422 and 'data-field-error="test_address"' in no_address.text
    nobody = marketer.post(
        f"/templates/{template_id}/test",
        {"test_address": "qa@example.com", "test_customer": "nobody@example.org"},
    )
    assert nobody.status_code == 422 and 'data-field-error="test_customer"' in nobody.text


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_operators_and_viewers_are_refused(
    live: LiveServer, engine: Engine, tenant: Tenant, marketer: ConsoleClient, role: str
) -> None:
    template_id, _ = create(marketer)
    with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as client:
        attempts: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/templates", {}),
            ("GET", "/templates/new?channel=sms", {}),
            ("GET", f"/templates/{template_id}", {}),
            ("GET", f"/templates/{template_id}/versions/1", {}),
            ("POST", "/templates", {"channel": "sms", "key": "mine", "text": "x"}),
            ("POST", "/templates/preview", {"channel": "sms", "text": "x"}),
            ("POST", f"/templates/{template_id}", {"subject": "x", "body": "y"}),
            ("POST", f"/templates/{template_id}/versions/1/restore", {}),
            ("POST", f"/templates/{template_id}/test", {"test_address": "a@example.com"}),
        ]
        for method, path, data in attempts:
            r = client.get(path) if method == "GET" else client.post(path, data)
            assert r.status_code == 403, (method, path)
            assert "permission_denied" in r.text
        assert 'href="/templates"' not in client.get("/").text


def test_another_workspaces_template_is_not_found(
    live: LiveServer, engine: Engine, marketer: ConsoleClient
) -> None:
    other = make_tenant(engine)
    with ConsoleClient(live.url, add_user(engine, other.id, "admin")) as theirs:
        their_id, their_key = create(theirs, channel="sms", text="Secret")
    for path in (f"/templates/{their_id}", f"/templates/{their_id}/versions/1", "/templates/nope"):
        assert marketer.get(path).status_code == 404, path
    for path, data in (
        (f"/templates/{their_id}", {"text": "mine now"}),
        (f"/templates/{their_id}/versions/1/restore", {}),
        (f"/templates/{their_id}/test", {"test_address": "a@example.com"}),
    ):
        assert marketer.post(path, data).status_code == 404, path
    assert their_key not in marketer.get("/templates").text


def test_the_rest_preview_still_counts_sms_parts(
    marketer: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    _, key = create(marketer, channel="sms", text="Ж" * 71)
    found = ok(api(http, tenant, "POST", f"/templates/{key}/preview", json={}))
    assert found["text"] == "Ж" * 71
    assert found["sms"] == {"encoding": "UCS-2", "units": 71, "parts": 2}
