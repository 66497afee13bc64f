"""The Telegram Bot API adapter, against a fake Bot API server speaking Telegram's JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    Receipt,
    RetryLater,
    Sent,
)
from otklik.channels.telegram import (
    BlockedBot,
    IncomingText,
    StartCommand,
    TelegramApiError,
    TelegramBotAdapter,
    TelegramConfig,
    TelegramUser,
    UnblockedBot,
    deep_link,
    new_binding_token,
    parse_update,
    verify_webhook_secret,
)
from tests.support.fake_telegram import (
    BOT_USERNAME,
    TOKEN,
    FakeTelegram,
    member_update,
    start_update,
)

T = TypeVar("T")
CHAT = 42
BUTTONS = [
    [{"text": "Open cart", "url": "https://shop.example/cart"}],
    [{"text": "10", "callback_data": "nps:10"}, {"text": "0", "callback_data": "nps:0"}],
]
KEYBOARD = {
    "inline_keyboard": [
        [{"text": "Open cart", "url": "https://shop.example/cart"}],
        [{"text": "10", "callback_data": "nps:10"}, {"text": "0", "callback_data": "nps:0"}],
    ]
}
PHOTO = "https://shop.example/img/boots.jpg"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def config(api_base: str, **overrides: Any) -> TelegramConfig:
    return TelegramConfig(bot_token=SecretStr(TOKEN), api_base=api_base, **overrides)


def with_adapter(cfg: TelegramConfig, use: Callable[[TelegramBotAdapter], Awaitable[T]]) -> T:
    async def run() -> T:
        adapter = TelegramBotAdapter(cfg)
        try:
            return await use(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def send(cfg: TelegramConfig, text: str, to: str = str(CHAT), **data: Any) -> Any:
    msg = OutboundMessage(uuid.uuid4(), ChannelKind.TELEGRAM, to, text, data=data)
    return with_adapter(cfg, lambda adapter: adapter.send(msg))


# Sending


def test_text_with_buttons_goes_out_as_send_message_with_an_inline_keyboard(
    fake: FakeTelegram,
) -> None:
    result = send(config(fake.api_base), "Your cart is waiting", buttons=BUTTONS)

    assert result == Sent(provider_message_id="42:1", detail="sendMessage")
    [sent] = fake.sent
    assert sent.method == "sendMessage"
    assert sent.params == {
        "chat_id": CHAT,
        "text": "Your cart is waiting",
        "parse_mode": "HTML",
        "disable_web_page_preview": False,
        "reply_markup": KEYBOARD,
    }


def test_parse_mode_and_preview_follow_the_message_data(fake: FakeTelegram) -> None:
    send(config(fake.api_base), "plain", parse_mode=None, disable_web_page_preview=True)

    assert fake.sent[0].params == {
        "chat_id": CHAT,
        "text": "plain",
        "disable_web_page_preview": True,
    }


def test_a_photo_with_a_short_text_goes_out_as_one_captioned_photo(fake: FakeTelegram) -> None:
    result = send(config(fake.api_base), "<b>Boots</b> -20%", photo=PHOTO, buttons=BUTTONS)

    assert result == Sent(provider_message_id="42:1", detail="sendPhoto")
    [sent] = fake.sent
    assert sent.method == "sendPhoto"
    assert sent.params == {
        "chat_id": CHAT,
        "photo": PHOTO,
        "caption": "<b>Boots</b> -20%",
        "parse_mode": "HTML",
        "reply_markup": KEYBOARD,
    }


def test_a_text_too_long_for_a_caption_follows_the_photo_as_a_second_message(
    fake: FakeTelegram,
) -> None:
    text = "A long story about boots. " * 60  # 1560 characters, over the 1024 caption limit

    result = send(config(fake.api_base), text, photo=PHOTO, buttons=BUTTONS)

    photo, message = fake.sent
    assert photo.method == "sendPhoto"
    assert photo.params == {"chat_id": CHAT, "photo": PHOTO, "parse_mode": "HTML"}
    assert message.method == "sendMessage"
    assert message.params["text"] == text
    assert message.params["reply_markup"] == KEYBOARD
    assert result == Sent(provider_message_id="42:2", detail="sendMessage")


def test_a_photo_that_is_not_a_url_fails_before_calling_telegram(fake: FakeTelegram) -> None:
    result = send(config(fake.api_base), "hi", photo="/etc/passwd")

    assert isinstance(result, Failed) and result.code == "telegram_invalid_photo"
    assert fake.requests == []


@pytest.mark.parametrize(
    "buttons",
    [
        "not a list",
        [[{"text": "no target"}]],
        [[{"text": "both", "url": "https://x.example", "callback_data": "x"}]],
        [[{"text": "too much data", "callback_data": "x" * 65}]],
        [[{"text": "", "url": "https://x.example"}]],
        [[{"text": "script", "url": "javascript:alert(1)"}]],
        [[]],
    ],
)
def test_malformed_buttons_fail_before_calling_telegram(fake: FakeTelegram, buttons: Any) -> None:
    result = send(config(fake.api_base), "hi", buttons=buttons)

    assert isinstance(result, Failed) and result.code == "telegram_invalid_buttons"
    assert fake.requests == []


def test_a_single_button_dict_is_a_one_button_row(fake: FakeTelegram) -> None:
    send(config(fake.api_base), "hi", buttons=[{"text": "Go", "url": "https://x.example"}])

    keyboard = fake.sent[0].params["reply_markup"]
    assert keyboard == {"inline_keyboard": [[{"text": "Go", "url": "https://x.example"}]]}


# Results


def test_a_person_who_blocked_the_bot_is_a_permanent_failure_and_the_chat_is_gone(
    fake: FakeTelegram,
) -> None:
    fake.block(CHAT)

    result = send(config(fake.api_base), "hi")

    assert result == Failed(
        "telegram_blocked", "Forbidden: bot was blocked by the user", address_gone=True
    )
    assert fake.sent == []


def test_a_deactivated_account_is_gone_too(fake: FakeTelegram) -> None:
    fake.deactivate(CHAT)

    result = send(config(fake.api_base), "hi")

    assert result == Failed("telegram_blocked", "Forbidden: user is deactivated", True)


def test_an_unknown_chat_is_gone(fake: FakeTelegram) -> None:
    fake.forget(CHAT)

    result = send(config(fake.api_base), "hi")

    assert result == Failed("telegram_chat_not_found", "Bad Request: chat not found", True)


def test_other_bad_requests_fail_with_telegrams_description(fake: FakeTelegram) -> None:
    result = send(config(fake.api_base), "   ")

    assert result == Failed("telegram_bad_request", "Bad Request: message text is empty")


def test_429_asks_to_retry_after_telegrams_retry_after(fake: FakeTelegram) -> None:
    fake.rate_limit_next(retry_after=7)

    result = send(config(fake.api_base), "hi")

    assert result == RetryLater("telegram_rate_limited", "Too Many Requests: retry after 7", 7.0)
    assert fake.sent == []


def test_a_502_page_from_telegrams_front_end_is_retried(fake: FakeTelegram) -> None:
    fake.bad_gateway_next()

    result = send(config(fake.api_base), "hi")

    assert isinstance(result, RetryLater) and result.code == "telegram_server_error"


def test_a_timeout_is_retried(fake: FakeTelegram) -> None:
    fake.delay_next(2.0)
    started = time.monotonic()

    result = send(config(fake.api_base, timeout_seconds=0.3), "hi")

    assert isinstance(result, RetryLater) and result.code == "telegram_timeout"
    assert time.monotonic() - started < 1.5


def test_a_dropped_connection_is_retried(fake: FakeTelegram) -> None:
    fake.drop_next()

    result = send(config(fake.api_base), "hi")

    assert isinstance(result, RetryLater) and result.code == "telegram_connection"


def test_an_unreachable_api_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = send(config(f"http://127.0.0.1:{port}"), "hi")

    assert isinstance(result, RetryLater) and result.code == "telegram_connection"


def test_the_photo_failing_stops_before_the_text(fake: FakeTelegram) -> None:
    fake.rate_limit_next(retry_after=3)

    result = send(config(fake.api_base), "x" * 2000, photo=PHOTO)

    assert isinstance(result, RetryLater) and result.retry_after == 3.0
    assert [method for method, _ in fake.requests] == ["sendPhoto"]


# Addresses


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("42", "42"), (" 42 ", "42"), ("-1001234567890", "-1001234567890"), ("-5", "-5")],
)
def test_a_chat_id_is_an_integer_negative_for_groups(raw: str, canonical: str) -> None:
    adapter = TelegramBotAdapter(config("http://127.0.0.1:9"))

    assert adapter.normalise_address(raw) == canonical


@pytest.mark.parametrize("raw", ["", "abc", "4.2", "@channel", "0", "007", "--5", "1" * 20])
def test_anything_else_is_an_invalid_chat_id(raw: str) -> None:
    adapter = TelegramBotAdapter(config("http://127.0.0.1:9"))

    with pytest.raises(InvalidAddress) as caught:
        adapter.normalise_address(raw)
    assert caught.value.code == "invalid_chat_id"


# Bot setup


def test_get_me_checks_the_token_and_returns_the_bots_username(fake: FakeTelegram) -> None:
    assert with_adapter(config(fake.api_base), lambda a: a.get_me()) == BOT_USERNAME


def test_a_wrong_token_gives_a_clear_error_without_echoing_the_token(fake: FakeTelegram) -> None:
    wrong = TelegramConfig(bot_token=SecretStr("123:wrong-token-xyz"), api_base=fake.api_base)

    with pytest.raises(TelegramApiError) as caught:
        with_adapter(wrong, lambda a: a.get_me())

    assert caught.value.code == "telegram_unauthorized"
    assert caught.value.error_code == 401
    assert "bot token" in caught.value.message
    assert "wrong-token-xyz" not in caught.value.message


def test_an_unreachable_api_during_setup_is_a_clear_error() -> None:
    with pytest.raises(TelegramApiError) as caught:
        with_adapter(config("http://127.0.0.1:9"), lambda a: a.get_me())

    assert caught.value.code == "telegram_unreachable"


def test_set_webhook_sends_the_url_secret_and_the_updates_otklik_needs(fake: FakeTelegram) -> None:
    with_adapter(
        config(fake.api_base), lambda a: a.set_webhook("https://otklik.example/tg", "s3cret_x")
    )

    assert fake.webhook == {
        "url": "https://otklik.example/tg",
        "secret_token": "s3cret_x",
        "allowed_updates": ["message", "my_chat_member", "callback_query"],
    }
    with_adapter(config(fake.api_base), lambda a: a.delete_webhook())
    assert fake.webhook is None


def test_telegram_refusing_a_webhook_url_is_reported(fake: FakeTelegram) -> None:
    with pytest.raises(TelegramApiError) as caught:
        with_adapter(config(fake.api_base), lambda a: a.set_webhook("http://plain.example/tg"))

    assert "HTTPS URL must be provided" in caught.value.message


def test_long_polling_waits_for_an_update_and_the_offset_confirms_it(fake: FakeTelegram) -> None:
    pusher = threading.Timer(0.3, lambda: fake.push_update(start_update(CHAT, "/start")))
    pusher.start()

    async def poll(adapter: TelegramBotAdapter) -> tuple[list[dict[str, Any]], list[Any]]:
        first = await adapter.get_updates(timeout=5)
        after = await adapter.get_updates(offset=first[-1]["update_id"] + 1, timeout=0)
        return first, after

    started = time.monotonic()
    first, after = with_adapter(config(fake.api_base), poll)

    assert time.monotonic() - started < 3
    assert [parse_update(u) for u in first] == [
        StartCommand(str(CHAT), None, TelegramUser(CHAT, "Anna"))
    ]
    assert after == []


def test_polling_while_a_webhook_is_set_is_refused_with_telegrams_reason(
    fake: FakeTelegram,
) -> None:
    async def poll(adapter: TelegramBotAdapter) -> Any:
        await adapter.set_webhook("https://otklik.example/tg")
        return await adapter.get_updates(timeout=0)

    with pytest.raises(TelegramApiError) as caught:
        with_adapter(config(fake.api_base), poll)
    assert "Conflict" in caught.value.message


def test_a_deep_link_round_trip_binds_the_chat_to_the_token(fake: FakeTelegram) -> None:
    token = new_binding_token()

    async def bind(adapter: TelegramBotAdapter) -> tuple[str, list[dict[str, Any]]]:
        link = deep_link(await adapter.get_me(), token)
        # What Telegram does when the person opens the link and presses Start:
        fake.push_update(start_update(CHAT, f"/start {link.rsplit('=', 1)[1]}"))
        return link, await adapter.get_updates(timeout=1)

    link, updates = with_adapter(config(fake.api_base), bind)

    assert link == f"https://t.me/{BOT_USERNAME}?start={token}"
    [event] = [parse_update(u) for u in updates]
    assert isinstance(event, StartCommand)
    assert (event.chat_id, event.token) == (str(CHAT), token)


# Binding and updates


def test_deep_links_carry_the_token_in_the_start_parameter() -> None:
    assert deep_link("@shop_bot", "abc-DEF_123") == "https://t.me/shop_bot?start=abc-DEF_123"
    assert deep_link("shop_bot", "x" * 64).endswith("=" + "x" * 64)


@pytest.mark.parametrize("token", ["", "x" * 65, "has space", "plus+", "slash/", "кириллица"])
def test_deep_link_tokens_must_fit_telegrams_start_parameter(token: str) -> None:
    with pytest.raises(ValueError):
        deep_link("shop_bot", token)


@pytest.mark.parametrize("name", ["shop", "not_a_b0t", "a_bot/../x", "bot", "x" * 40 + "bot"])
def test_deep_links_need_a_bot_username(name: str) -> None:
    with pytest.raises(ValueError):
        deep_link(name, "abc")


def test_binding_tokens_are_unique_and_fit_a_deep_link() -> None:
    tokens = {new_binding_token() for _ in range(100)}

    assert len(tokens) == 100
    assert all(deep_link("shop_bot", t) for t in tokens)


def test_the_adapter_makes_deep_links_only_with_a_configured_username() -> None:
    named = TelegramBotAdapter(config("http://127.0.0.1:9", bot_username="@shop_bot"))
    anonymous = TelegramBotAdapter(config("http://127.0.0.1:9"))

    assert named.deep_link("t1") == "https://t.me/shop_bot?start=t1"
    with pytest.raises(ValueError):
        anonymous.deep_link("t1")


def test_start_with_a_token_is_a_start_command_with_the_person() -> None:
    update = start_update(
        CHAT, "/start tok_123", last_name="Ivanova", username="anna_i", language_code="ru"
    )

    assert parse_update(update) == StartCommand(
        "42", "tok_123", TelegramUser(42, "Anna", "Ivanova", "anna_i", "ru")
    )


def test_start_without_a_token_is_a_start_command_without_one() -> None:
    event = parse_update(start_update(CHAT, "/start"))

    assert event == StartCommand("42", None, TelegramUser(42, "Anna"))


def test_start_addressed_to_the_bot_in_a_group_keeps_the_token() -> None:
    event = parse_update(start_update(CHAT, f"/start@{BOT_USERNAME} tok"))

    assert isinstance(event, StartCommand) and event.token == "tok"


def test_a_start_parameter_that_is_not_a_token_is_ignored() -> None:
    event = parse_update(start_update(CHAT, "/start <script>"))

    assert isinstance(event, StartCommand) and event.token is None


def test_blocking_the_bot_is_a_blocked_bot_update() -> None:
    event = parse_update(member_update(CHAT, old="member", new="kicked"))

    assert event == BlockedBot("42", datetime(2025, 1, 1, tzinfo=UTC))


def test_unblocking_the_bot_is_an_unblocked_bot_update() -> None:
    event = parse_update(member_update(CHAT, old="kicked", new="member"))

    assert isinstance(event, UnblockedBot) and event.chat_id == "42"


def test_other_text_is_incoming_text_for_the_inbox() -> None:
    event = parse_update(start_update(CHAT, "where is my order?"))

    assert event == IncomingText("42", "where is my order?", TelegramUser(42, "Anna"), 1)


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"update_id": 1, "edited_message": start_update(CHAT)["message"]},
        {"message": "junk"},
        {"message": {"chat": {"id": "42"}, "text": "id is a string"}},
        {"message": {"chat": {"id": True}, "text": "id is a bool"}},
        {"message": {"chat": {"id": 42}, "photo": []}},
        {"my_chat_member": {"chat": {"id": 42}, "new_chat_member": {"status": "administrator"}}},
        {"my_chat_member": {"new_chat_member": {"status": "kicked"}}},
    ],
)
def test_updates_otklik_does_not_act_on_parse_to_none(update: dict[str, Any]) -> None:
    assert parse_update(update) is None


def test_the_webhook_secret_header_is_checked() -> None:
    cfg = config("http://127.0.0.1:9", webhook_secret="hook-secret_1")

    assert verify_webhook_secret({"X-Telegram-Bot-Api-Secret-Token": "hook-secret_1"}, cfg)
    assert verify_webhook_secret({"x-telegram-bot-api-secret-token": "hook-secret_1"}, cfg)
    assert not verify_webhook_secret({"X-Telegram-Bot-Api-Secret-Token": "hook-secret_2"}, cfg)
    assert not verify_webhook_secret({}, cfg)


def test_without_a_configured_secret_no_webhook_call_is_trusted() -> None:
    cfg = config("http://127.0.0.1:9")

    assert not verify_webhook_secret({"X-Telegram-Bot-Api-Secret-Token": ""}, cfg)


@pytest.mark.parametrize("token", ["abc", "123:short", "123:abc/../../getMe?x=1234567"])
def test_a_bot_token_must_look_like_one_and_the_error_does_not_quote_it(token: str) -> None:
    with pytest.raises(ValueError) as caught:
        TelegramConfig.model_validate({"bot_token": token})
    assert "bot_token" in str(caught.value) and token not in str(caught.value)


def test_a_webhook_secret_must_be_one_telegram_accepts() -> None:
    with pytest.raises(ValueError) as caught:
        config("http://127.0.0.1:9", webhook_secret="has space")
    assert "has space" not in str(caught.value)


def test_a_blocked_bot_on_the_webhook_is_an_unsubscribed_receipt() -> None:
    adapter = TelegramBotAdapter(config("http://127.0.0.1:9"))
    body = json.dumps({"update_id": 5, **member_update(CHAT, "member", "kicked")}).encode()

    assert adapter.parse_receipts(body, {}) == [
        Receipt(
            status="unsubscribed",
            address="42",
            reason="the person blocked the bot",
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
    ]
    assert adapter.parse_receipts(json.dumps(start_update(CHAT)).encode(), {}) == []
    assert adapter.parse_receipts(b"not json", {}) == []
    assert adapter.parse_receipts(b"[1, 2]", {}) == []


# Secrets


def test_repr_masks_the_token_and_the_webhook_secret() -> None:
    adapter = TelegramBotAdapter(config("http://127.0.0.1:9", webhook_secret="hook-secret_1"))

    assert TOKEN not in repr(adapter) and "hook-secret_1" not in repr(adapter)
    assert TOKEN not in str(adapter.config)


def test_request_logs_do_not_show_the_token(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        send(config(fake.api_base), "hi")

    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged and all(TOKEN not in line for line in logged)
    assert any("/bot***/sendMessage" in line for line in logged)


def test_the_adapter_declares_telegrams_limits() -> None:
    adapter = TelegramBotAdapter(config("http://127.0.0.1:9"))

    assert (adapter.kind, adapter.provider) == (ChannelKind.TELEGRAM, "bot_api")
    assert adapter.capabilities.max_body_chars == 4096
    assert adapter.capabilities.media and adapter.capabilities.buttons
    assert adapter.rate_per_second == 25
