"""The baseline for bench/ingest: parse a batch and insert it into SQLite, nothing else.

No auth, no validation, no normalisation, no dedup, no durability wait beyond the commit:
the floor cost of "FastAPI + SQLite" on this machine, against which Otklik's ingest is compared.
"""

from __future__ import annotations

import os
import sqlite3
import threading

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()
_local = threading.local()


def _conn() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["BARE_DB"], timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS event"
            " (id INTEGER PRIMARY KEY, message_id TEXT, payload TEXT)"
        )
        _local.conn = conn
    return conn


@app.get("/")
def root() -> dict[str, bool]:
    return {"ok": True}


@app.post("/v1/batch")
async def batch(request: Request) -> Response:
    body = orjson.loads(await request.body())
    rows = [(item.get("messageId"), orjson.dumps(item).decode()) for item in body["batch"]]
    conn = _conn()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO event (message_id, payload) VALUES (?, ?)", rows)
    conn.execute("COMMIT")
    return Response(b'{"success":true}', media_type="application/json")
