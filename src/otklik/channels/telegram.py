"""Telegram through the Bot API (provider `bot_api`), over one pooled httpx client.

`OutboundMessage.to` is a chat id (an integer as a string; negative for groups). `data` keys:
- `photo`: an http(s) URL; the message goes out with `sendPhoto` and `text` as its caption.
  A caption may hold 1024 characters, so a longer text goes out as a second message right
  after the photo. If that second message fails with RetryLater, the retry sends the photo
  again: Telegram has no idempotency key, and a duplicated picture beats a lost text.
- `buttons`: rows of inline buttons, each `{"text", "url"}` or `{"text", "callback_data"}`;
  a dict in place of a row is a one-button row. With a split photo they go on the text.
- `parse_mode`: overrides the config's ("HTML" by default); None sends plain text.
- `disable_web_page_preview`, `disable_notification`: booleans passed through.

Binding a chat to a profile: the console shows `deep_link(bot, token)`; the person presses
Start and Telegram sends the bot `/start <token>`, which `parse_update` returns as a
`StartCommand`. Updates arrive on a webhook (`set_webhook`; the endpoint must check
`verify_webhook_secret` first) or, with no public URL, by long polling (`get_updates`).
A person blocking the bot arrives as `my_chat_member` with status "kicked": `BlockedBot`, and
`parse_receipts` reports it as an "unsubscribed" receipt for the chat.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from otklik.channels.base import (
    Adapter,
    Capabilities,
    ChannelConfig,
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    Receipt,
    RetryLater,
    SendResult,
    Sent,
)
from otklik.kit.errors import AppError

CAPTION_LIMIT = 1024
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHAT_ID_RE = re.compile(r"-?[1-9][0-9]{0,18}")
BOT_USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt]")
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "x-telegram-bot-api-secret-token"
# Asked for explicitly because Telegram remembers the last list a bot asked for.
ALLOWED_UPDATES = ["message", "my_chat_member", "callback_query"]
GONE_400 = ("chat not found", "user not found", "peer_id_invalid")


class _RedactBotToken(logging.Filter):
    """httpx logs every request URL at INFO, and the Bot API puts the token in the path."""

    pattern = re.compile(r"/bot[^/\s]+/")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.pattern.sub("/bot***/", str(arg)) if "/bot" in str(arg) else arg
                for arg in record.args
            )
        return True


if not any(isinstance(f, _RedactBotToken) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactBotToken())


class TelegramConfig(ChannelConfig):
    # Validation errors would otherwise quote the rejected input: a secret, here.
    model_config = ConfigDict(hide_input_in_errors=True)

    bot_token: SecretStr
    api_base: str = "https://api.telegram.org"
    bot_username: str | None = None
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token on every webhook call.
    webhook_secret: SecretStr | None = None
    parse_mode: Literal["HTML", "MarkdownV2", "Markdown"] | None = "HTML"
    # How updates (/start from deep links, blocked bots) reach Otklik: Telegram calls our
    # webhook (needs a public https URL), or a worker polls getUpdates (works behind NAT).
    updates: Literal["webhook", "polling"] = "webhook"

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        # The token goes into the URL path, so its shape is checked, not just its presence.
        if not re.fullmatch(r"[0-9]{1,20}:[A-Za-z0-9_-]{10,100}", value.get_secret_value()):
            raise ValueError("a bot token looks like 123456:ABC-DEF1234ghIkl (from @BotFather)")
        return value

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", value):
            raise ValueError("api_base must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().removeprefix("@")
        if not BOT_USERNAME_RE.fullmatch(name):
            raise ValueError("a bot username is 5-32 letters, digits or '_' ending in 'bot'")
        return name

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET_RE.fullmatch(value.get_secret_value()):
            raise ValueError("webhook_secret is 1-256 characters of A-Z, a-z, 0-9, '_' and '-'")
        return value


class TelegramApiError(AppError):
    """A bot setup call (getMe, setWebhook, ...) that Telegram refused or could not answer."""

    status = 422
    code = "telegram_error"

    def __init__(self, message: str, *, code: str, error_code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.error_code = error_code


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class StartCommand:
    """`/start` or `/start <token>`: the person opened the bot, maybe from a deep link."""

    chat_id: str
    token: str | None
    user: TelegramUser | None


@dataclass(frozen=True)
class BlockedBot:
    chat_id: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class UnblockedBot:
    chat_id: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class IncomingText:
    chat_id: str
    text: str
    user: TelegramUser | None
    message_id: int | None = None


TelegramUpdate = StartCommand | BlockedBot | UnblockedBot | IncomingText


def new_binding_token() -> str:
    """An unguessable token that fits a deep link (43 characters of [A-Za-z0-9_-])."""
    return secrets.token_urlsafe(32)


def deep_link(bot_username: str, token: str) -> str:
    """The t.me link that opens the bot and sends it `/start <token>`."""
    name = bot_username.strip().removeprefix("@")
    if not BOT_USERNAME_RE.fullmatch(name):
        raise ValueError(f"not a bot username: {bot_username!r}")
    if not TOKEN_RE.fullmatch(token):
        raise ValueError("a deep-link token is 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return f"https://t.me/{name}?start={token}"


def parse_update(update: Mapping[str, Any]) -> TelegramUpdate | None:
    """The part of a Bot API update Otklik acts on; None for anything else or for junk."""
    if not isinstance(update, Mapping):
        return None
    member = update.get("my_chat_member")
    if isinstance(member, Mapping):
        return _member_update(member)
    message = update.get("message")
    if isinstance(message, Mapping):
        return _message_update(message)
    return None


def _member_update(member: Mapping[str, Any]) -> BlockedBot | UnblockedBot | None:
    chat_id = _chat_id(member.get("chat"))
    if chat_id is None:
        return None
    new = _status(member.get("new_chat_member"))
    old = _status(member.get("old_chat_member"))
    at = _date(member.get("date"))
    # A private chat reports a block as "kicked"; a group the bot was removed from as "left".
    if new in ("kicked", "left"):
        return BlockedBot(chat_id, at)
    if new in ("member", "administrator") and old in ("kicked", "left"):
        return UnblockedBot(chat_id, at)
    return None


def _message_update(message: Mapping[str, Any]) -> StartCommand | IncomingText | None:
    chat_id = _chat_id(message.get("chat"))
    text = message.get("text")
    if chat_id is None or not isinstance(text, str):
        return None
    user = _user(message.get("from"))
    command, _, rest = text.strip().partition(" ")
    if command == "/start" or command.startswith("/start@"):
        payload = rest.strip()
        return StartCommand(chat_id, payload if TOKEN_RE.fullmatch(payload) else None, user)
    message_id = message.get("message_id")
    return IncomingText(chat_id, text, user, message_id if _is_int(message_id) else None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chat_id(chat: Any) -> str | None:
    if isinstance(chat, Mapping) and _is_int(chat.get("id")):
        return str(chat["id"])
    return None


def _status(member: Any) -> str | None:
    status = member.get("status") if isinstance(member, Mapping) else None
    return status if isinstance(status, str) else None


def _date(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if _is_int(value) else None


def _user(raw: Any) -> TelegramUser | None:
    if not isinstance(raw, Mapping) or not _is_int(raw.get("id")):
        return None
    names = ("first_name", "last_name", "username", "language_code")
    text = {k: v for k in names if isinstance(v := raw.get(k), str)}
    return TelegramUser(raw["id"], **text)


def verify_webhook_secret(headers: Mapping[str, str], config: TelegramConfig) -> bool:
    """True when the call carries the configured secret; always False with none configured,
    since an unauthenticated webhook would let anyone forge updates (and unsubscribes)."""
    if config.webhook_secret is None:
        return False
    got = next((v for k, v in headers.items() if k.lower() == SECRET_HEADER), None)
    if got is None:
        return False
    expected = config.webhook_secret.get_secret_value()
    return hmac.compare_digest(got.encode(), expected.encode())


@dataclass(frozen=True)
class _Reply:
    http_status: int
    # Telegram's JSON answer; None when the body was not JSON (an nginx 502 page, say).
    body: Mapping[str, Any] | None

    def get(self, key: str) -> Any:
        return self.body.get(key) if self.body is not None else None

    def parameter(self, key: str) -> Any:
        params = self.get("parameters")
        return params.get(key) if isinstance(params, Mapping) else None


def _classify(reply: _Reply) -> RetryLater | Failed:
    code = reply.get("error_code")
    status = code if isinstance(code, int) else reply.http_status
    desc = reply.get("description")
    desc = desc if isinstance(desc, str) else f"HTTP {reply.http_status} from Telegram"
    if status == 429:
        after = reply.parameter("retry_after")
        return RetryLater("telegram_rate_limited", desc, float(after) if _is_int(after) else None)
    if status >= 500 or reply.body is None:
        return RetryLater("telegram_server_error", desc)
    if status == 403:
        return Failed("telegram_blocked", desc, address_gone=True)
    migrated = reply.parameter("migrate_to_chat_id")
    if migrated is not None:
        return Failed("telegram_chat_migrated", f"{desc} (now {migrated})", address_gone=True)
    if status == 400 and any(s in desc.lower() for s in GONE_400):
        return Failed("telegram_chat_not_found", desc, address_gone=True)
    if status == 401:
        return Failed("telegram_unauthorized", "Telegram rejected the bot token (401)")
    return Failed("telegram_bad_request", desc)


def _reply_markup(buttons: Any) -> dict[str, Any] | None:
    if buttons is None:
        return None
    if not isinstance(buttons, list | tuple):
        raise ValueError("buttons must be a list of rows")
    rows: list[list[dict[str, str]]] = []
    for row in buttons:
        cells = [row] if isinstance(row, Mapping) else row
        if not isinstance(cells, list | tuple) or not cells:
            raise ValueError("each row of buttons must be a non-empty list")
        rows.append([_button(cell) for cell in cells])
    return {"inline_keyboard": rows} if rows else None


def _button(cell: Any) -> dict[str, str]:
    if not isinstance(cell, Mapping) or not isinstance(cell.get("text"), str) or not cell["text"]:
        raise ValueError("each button needs a non-empty 'text'")
    url, callback = cell.get("url"), cell.get("callback_data")
    if isinstance(url, str) and callback is None and re.match(r"(https?|tg)://", url):
        return {"text": cell["text"], "url": url}
    if isinstance(callback, str) and url is None and 1 <= len(callback.encode()) <= 64:
        return {"text": cell["text"], "callback_data": callback}
    raise ValueError("each button needs either an http(s) 'url' or 1-64 bytes of 'callback_data'")


class TelegramBotAdapter(Adapter[TelegramConfig]):
    kind: ClassVar[ChannelKind] = ChannelKind.TELEGRAM
    provider: ClassVar[str] = "bot_api"
    config_class: ClassVar[type[ChannelConfig]] = TelegramConfig
    # Telegram allows about 30 messages a second per bot; stay a little under it.
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_body_chars=4096, media=True, buttons=True, rate_per_second=25
    )

    def __init__(self, config: TelegramConfig) -> None:
        super().__init__(config)
        token = config.bot_token.get_secret_value()
        self._client = httpx.AsyncClient(
            base_url=f"{config.api_base}/bot{token}/",
            timeout=config.timeout_seconds,
            follow_redirects=False,
        )

    def normalise_address(self, raw: str) -> str:
        value = raw.strip()
        if not CHAT_ID_RE.fullmatch(value):
            raise InvalidAddress("invalid_chat_id", f"a Telegram chat id is an integer: {raw!r}")
        return value

    def deep_link(self, token: str) -> str:
        if self.config.bot_username is None:
            raise ValueError("bot_username is not configured; get_me() tells it")
        return deep_link(self.config.bot_username, token)

    async def send(self, message: OutboundMessage) -> SendResult:
        data = message.data
        try:
            chat_id = int(self.normalise_address(message.to))
            markup = _reply_markup(data.get("buttons"))
        except InvalidAddress as exc:
            return Failed(exc.code, exc.reason, address_gone=True)
        except ValueError as exc:
            return Failed("telegram_invalid_buttons", str(exc))
        common: dict[str, Any] = {"chat_id": chat_id}
        parse_mode = data.get("parse_mode", self.config.parse_mode)
        if parse_mode:
            common["parse_mode"] = parse_mode
        if data.get("disable_notification"):
            common["disable_notification"] = True
        text: dict[str, Any] = {
            **common,
            "text": message.text,
            "disable_web_page_preview": bool(data.get("disable_web_page_preview", False)),
        }
        if markup is not None:
            text["reply_markup"] = markup
        photo = data.get("photo")
        if photo is None:
            return await self._sent("sendMessage", text)
        if not isinstance(photo, str) or not re.match(r"https?://\S+$", photo):
            return Failed("telegram_invalid_photo", "data['photo'] must be an http(s) URL")
        if len(message.text) <= CAPTION_LIMIT:
            captioned = {**common, "photo": photo, "caption": message.text}
            if markup is not None:
                captioned["reply_markup"] = markup
            return await self._sent("sendPhoto", captioned)
        first = await self._sent("sendPhoto", {**common, "photo": photo})
        if not isinstance(first, Sent):
            return first
        return await self._sent("sendMessage", text)

    async def _sent(self, method: str, payload: dict[str, Any]) -> SendResult:
        reply = await self._call(method, payload)
        if isinstance(reply, RetryLater):
            return reply
        if reply.get("ok") is not True:
            return _classify(reply)
        result = reply.get("result") if isinstance(reply.get("result"), Mapping) else {}
        chat = _chat_id(result.get("chat")) or str(payload["chat_id"])
        return Sent(provider_message_id=f"{chat}:{result.get('message_id')}", detail=method)

    async def _call(
        self, method: str, payload: Mapping[str, Any], timeout: float | None = None
    ) -> _Reply | RetryLater:
        try:
            response = await self._client.post(
                method, json=payload, timeout=timeout or self.config.timeout_seconds
            )
        except httpx.TimeoutException:
            return RetryLater("telegram_timeout", f"Telegram did not answer {method} in time")
        except httpx.TransportError as exc:
            return RetryLater("telegram_connection", f"{method}: {type(exc).__name__}: {exc}")
        try:
            body = response.json()
        except ValueError:
            body = None
        return _Reply(response.status_code, body if isinstance(body, Mapping) else None)

    async def _setup_call(
        self, method: str, payload: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        reply = await self._call(method, payload, timeout)
        if isinstance(reply, RetryLater):
            raise TelegramApiError(
                f"Telegram could not be reached: {reply.reason}", code="telegram_unreachable"
            )
        if reply.get("ok") is True:
            return reply.get("result")
        verdict = _classify(reply)
        message = verdict.reason
        if verdict.code == "telegram_unauthorized":
            message = "Telegram rejected the bot token (401 Unauthorized): check it with @BotFather"
        raise TelegramApiError(
            f"{method}: {message}", code=verdict.code, error_code=reply.http_status
        )

    async def get_me(self) -> str:
        """Check the token; the bot's username (for deep links)."""
        result = await self._setup_call("getMe", {})
        username = result.get("username") if isinstance(result, Mapping) else None
        if not isinstance(username, str):
            raise TelegramApiError("getMe returned no username", code="telegram_bad_response")
        return username

    async def set_webhook(self, url: str, secret: str | None = None) -> None:
        payload: dict[str, Any] = {"url": url, "allowed_updates": ALLOWED_UPDATES}
        if secret is not None:
            payload["secret_token"] = secret
        await self._setup_call("setWebhook", payload)

    async def delete_webhook(self) -> None:
        await self._setup_call("deleteWebhook", {})

    async def get_updates(
        self, offset: int | None = None, timeout: int = 30
    ) -> list[dict[str, Any]]:
        """Long polling: waits up to `timeout` seconds for updates after `offset`.

        Pass the last update_id + 1 as the next offset: that confirms the earlier ones.
        """
        payload: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            payload["offset"] = offset
        result = await self._setup_call(
            "getUpdates", payload, timeout=timeout + self.config.timeout_seconds
        )
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """A webhook update announcing a blocked bot; the endpoint checks the secret first."""
        try:
            update = json.loads(body)
        except ValueError:
            return []
        event = parse_update(update) if isinstance(update, dict) else None
        if isinstance(event, BlockedBot):
            return [
                Receipt(
                    status="unsubscribed",
                    address=event.chat_id,
                    reason="the person blocked the bot",
                    occurred_at=event.occurred_at,
                )
            ]
        return []

    async def aclose(self) -> None:
        await self._client.aclose()
