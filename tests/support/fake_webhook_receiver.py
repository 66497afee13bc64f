"""A webhook receiver on 127.0.0.1 that checks Otklik's signature the way users are told to.

Every call is recorded (with whether its signature verified); a call whose signature fails
gets 401. Faults queued with `fail_next`, `redirect_next`, `delay_next` and `drop_next` apply
to the next calls in order, one fault per call.

    with FakeWebhookReceiver(secret) as hook:
        ... send to hook.url ...
        assert hook.bodies() == [{"message_id": ...}]
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otklik.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass(frozen=True)
class ReceivedCall:
    method: str
    path: str
    # Lower-case header names.
    headers: dict[str, str]
    body: bytes
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Fault:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A delayed handler must not hold up stop() after the client gave up on it.
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that time out close the socket under a sleeping handler


class FakeWebhookReceiver:
    def __init__(self, secret: str, tolerance_seconds: float = 300, path: str = "/hook") -> None:
        self.secret = secret
        self.tolerance_seconds = tolerance_seconds
        self.path = path
        self.calls: list[ReceivedCall] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def start(self) -> FakeWebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeWebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._queue(_Fault(status=status, headers=headers), times)

    def redirect_next(self, location: str, status: int = 302, times: int = 1) -> None:
        self._queue(_Fault(status=status, headers={"Location": location}), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self._queue(_Fault(delay=seconds), times)

    def drop_next(self, times: int = 1) -> None:
        """Close the connection without answering, as a crashed receiver would."""
        self._queue(_Fault(drop=True), times)

    def bodies(self) -> list[Any]:
        """The JSON bodies of the calls that verified and were answered 2xx."""
        with self._lock:
            return [call.json() for call in self.calls if call.verified]

    def _queue(self, fault: _Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _record(self, call: ReceivedCall) -> _Fault | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            # A call answered with a fault did not get through, so it is not "verified".
            if fault is not None and not fault.delay:
                call = ReceivedCall(call.method, call.path, call.headers, call.body, False)
            self.calls.append(call)
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = verify_signature(
                    receiver.secret,
                    headers.get(TIMESTAMP_HEADER.lower(), ""),
                    body,
                    headers.get(SIGNATURE_HEADER.lower(), ""),
                    receiver.tolerance_seconds,
                )
                call = ReceivedCall(self.command, self.path, headers, body, verified)
                fault = receiver._record(call)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    return
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.status is not None:
                    self._answer(fault.status, b"injected fault", fault.headers)
                elif not verified:
                    self._answer(401, b"bad signature", {})
                else:
                    self._answer(200, b'{"ok":true}', {"Content-Type": "application/json"})

            do_PUT = do_POST
            do_PATCH = do_POST

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
