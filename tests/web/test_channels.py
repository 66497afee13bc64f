"""Channel settings in the console: providers added and edited through a form generated from
the provider's config, secrets never shown again, admins only, and a test send that really
goes through the pipeline."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from otklik.channels import registry
from otklik.channels import service as channels
from otklik.channels.logging_fake import OUTBOX
from otklik.delivery import repository as delivery_repo
from otklik.kit.db import session_scope, write_tx
from tests.conftest import LiveServer, Tenant, make_tenant
from tests.delivery.support import api, ok, person, settled, template
from tests.support.console import ConsoleClient, add_user
from tests.support.fake_telegram import BOT_USERNAME, TOKEN, FakeTelegram

MASK = "**********"
SMTP_PASSWORD = "pa55-Very-Secret-ZQX"
SMTP = {
    "config.host": "smtp.shop.example",
    "config.port": "587",
    "config.security": "starttls",
    "config.username": "mailer",
    "config.password": SMTP_PASSWORD,
    "config.from_address": "shop@shop.example",
    "config.from_name": "Shop",
    "config.pool_size": "4",
    "config.max_messages_per_connection": "100",
    "config.validate_certs": "true",
}
LOCATION = re.compile(r"/settings/channels\?notice=channel_added#c-([0-9a-f-]{36})$")


@pytest.fixture
def admin(live: LiveServer, engine: Engine, tenant: Tenant) -> Iterator[ConsoleClient]:
    with ConsoleClient(live.url, add_user(engine, tenant.id, "admin")) as client:
        yield client


def stored(engine: Engine, tenant: Tenant, channel_id: str) -> Any:
    with session_scope(engine, write=False) as session:
        return channels.get(session.connection(), tenant.id, uuid.UUID(channel_id))


def add(
    client: ConsoleClient, kind: str, provider: str, name: str, **fields: str
) -> httpx.Response:
    data = {"kind": kind, "provider": provider, "name": name, "enabled": "true", **fields}
    return client.post("/settings/channels/new", data)


def added(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = LOCATION.search(response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def field_error(page: str, name: str) -> str:
    found = re.search(rf'id="cfg-{name}-error">([^<]*)<', page)
    assert found, f"no message beside {name}"
    return html.unescape(found.group(1))


def test_an_admin_adds_an_smtp_provider_through_the_form_and_sees_it_listed(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    listing = admin.get("/settings/channels")
    assert listing.status_code == 200
    assert 'action="/settings/channels/new"' in listing.text
    assert '<option value="smtp" selected>' in listing.text  # real providers come first

    form = admin.get("/settings/channels/new", params={"kind": "email", "provider": "smtp"})
    assert form.status_code == 200
    for name in ("host", "port", "password", "from_address", "rate_per_second"):
        assert f'id="cfg-{name}"' in form.text
    assert 'type="password" id="cfg-password"' in form.text
    assert '<option value="starttls" selected>' in form.text  # the model's default

    channel_id = added(add(admin, "email", "smtp", "Main mail", is_default="true", **SMTP))
    row = stored(engine, tenant, channel_id)
    assert row.config["port"] == 587 and row.config["password"] == SMTP_PASSWORD
    assert row.is_default and row.enabled

    page = admin.get("/settings/channels").text
    assert "Main mail" in page and "SMTP server" in page
    assert f'id="c-{channel_id}"' in page
    assert "/hooks/receipts/" in page  # SMTP takes bounce webhooks

    # The stored secret is on no page: not the list, not the edit form.
    for path in ("/settings/channels", f"/settings/channels/{channel_id}"):
        shown = admin.get(path).text
        assert SMTP_PASSWORD not in shown, path
    edit = admin.get(f"/settings/channels/{channel_id}").text
    assert f'id="cfg-password" name="config.password" value="{MASK}"' in edit
    assert 'value="smtp.shop.example"' in edit


def test_every_registered_provider_has_a_form_with_every_setting(admin: ConsoleClient) -> None:
    for (kind, provider), adapter in registry.ADAPTERS.items():
        page = admin.get(
            "/settings/channels/new", params={"kind": kind.value, "provider": provider}
        )
        assert page.status_code == 200, (kind, provider)
        for name in adapter.config_class.model_fields:
            assert f'name="config.{name}"' in page.text, (kind, provider, name)
    unknown = admin.get("/settings/channels/new", params={"kind": "email", "provider": "pigeon"})
    assert unknown.status_code == 422 and "unknown_provider" in unknown.text


def test_a_bad_config_comes_back_with_a_message_beside_each_field(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    bad = {**SMTP, "config.port": "five-eight-seven", "config.from_address": ""}
    response = add(admin, "email", "smtp", "Broken", **bad)
    assert response.status_code == 422
    assert "integer" in field_error(response.text, "port")
    assert field_error(response.text, "from_address") == "This field is required."
    assert 'value="five-eight-seven"' in response.text  # what was typed stays to be fixed
    assert 'value="smtp.shop.example"' in response.text

    lines = add(
        admin,
        "webhook",
        "http",
        "Hook",
        **{
            "config.url": "https://x.example/h",
            "config.secret": "s" * 20,
            "config.headers": "no colon here",
        },
    )
    assert lines.status_code == 422
    assert field_error(lines.text, "headers") == "Line 1: write it as name: value."

    nameless = add(admin, "email", "logging", "  ")
    assert nameless.status_code == 422 and 'id="ch-name-error">Enter a name.' in nameless.text
    with session_scope(engine, write=False) as session:
        assert channels.listing(session.connection(), tenant.id) == []


def test_saving_the_edit_form_keeps_masked_secrets_and_takes_new_ones(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    channel_id = added(add(admin, "email", "smtp", "Mail", **SMTP))
    edited = {**SMTP, "config.password": MASK, "config.from_name": "Shop team"}
    response = admin.post(f"/settings/channels/{channel_id}", {"name": "Mail", **edited})
    assert response.status_code == 303, response.text
    row = stored(engine, tenant, channel_id)
    assert row.config["password"] == SMTP_PASSWORD and row.config["from_name"] == "Shop team"
    assert not row.enabled  # the box was not ticked

    renewed = {**SMTP, "config.password": "new-pass-4567"}
    admin.post(f"/settings/channels/{channel_id}", {"name": "Mail", "enabled": "true", **renewed})
    assert stored(engine, tenant, channel_id).config["password"] == "new-pass-4567"

    # Secrets inside a dict (webhook headers) are masked one by one and kept the same way.
    hook = {
        "config.url": "https://hooks.shop.example/in",
        "config.secret": "hmac-secret-0123456789",
        "config.headers": "Authorization: Bearer tok-ABCDEF-987\nX-Shop: one",
    }
    hook_id = added(add(admin, "webhook", "http", "Hook", **hook))
    page = admin.get(f"/settings/channels/{hook_id}").text
    for secret in ("tok-ABCDEF-987", "hmac-secret-0123456789"):
        assert secret not in page and secret not in admin.get("/settings/channels").text
    assert f"Authorization: {MASK}" in page and f"X-Shop: {MASK}" in page  # JSONB may reorder
    back = {
        "config.url": "https://hooks.shop.example/in",
        "config.secret": MASK,
        "config.headers": f"Authorization: {MASK}\nX-Shop: two",
    }
    assert admin.post(f"/settings/channels/{hook_id}", {"name": "Hook", **back}).status_code == 303
    config = stored(engine, tenant, hook_id).config
    assert config["headers"] == {"Authorization": "Bearer tok-ABCDEF-987", "X-Shop": "two"}
    assert config["secret"] == "hmac-secret-0123456789"


def test_a_rejected_edit_names_the_field_and_never_echoes_the_stored_secret(
    admin: ConsoleClient,
) -> None:
    channel_id = added(add(admin, "email", "smtp", "Mail", **SMTP))
    bad = {**SMTP, "config.password": MASK, "config.username": ""}  # a password needs a user
    response = admin.post(f"/settings/channels/{channel_id}", {"name": "Mail", **bad})
    assert response.status_code == 422
    assert "username" in response.text and SMTP_PASSWORD not in response.text

    added(add(admin, "email", "logging", "Other"))
    clash = admin.post(f"/settings/channels/{channel_id}", {"name": "Other", **SMTP})
    assert clash.status_code == 409
    assert 'id="ch-name-error">Another provider of this channel has this name.' in clash.text


def test_a_provider_is_deleted_after_a_confirmation_page(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    channel_id = added(add(admin, "sms", "logging", "Texts"))
    confirm = admin.get(f"/settings/channels/{channel_id}/delete")
    assert confirm.status_code == 200 and "Yes, delete this provider" in confirm.text
    gone = admin.post(f"/settings/channels/{channel_id}/delete")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/settings/channels?notice=channel_deleted"
    assert admin.get(f"/settings/channels/{channel_id}").status_code == 404


@pytest.mark.parametrize("role", ["marketer", "operator", "viewer"])
def test_only_admins_see_or_change_providers(
    live: LiveServer, engine: Engine, tenant: Tenant, admin: ConsoleClient, role: str
) -> None:
    channel_id = added(add(admin, "email", "logging", "Log"))
    with ConsoleClient(live.url, add_user(engine, tenant.id, role)) as client:
        asks = [
            client.get("/settings/channels"),
            client.get("/settings/channels/new", params={"kind": "email", "provider": "smtp"}),
            client.get(f"/settings/channels/{channel_id}"),
            client.get(f"/settings/channels/{channel_id}/test"),
            add(client, "email", "logging", "Mine"),
            client.post(f"/settings/channels/{channel_id}", {"name": "Renamed"}),
            client.post(f"/settings/channels/{channel_id}/test", {"address": "a@b.example"}),
            client.post(f"/settings/channels/{channel_id}/delete"),
            client.post("/settings/channels/new/vapid", {"kind": "webpush", "provider": "vapid"}),
        ]
    for response in asks:
        assert response.status_code == 403, response.request.url
        assert "permission_denied" in response.text
    row = stored(engine, tenant, channel_id)
    assert row.name == "Log"


def test_another_workspaces_provider_is_not_found(
    live: LiveServer, engine: Engine, admin: ConsoleClient
) -> None:
    other = make_tenant(engine)
    with ConsoleClient(live.url, add_user(engine, other.id, "admin")) as theirs:
        their_id = added(add(theirs, "email", "smtp", "Theirs", **SMTP))
    for path in ("", "/test", "/delete"):
        assert admin.get(f"/settings/channels/{their_id}{path}").status_code == 404
    for path in ("", "/test", "/delete", "/check-bot", "/vapid"):
        response = admin.post(f"/settings/channels/{their_id}{path}", {"name": "Mine", **SMTP})
        assert response.status_code == 404, path
        assert SMTP_PASSWORD not in response.text
    assert admin.get("/settings/channels/not-an-id").status_code == 404
    assert stored(engine, other, their_id).name == "Theirs"


def test_a_test_send_goes_through_the_provider_and_opens_the_message(
    live: LiveServer, admin: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    channel_id = added(add(admin, "email", "logging", "Log mail", is_default="true"))
    empty = admin.get(f"/settings/channels/{channel_id}/test")
    assert 'id="no-templates"' in empty.text and 'href="/templates"' in empty.text

    ok(api(http, tenant, "PUT", "/delivery-settings", json={"quiet_hours": {"enabled": False}}))
    key = template(
        http,
        tenant,
        purpose="transactional",
        content={
            "subject": "Hi {{ profile.traits.first_name|default('you') }}",
            "body": "<p>x</p>",
            "body_format": "html",
        },
    )
    page = admin.get(f"/settings/channels/{channel_id}/test").text
    template_id = re.search(r'<option value="([0-9a-f-]{36})"[^>]*>[^<]*\(' + key, page)
    assert template_id, page
    assert f'value="{admin.user.email}"' in page  # an email test goes to oneself by default

    pid = person(live, http, tenant, first_name="Ольга", consent=False)
    customer = api(http, tenant, "GET", f"/profiles/{pid}").json()["email"]
    response = admin.post(
        f"/settings/channels/{channel_id}/test",
        {"template": template_id.group(1), "address": "tester@shop.example", "customer": customer},
    )
    assert response.status_code == 303, response.text
    message_id = response.headers["location"].removeprefix("/messages/")
    message = settled(http, tenant, message_id)
    assert message["state"] == "sent", message
    with session_scope(live.engine, write=False) as session:
        row = delivery_repo.message(session.connection(), tenant.id, uuid.UUID(message_id))
    assert row is not None and str(row.channel_config_id) == channel_id
    assert row.source == "test"
    [out] = [m for m in OUTBOX.items() if str(m.message_id) == message_id]
    assert out.to == "tester@shop.example" and out.subject == "Hi Ольга"


def test_a_test_send_with_bad_input_says_what_to_fix(
    admin: ConsoleClient, http: httpx.Client, tenant: Tenant
) -> None:
    channel_id = added(add(admin, "email", "logging", "Log mail"))
    sms_key = template(
        http, tenant, channel="sms", purpose="transactional", content={"text": "Code 1234"}
    )
    email_key = template(http, tenant, purpose="transactional")
    cases = [
        ({"template": "", "address": "a@shop.example"}, "template", "Choose a template."),
        ({"template": sms_key, "address": "a@shop.example"}, "template", "another channel"),
        ({"template": email_key, "address": " "}, "address", "Enter an address"),
        (
            {"template": email_key, "address": "a@shop.example", "customer": "nobody@x.example"},
            "customer",
            "No customer with that email",
        ),
    ]
    for data, slot, text in cases:
        response = admin.post(f"/settings/channels/{channel_id}/test", data)
        assert response.status_code == 422, data
        assert f'id="test-{slot}-error">' in response.text and text in response.text, data


def test_a_telegram_bot_token_is_checked_without_saving_or_showing_it(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    with FakeTelegram() as fake:
        fields = {"config.bot_token": TOKEN, "config.api_base": fake.api_base}
        data = {"kind": "telegram", "provider": "bot_api", "name": "Bot", **fields}
        good = admin.post("/settings/channels/new/check-bot", data)
        assert good.status_code == 200, good.text
        assert f"the bot is @{BOT_USERNAME}" in good.text
        assert (
            f'id="cfg-bot_username" name="config.bot_username" value="{BOT_USERNAME}"' in good.text
        )

        channel_id = added(add(admin, "telegram", "bot_api", "Bot", **fields))
        wrong = {"config.bot_token": "123:WRONG-token-value-xyz", "config.api_base": fake.api_base}
        refused = admin.post(f"/settings/channels/{channel_id}/check-bot", {"name": "Bot", **wrong})
        assert refused.status_code == 200 and "rejected the bot token" in refused.text
        # The stored token, checked from the edit form through its mask, is never shown.
        masked = {"config.bot_token": MASK, "config.api_base": fake.api_base}
        again = admin.post(f"/settings/channels/{channel_id}/check-bot", {"name": "Bot", **masked})
        assert f"@{BOT_USERNAME}" in again.text and TOKEN not in again.text
    assert TOKEN not in admin.get(f"/settings/channels/{channel_id}").text
    assert stored(engine, tenant, channel_id).config["bot_token"] == TOKEN


def test_a_saved_bot_connects_its_updates_by_webhook_or_polling(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    with FakeTelegram() as fake:
        fields = {
            "config.bot_token": TOKEN,
            "config.api_base": fake.api_base,
            "config.webhook_secret": "s3cret-s3cret-s3cret",
        }
        channel_id = added(add(admin, "telegram", "bot_api", "Bot", **fields))
        masked = {"name": "Bot", **fields, "config.bot_token": MASK}
        masked["config.webhook_secret"] = MASK
        connect = f"/settings/channels/{channel_id}/telegram-updates"
        # Telegram only calls https URLs: a plain-http install is told so.
        page = admin.post(connect, masked)
        assert "HTTPS URL must be provided" in page.text and fake.webhook is None
        with write_tx(engine) as conn:
            delivery_repo.save_delivery_settings(
                conn, tenant.id, {"public_url": "https://otklik.example"}
            )
        page = admin.post(connect, masked)
        assert page.status_code == 200, page.text
        assert fake.webhook is not None
        assert fake.webhook["url"].startswith("https://otklik.example/hooks/telegram/")
        assert fake.webhook["url"] in page.text
        assert fake.webhook.get("secret_token") == "s3cret-s3cret-s3cret"
        admin.post(f"/settings/channels/{channel_id}", {**masked, "config.updates": "polling"})
        page = admin.post(connect, masked)
        assert "polling" in page.text and fake.webhook is None
        assert "s3cret" not in page.text and TOKEN not in page.text


def test_vapid_keys_are_generated_into_the_form(
    admin: ConsoleClient, engine: Engine, tenant: Tenant
) -> None:
    data = {
        "kind": "webpush",
        "provider": "vapid",
        "name": "Push",
        "config.vapid_subject": "mailto:ops@shop.example",
    }
    page = admin.post("/settings/channels/new/vapid", data)
    assert page.status_code == 200, page.text
    public = re.search(
        r'id="cfg-vapid_public_key" name="config.vapid_public_key" value="([^"]+)"', page.text
    )
    private = re.search(
        r'id="cfg-vapid_private_key" name="config.vapid_private_key" value="([^"]+)"', page.text
    )
    assert public and private
    fields = {
        "config.vapid_public_key": public.group(1),
        "config.vapid_private_key": private.group(1),
    }
    channel_id = added(admin.post("/settings/channels/new", {**data, "enabled": "true", **fields}))
    assert stored(engine, tenant, channel_id).config["vapid_public_key"] == public.group(1)
    assert private.group(1) not in admin.get(f"/settings/channels/{channel_id}").text
