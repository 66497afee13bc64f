"""Engine creation for both modes and the transaction scopes every caller uses.

SQLite runs in WAL mode; writers open with BEGIN IMMEDIATE so a read-then-write transaction
never fails on lock upgrade, and readers stay on plain deferred BEGIN so they never queue.
Writers of one process also queue on a Python lock first: SQLite's own busy handler sleeps in
growing steps (up to 100 ms) while it waits, so the ingest writer and the resolver handing the
file lock back and forth through it lost most of their time asleep.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, synchronous: str = "FULL", pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_dumps,
            json_deserializer=orjson.loads,
            # The segment loop keeps a few hundred statements hot (kit/fastsql.py); the
            # driver's default cache of 128 prepared statements would re-prepare them.
            connect_args={"check_same_thread": False, "timeout": 30, "cached_statements": 1024},
            pool_size=pool_size,
            max_overflow=20,
        )
        _configure_sqlite(engine, synchronous)
        return engine
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    engine = create_engine(
        url,
        json_serializer=_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
    )
    _configure_postgres(engine)
    return engine


def _dumps(value: Any) -> str:
    # Event payloads are the hot path; orjson is several times faster than json.dumps.
    return orjson.dumps(value, default=str).decode()


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        record.info["synchronous"] = synchronous
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        # Small checkpoints (SQLite's default size, said here on purpose): each writes and
        # fsyncs a few megabytes, and the ingest journal's fsync (on the acknowledgement path)
        # queues behind that burst. 8,000 pages, tried for fewer page copies, gave 60-90 ms
        # acknowledgement stalls under load (docs/benchmarks.md).
        cur.execute("PRAGMA wal_autocheckpoint=1000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("write"):
            # Derived data (profiles, marks) need not wait for fsync: after a power cut its
            # transaction rolls back with the event marks in it, and the events resolve again.
            # The next durable commit (an ingest) fsyncs the WAL, earlier frames included.
            level = synchronous if options.get("durable", True) else "NORMAL"
            info = conn.connection.info
            if info.get("synchronous") != level:
                conn.exec_driver_sql(f"PRAGMA synchronous={level}")
                info["synchronous"] = level
            _begin_immediate(conn.connection.driver_connection)
        else:
            conn.exec_driver_sql("BEGIN DEFERRED")


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("write") and not options.get("durable", True):
            # As on SQLite: derived data commits without waiting for the WAL flush; a crash
            # loses at most the last such commits, whose inputs are still there to redo.
            # PostgreSQL flushes its WAL in order, so the next durable commit covers them.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _begin_immediate(dbapi_conn: Any, timeout: float = 30.0) -> None:
    """BEGIN IMMEDIATE, polling every millisecond while another process holds the lock.

    SQLite's own busy handler backs off to 100 ms sleeps, so a writer in another process
    (`otklik worker` beside `otklik api`, an import) would often wait long after the lock
    was free; within one process `writer_turn` already queues writers without sleeping.
    """
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
    finally:
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def writer_turn(engine: Engine) -> AbstractContextManager[Any]:
    """Held for the whole of a write transaction on SQLite; PostgreSQL needs no such turn."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(engine)
        if lock is None:
            lock = _WRITE_LOCKS[engine] = threading.RLock()
    return lock


@contextmanager
def write_tx(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error.

    `durable=False` is for data derived from the event log (see `_on_begin`).
    """
    with writer_turn(engine), engine.connect() as conn:
        conn = conn.execution_options(write=True, durable=durable)
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """The request/task wrapper: services use the session, only this commits."""
    with writer_turn(engine) if write else nullcontext(), engine.connect() as conn:
        if write:
            conn = conn.execution_options(write=True)
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
