"""Local fakes of the push services, speaking their real wire protocols on 127.0.0.1.

- `FakeWebPushService`: a browser vendor's push service. It checks the VAPID JWT's ES256
  signature (RFC 8292) and decrypts the aes128gcm body (RFC 8291) with the subscriber's private
  key, so a passing test proves a browser could read the message.
- `FakeFcm`: Google's OAuth token endpoint (verifies the RS256 service-account assertion,
  issues expiring access tokens) and FCM HTTP v1 `messages:send`.
- `FakeApns`: APNs `/3/device/<token>`, verifying the ES256 provider token.

Each records every request (`requests`, with the verified JWT claims and decoded payload) and
takes faults (`inject(Fault(...))`): any status with a body and headers, a delay longer than
the client's timeout, or a connection dropped without an answer. They speak HTTP/1.1 (stdlib
http.server in threads); real APNs requires HTTP/2, which only changes the framing.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Fault:
    """What the fake does instead of its normal answer, for the next matching request."""

    status: int | None = None  # None: answer normally (after `delay`)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without any answer


@dataclass
class Recorded:
    route: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0
    claims: dict[str, Any] | None = None  # the verified JWT's claims
    payload: Any = None  # decrypted (web push) or parsed JSON body


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_answer(status: int, doc: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(doc).encode()


class FakeHttpService:
    """A threaded HTTP/1.1 server on a free loopback port; subclasses implement `answer`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; Nagle would hold the body for the
            # client's delayed ACK (~40 ms a request on a kept-alive connection).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                service._dispatch(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault, *, route: str = "send", times: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(route, deque()).extend([fault] * times)

    def route_of(self, path: str) -> str:
        return "send"

    def answer(self, request: Recorded) -> Answer:
        raise NotImplementedError

    def recorded(self, route: str = "send", status: int | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.route == route and (status is None or r.status == status)
            ]

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Recorded(self.route_of(handler.path), handler.path, headers, body)
        with self._lock:
            self.requests.append(request)
            queue = self._faults.get(request.route)
            fault = queue.popleft() if queue else None
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.status is not None:
            status, out_headers, out = _json_answer(fault.status, fault.json, fault.headers)
            if fault.json is None:
                out = b""
        else:
            status, out_headers, out = self.answer(request)
        request.status = status
        try:
            handler.send_response(status)
            for name, value in out_headers.items():
                handler.send_header(name, value)
            handler.send_header("content-length", str(len(out)))
            handler.end_headers()
            handler.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout) before the delayed answer


# --- web push -----------------------------------------------------------------------------


@dataclass
class Subscriber:
    """A browser's side of one subscription: its ECDH key pair and auth secret."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None = None

    def subscription(self) -> dict[str, Any]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": _b64url(point), "auth": _b64url(self.auth)},
        }

    def subscription_json(self) -> str:
        return json.dumps(self.subscription())


class FakeWebPushService(FakeHttpService):
    def __init__(self) -> None:
        super().__init__()
        self._subscribers: dict[str, Subscriber] = {}
        self._gone: set[str] = set()

    def subscribe(self, application_server_key: str | None = None) -> Subscriber:
        """A new browser subscription; with a key, pushes signed by any other key get 403."""
        sid = uuid.uuid4().hex
        sub = Subscriber(
            sid,
            f"{self.url}/push/{sid}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
            application_server_key,
        )
        self._subscribers[sid] = sub
        return sub

    def expire(self, sub: Subscriber) -> None:
        """The browser unsubscribed: further pushes get 410 Gone."""
        self._gone.add(sub.id)

    def delivered(self) -> list[Any]:
        return [r.payload for r in self.recorded(status=201)]

    def answer(self, request: Recorded) -> Answer:
        sid = request.path.rsplit("/", 1)[-1]
        if sid in self._gone:
            return 410, {}, b""
        sub = self._subscribers.get(sid)
        if sub is None or not request.path.startswith("/push/"):
            return 404, {}, b""
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme.lower() != "vapid" or "t" not in parts or "k" not in parts:
            return 401, {}, b"missing vapid authorization"
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), _unb64url(parts["k"])
            )
            claims = jwt.decode(
                parts["t"], public, algorithms=["ES256"], audience=self.url,
                options={"require": ["exp", "aud", "sub"]},
            )  # fmt: skip
        except (ValueError, jwt.PyJWTError) as exc:
            return 401, {}, f"bad vapid token: {exc}".encode()
        request.claims = claims
        if claims["exp"] > time.time() + 24 * 3600 or not str(claims["sub"]).startswith(
            ("mailto:", "https://")
        ):
            return 401, {}, b"vapid claims out of bounds"
        if sub.application_server_key and parts["k"] != sub.application_server_key:
            return 403, {}, b"vapid key differs from the subscription's applicationServerKey"
        if "ttl" not in request.headers:
            return 400, {}, b"TTL header required"
        if request.headers.get("content-encoding") != "aes128gcm":
            return 415, {}, b"only aes128gcm"
        if len(request.body) > 4096:
            return 413, {}, b"payload too large"
        try:
            plain = http_ece.decrypt(
                request.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
        except Exception as exc:  # http_ece raises bare errors for a wrong key or a bad header
            return 400, {}, f"cannot decrypt: {exc!r}".encode()
        request.payload = json.loads(plain)
        return 201, {"location": f"{self.url}/m/{uuid.uuid4().hex}"}, b""


# --- FCM --------------------------------------------------------------------------------------


def fcm_error(status: int, status_name: str, error_code: str | None = None) -> dict[str, Any]:
    details = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}
    ]
    error = {"code": status, "message": f"fake {status_name}", "status": status_name}
    return {"error": {**error, "details": details if error_code else []}}


class FakeFcm(FakeHttpService):
    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self, project_id: str = "otklik-test", token_lifetime: int = 3600) -> None:
        super().__init__()
        self.project_id = project_id
        self.token_lifetime = token_lifetime
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._tokens: dict[str, float] = {}
        self._unregistered: set[str] = set()

    def service_account_json(self) -> str:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project_id,
                "private_key_id": "fake-key-1",
                "private_key": pem,
                "client_email": self.client_email,
                "token_uri": f"{self.url}/token",
            }
        )

    def unregister(self, token: str) -> None:
        self._unregistered.add(token)

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working (401), as after a key rotation."""
        self._tokens.clear()

    def delivered(self) -> list[dict[str, Any]]:
        return [r.payload["message"] for r in self.recorded(status=200)]

    def route_of(self, path: str) -> str:
        return "token" if path == "/token" else "send"

    def answer(self, request: Recorded) -> Answer:
        if request.route == "token":
            return self._token(request)
        if request.path != f"/v1/projects/{self.project_id}/messages:send":
            return _json_answer(403, fcm_error(403, "PERMISSION_DENIED"))
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._tokens.get(bearer, 0) < time.time():
            return _json_answer(401, fcm_error(401, "UNAUTHENTICATED"))
        try:
            message = json.loads(request.body)["message"]
            request.payload = {"message": message}
            token = message["token"]
            strings = all(isinstance(v, str) for v in message.get("data", {}).values())
        except (ValueError, KeyError, TypeError, AttributeError):
            return _json_answer(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
        if not token or not strings:
            return _json_answer(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
        if token in self._unregistered:
            return _json_answer(404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
        name = f"projects/{self.project_id}/messages/{uuid.uuid4().int % 10**16}"
        return _json_answer(200, {"name": name})

    def _token(self, request: Recorded) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json_answer(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""), self._key.public_key(), algorithms=["RS256"],
                audience=f"{self.url}/token", issuer=self.client_email,
                options={"require": ["iat", "exp", "aud", "iss"]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            return _json_answer(400, {"error": "invalid_grant", "error_description": str(exc)})
        request.claims = claims
        if self.SCOPE not in str(claims.get("scope", "")).split():
            return _json_answer(400, {"error": "invalid_scope"})
        if claims["exp"] - claims["iat"] > 3600:
            return _json_answer(400, {"error": "invalid_grant", "error_description": "exp"})
        access = f"ya29.fake-{uuid.uuid4().hex}"
        self._tokens[access] = time.time() + self.token_lifetime
        doc = {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return _json_answer(200, doc)


# --- APNs -------------------------------------------------------------------------------------


def apns_error(status: int, reason: str, headers: dict[str, str] | None = None) -> Fault:
    return Fault(status=status, json={"reason": reason}, headers=headers or {})


class FakeApns(FakeHttpService):
    def __init__(
        self,
        team_id: str = "TEAM123456",
        key_id: str = "KEY1234567",
        topic: str = "com.example.shop",
    ) -> None:
        super().__init__()
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._unregistered: set[str] = set()

    @property
    def auth_key_pem(self) -> str:
        """What Apple's AuthKey_<key id>.p8 file holds."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def unregister(self, device_token: str) -> None:
        self._unregistered.add(device_token)

    def provider_tokens(self) -> list[str]:
        """The distinct provider tokens seen, in order of first use."""
        seen = [r.headers.get("authorization", "") for r in self.requests]
        return list(dict.fromkeys(seen))

    def delivered(self) -> list[Recorded]:
        return self.recorded(status=200)

    def answer(self, request: Recorded) -> Answer:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "bearer" or not token:
            return _json_answer(403, {"reason": "MissingProviderToken"})
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(
                token, self._key.public_key(), algorithms=["ES256"], issuer=self.team_id,
                options={"require": ["iat", "iss"]},
            )  # fmt: skip
        except jwt.PyJWTError:
            return _json_answer(403, {"reason": "InvalidProviderToken"})
        request.claims = claims
        if claims["iat"] < time.time() - 3600:
            return _json_answer(403, {"reason": "ExpiredProviderToken"})
        headers = request.headers
        device = request.path.removeprefix("/3/device/")
        checks = [
            (headers.get("apns-topic") == self.topic, 400, "DeviceTokenNotForTopic"),
            (headers.get("apns-push-type") in ("alert", "background"), 400, "InvalidPushType"),
            (headers.get("apns-priority", "10") in ("5", "10"), 400, "BadPriority"),
            (headers.get("apns-expiration", "0").isdigit(), 400, "BadExpirationDate"),
            (_is_uuid(headers.get("apns-id")), 400, "BadMessageId"),
            (len(device) == 64 and all(c in "0123456789abcdef" for c in device), 400,
             "BadDeviceToken"),
            (device not in self._unregistered, 410, "Unregistered"),
            (len(request.body) <= 4096, 413, "PayloadTooLarge"),
        ]  # fmt: skip
        for ok, status, reason in checks:
            if not ok:
                extra = {"timestamp": int(time.time() * 1000)} if status == 410 else {}
                return _json_answer(status, {"reason": reason, **extra})
        try:
            request.payload = json.loads(request.body)
            assert isinstance(request.payload["aps"], dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _json_answer(400, {"reason": "PayloadEmpty"})
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        return 200, {"apns-id": apns_id}, b""


def _is_uuid(value: str | None) -> bool:
    if value is None:
        return True
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
