"""Shared fixtures: every store-touching test runs on SQLite and on a real PostgreSQL server.

Each test module gets its own database per backend; each test gets its own workspace, so
tests are isolated the same way tenants are.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from otklik.app import create_app
from otklik.config import Settings
from otklik.kit.db import make_engine, session_scope
from otklik.kit.migrate import upgrade
from otklik.workspaces import service as workspaces

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    from tests.support.pg import pg_url_from_env, start_postgres

    if pg_url_from_env():
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="otklik-pg-"))
    server = start_postgres(base)
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: Any) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / (name + '.db')}"
    from tests.support.pg import pg_url_from_env

    server = request.getfixturevalue("pg_server")
    if server is None:
        import psycopg

        base = pg_url_from_env() or ""
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return base.rsplit("/", 1)[0] + "/" + name
    return str(server.create_database(name))


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: Any) -> str:
    return database_url(backend, request, tmp_path_factory)


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: Any) -> Settings:
    # Each module's app gets its own task queue file, so no module consumes another's tasks.
    queue = tmp_path_factory.mktemp("queue") / "queue.db"
    # No ingest journal: specs read the event table right after a 200, which only the
    # direct path gives; tests/ingest/test_spool.py and test_durability.py cover the journal.
    return Settings(
        database_url=db_url,
        sqlite_synchronous="NORMAL",
        queue_path=str(queue),
        ingest_spool=False,
    )


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings.database_url, synchronous=settings.sqlite_synchronous)
    upgrade(eng)
    yield eng
    eng.dispose()


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    engine: Engine

    def drain(self, timeout: float = 60.0) -> int:
        """Wait until every stored event is resolved into profiles."""
        return int(self.app.state.resolver.drain(timeout))


@contextmanager
def serve(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    """The real app with the given settings behind a real uvicorn on a loopback port."""
    app = create_app(settings, engine)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    """The real app behind a real uvicorn on a loopback port."""
    with serve(settings, engine) as server:
        yield server


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    write_key: str
    secret_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}


def make_tenant(engine: Engine, **kwargs: Any) -> Tenant:
    slug = f"ws-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        ws, write, secret = workspaces.create_workspace(session, name=slug, slug=slug, **kwargs)
    return Tenant(ws.id, ws.slug, write.token, secret.token)


@pytest.fixture
def tenant(engine: Engine) -> Tenant:
    return make_tenant(engine)


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client
