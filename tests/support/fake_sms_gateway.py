"""A fake HTTP SMS gateway on 127.0.0.1 (stdlib http.server in a thread).

It records every request (method, path, query, headers, raw body, parsed JSON or form) and
answers 200 `{"id": "gw-N", "status": "ok"}` unless a scripted reply is queued with
`reply(...)`: any status, headers (e.g. Retry-After), body, a delay before answering, or
`drop=True` to close the connection without a word.

Use: `with FakeSmsGateway() as gw: ... gw.url ...`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class GatewayRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON, str/bytes sent as is, None → the default answer
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


class _Server(ThreadingHTTPServer):
    # The stdlib default backlog of 5 refuses bursts of concurrent sends.
    request_queue_size = 128
    daemon_threads = True


class FakeSmsGateway:
    def __init__(self, path: str = "/sms/send") -> None:
        self.path = path
        self.requests: list[GatewayRequest] = []
        self.replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._count = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                gateway._handle(self)

            def do_POST(self) -> None:
                gateway._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def reply(self, status: int = 200, body: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self.replies.append(Reply(status=status, body=body, **kwargs))

    def start(self) -> FakeSmsGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSmsGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = GatewayRequest(
            method=handler.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            request.json = json.loads(body or b"null")
        elif "form" in content_type:
            request.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        with self._lock:
            self.requests.append(request)
            self._count += 1
            reply = self.replies.popleft() if self.replies else Reply()
            number = self._count
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            handler.close_connection = True
            handler.connection.close()
            return
        payload = reply.body if reply.body is not None else {"id": f"gw-{number}", "status": "ok"}
        if isinstance(payload, (dict, list)):
            data, kind = json.dumps(payload).encode(), "application/json"
        else:
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            kind = "text/plain; charset=utf-8"
        handler.send_response(reply.status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
