"""A fake Telegram Bot API server on 127.0.0.1 with Telegram's real paths and JSON shapes.

It serves `/bot<token>/<method>` for getMe, sendMessage, sendPhoto, setWebhook, deleteWebhook
and getUpdates, answering `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}`
exactly as Telegram does; a wrong token gets 401 Unauthorized. Sent messages are recorded.

Faults: `block(chat_id)`, `deactivate(chat_id)`, `forget(chat_id)` (chat not found) act per
chat; `rate_limit_next(retry_after)`, `bad_gateway_next()` (nginx's HTML 502, as Telegram's
front end sends), `delay_next(seconds)` and `drop_next()` apply to the next requests in order.
Updates for getUpdates are queued with `push_update` (long polling waits for them).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_ID = 7000000001
BOT_USERNAME = "otklik_test_bot"
TOKEN = f"{BOT_ID}:AAF-fake_token_for_tests_0123456789"


@dataclass(frozen=True)
class SentMessage:
    method: str
    # The request parameters exactly as received (JSON body, form or query).
    params: dict[str, Any]
    chat_id: int
    message_id: int


@dataclass(frozen=True)
class _Fault:
    kind: str
    value: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that time out close the socket under a sleeping handler


def _error(code: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return code, body


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.sent: list[SentMessage] = []
        # Every request, faulted or not: (method, parameters).
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.webhook: dict[str, Any] | None = None
        self.blocked: set[int] = set()
        self.deactivated: set[int] = set()
        self.missing: set[int] = set()
        self._faults: deque[_Fault] = deque()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100
        self._next_message_id = 1
        self._lock = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeTelegram:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def block(self, chat_id: int) -> None:
        self.blocked.add(chat_id)

    def deactivate(self, chat_id: int) -> None:
        self.deactivated.add(chat_id)

    def forget(self, chat_id: int) -> None:
        self.missing.add(chat_id)

    def rate_limit_next(self, retry_after: int, times: int = 1) -> None:
        self._queue(_Fault("429", retry_after), times)

    def bad_gateway_next(self, times: int = 1) -> None:
        self._queue(_Fault("502"), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self._queue(_Fault("delay", seconds), times)

    def drop_next(self, times: int = 1) -> None:
        self._queue(_Fault("drop"), times)

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update (without update_id) for getUpdates; returns its update_id."""
        with self._lock:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **update})
            self._lock.notify_all()
            return update_id

    def _queue(self, fault: _Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # The Bot API methods: each returns (HTTP status, JSON body).

    def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        handler = {
            "getMe": self._get_me,
            "sendMessage": self._send,
            "sendPhoto": self._send,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getUpdates": self._get_updates,
        }.get(method)
        if handler is None:
            return _error(404, "Not Found")
        return handler(method, params)

    def _get_me(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        result = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Otklik Test",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        return 200, {"ok": True, "result": result}

    def _send(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            chat_id = int(params.get("chat_id", ""))
        except (TypeError, ValueError):
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.missing:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.deactivated:
            return _error(403, "Forbidden: user is deactivated")
        message: dict[str, Any] = {
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Otklik Test"},
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "date": int(time.time()),
        }
        if method == "sendMessage":
            text = params.get("text")
            if not isinstance(text, str) or not text.strip():
                return _error(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return _error(400, "Bad Request: message is too long")
            message["text"] = text
        else:
            if not params.get("photo"):
                return _error(400, "Bad Request: there is no photo in the request")
            caption = params.get("caption")
            if isinstance(caption, str) and len(caption) > 1024:
                return _error(400, "Bad Request: message caption is too long")
            message["photo"] = [{"file_id": "AgAC-fake", "width": 90, "height": 90}]
            if caption:
                message["caption"] = caption
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        with self._lock:
            message_id = self._next_message_id
            self._next_message_id += 1
            self.sent.append(SentMessage(method, params, chat_id, message_id))
        return 200, {"ok": True, "result": {"message_id": message_id, **message}}

    def _set_webhook(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = params.get("url", "")
        if not isinstance(url, str) or not url.startswith("https://"):
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook = params
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _delete_webhook(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.webhook = None
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _get_updates(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.webhook is not None:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._lock:
            # A given offset confirms every update before it, as Telegram does.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            return 200, {"ok": True, "result": list(self._updates)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(self.rfile.read(length))

            def _serve(self, raw: bytes) -> None:
                fault = fake._take_fault()
                split = urlsplit(self.path)
                prefix, _, method = split.path.lstrip("/").partition("/")
                params: dict[str, Any] = dict(parse_qsl(split.query))
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(raw or b"{}"))
                elif raw:
                    params.update(parse_qsl(raw.decode()))
                with fake._lock:
                    fake.requests.append((method, params))
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.value)
                if fault is not None and fault.kind == "502":
                    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
                    return self._answer(502, page, "text/html")
                if prefix != f"bot{fake.token}":
                    status, body = _error(401, "Unauthorized")
                elif fault is not None and fault.kind == "429":
                    after = int(fault.value)
                    status, body = _error(
                        429, f"Too Many Requests: retry after {after}", retry_after=after
                    )
                else:
                    status, body = fake._call(method, params)
                self._answer(status, json.dumps(body).encode(), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def start_update(chat_id: int, text: str = "/start", **user: Any) -> dict[str, Any]:
    """A private-chat message update as Telegram sends it when a person presses Start."""
    sender = {"id": chat_id, "is_bot": False, "first_name": "Anna", **user}
    return {
        "message": {
            "message_id": 1,
            "from": sender,
            "chat": {"id": chat_id, "type": "private", "first_name": sender["first_name"]},
            "date": 1_735_689_600,
            "text": text,
            "entities": [{"offset": 0, "length": len(text.split(" ")[0]), "type": "bot_command"}],
        }
    }


def member_update(chat_id: int, old: str, new: str) -> dict[str, Any]:
    """A my_chat_member update: new status "kicked" when the person blocks the bot."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Anna"}
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "Otklik Test", "username": BOT_USERNAME}
    return {
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
            "from": user,
            "date": 1_735_689_600,
            "old_chat_member": {"user": bot, "status": old},
            "new_chat_member": {"user": bot, "status": new, "until_date": 0},
        }
    }
