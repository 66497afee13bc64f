"""Telegram: a deep link binds a person's chat to their profile, the bot then reaches them,
and blocking the bot unsubscribes them. Updates arrive by webhook or by polling."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from otklik.channels.telegram import TelegramConfig
from tests.conftest import LiveServer, Tenant
from tests.delivery.support import api, ok, person, send_message, set_up, settled, template
from tests.support.fake_telegram import TOKEN, FakeTelegram, member_update, start_update

CHAT = 555001


def bot_config(fake: FakeTelegram, **extra: object) -> dict[str, object]:
    return {
        "bot_token": TOKEN,
        "api_base": fake.api_base,
        "bot_username": "otklik_test_bot",
        **extra,
    }


def hook_path(live: LiveServer, bot: dict[str, object]) -> str:
    """The bot's webhook on this test server (the app's public URL is another host)."""
    url = live.app.state.delivery.links.telegram_hook(uuid.UUID(str(bot["id"])))
    return "/" + url.split("/", 3)[3]


def consent_of(http: httpx.Client, tenant: Tenant, pid: str) -> dict[str, tuple[str, str]]:
    rows = ok(api(http, tenant, "GET", f"/profiles/{pid}/consents"))
    return {r["channel"]: (r["status"], r["source"]) for r in rows}


def test_a_deep_link_start_binds_the_chat_and_the_bot_can_then_write(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    with FakeTelegram() as fake:
        bot = set_up(
            http,
            tenant,
            channel="telegram",
            provider="bot_api",
            config=bot_config(fake, webhook_secret="s3cret-s3cret-s3cret"),
        )
        key = template(
            http,
            tenant,
            channel="telegram",
            content={"text": "Привет, {{ profile.traits.first_name }}!"},
        )
        pid = person(live, http, tenant, first_name="Анна")
        link = ok(api(http, tenant, "GET", f"/profiles/{pid}/telegram-link"))
        assert link["url"] == f"https://t.me/otklik_test_bot?start={link['token']}"
        hook = hook_path(live, bot)
        update = start_update(CHAT, f"/start {link['token']}")
        assert http.post(hook, json=update).status_code == 403  # no secret header
        r = http.post(
            hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-s3cret-s3cret"}
        )
        assert r.json() == {"outcome": "bound"}
        assert consent_of(http, tenant, pid)["telegram"] == ("granted", "telegram_start")
        found = ok(
            api(
                http,
                tenant,
                "GET",
                "/profiles/lookup",
                params={"type": "telegram", "value": str(CHAT)},
            )
        )
        assert found["id"] == pid
        msg = settled(
            http,
            tenant,
            ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
        )
        assert msg["state"] == "sent", msg
        assert [(m.chat_id, m.params["text"]) for m in fake.sent] == [(CHAT, "Привет, Анна!")]
        # Blocking the bot is an unsubscribe: the next marketing message is not sent.
        blocked = http.post(
            hook,
            json=member_update(CHAT, "member", "kicked"),
            headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-s3cret-s3cret"},
        )
        assert blocked.json() == {"outcome": "blocked"}
        assert consent_of(http, tenant, pid)["telegram"] == ("denied", "bot_blocked")
        again = settled(
            http,
            tenant,
            ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
        )
        assert again["state"] == "skipped"


def test_a_forged_start_token_binds_nothing(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    with FakeTelegram() as fake:
        bot = set_up(http, tenant, channel="telegram", provider="bot_api", config=bot_config(fake))
        hook = hook_path(live, bot)
        r = http.post(
            hook, json=start_update(CHAT + 1, "/start AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        )
        assert r.json() == {"outcome": "bad_token"}
        assert http.post(hook, content=b"{not json").status_code == 422
        assert http.post(hook.rsplit("/", 1)[0] + "/forged", json={}).status_code == 404


def test_polling_applies_updates_without_a_public_url(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    with FakeTelegram() as fake:
        set_up(
            http,
            tenant,
            channel="telegram",
            provider="bot_api",
            config=bot_config(fake, updates="polling"),
        )
        pid = person(live, http, tenant)
        token = ok(api(http, tenant, "GET", f"/profiles/{pid}/telegram-link"))["token"]
        fake.push_update(start_update(CHAT + 2, f"/start {token}"))
        deadline = time.monotonic() + 20
        while "telegram" not in consent_of(http, tenant, pid):
            assert time.monotonic() < deadline, "the poller did not bind the chat"
            time.sleep(0.1)
        assert consent_of(http, tenant, pid)["telegram"] == ("granted", "telegram_start")


def test_the_poller_confirms_updates_it_applied(live: LiveServer, tenant: Tenant) -> None:
    """Telegram forgets updates once the next getUpdates offset passes them."""
    from otklik.worker.telegram_poller import TelegramPoller

    with FakeTelegram() as fake:
        poller = TelegramPoller(live.engine, live.app.state.delivery.links, wait=0)
        row = type(
            "Row",
            (),
            {
                "id": 1,
                "workspace_id": tenant.id,
                "provider": "bot_api",
                "config": TelegramConfig(bot_token=TOKEN, api_base=fake.api_base).model_dump(
                    mode="json"
                )
                | {"bot_token": TOKEN},
                "name": "bot",
            },
        )()
        fake.push_update(start_update(CHAT + 3))
        assert asyncio.run(poller.poll_once(row)) == 1
        assert asyncio.run(poller.poll_once(row)) == 0
