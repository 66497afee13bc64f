"""bench/console: the console's customer list and search on a large store.

    python bench/console.py [--customers 20000] [--events N] [--backend sqlite|postgres|both]
                            [--pg-url URL] [--repeat 20]
    python bench/console.py --customers 100000 --events 1000000     # the issue's size

Seeds one workspace directly through bulk inserts (the demo generator's people: Russian and
English names, messy emails and phones, normalised as the resolver stores them; identities;
events spread over the profiles; some profiles merged away or erased), then measures p50/p99
of each console query two ways:
  query  the service call the page makes (profiles.search.customers_page), in-process;
  page   GET of the whole page over HTTP from a real `otklik serve`, signed in as a viewer.
Cases: the first list page, a filtered page, a deep page by cursor, partial email, phone and
name searches (rare ones, which walk the whole list), a search matching nothing (the worst
case) and an exact user id. Baseline in the same run: the deep page fetched with OFFSET, as
page-number paging would, and our keyset page's ratio to it.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, new_slug, percentile, server, store

BENCH = "console"
PASSWORD = "bench-password-123"
NOW = datetime.now(UTC)


def seed(engine: Any, workspace_id: uuid.UUID, customers: int, events: int) -> dict[str, Any]:
    """Bulk-insert profiles, identities and events; returns probes for the searches."""
    from otklik.demo.generator import DemoConfig, generate_people
    from otklik.kit.ids import uuid7
    from otklik.profiles.identity import normalise_email, normalise_phone

    rng = random.Random(7)
    people = generate_people(DemoConfig(customers=customers, seed=3))
    profiles: list[tuple[Any, ...]] = []
    identities: list[tuple[Any, ...]] = []
    taken: set[tuple[str, str]] = set()
    ids: list[uuid.UUID] = []
    span = timedelta(days=400)

    def ident(kind: str, value: str | None, pid: uuid.UUID, when: datetime) -> None:
        if value and (kind, value) not in taken:
            taken.add((kind, value))
            identities.append((uuid7(), workspace_id, kind, value, pid, when))

    for n, person in enumerate(people):
        pid = uuid.UUID(int=(n + 1) << 64 | rng.getrandbits(64))  # creation order, unique
        created = NOW - span + span * (n / max(customers, 1))
        traits: dict[str, Any] = {}
        email = normalise_email(person.email) if person.email else None
        phone = normalise_phone(person.phone, "RU") if person.phone else None
        if not person.anonymous_only:
            traits = {"first_name": person.first_name, "last_name": person.last_name}
            traits.update({"city": person.city, "email": person.email, "phone": person.phone})
            if rng.random() < 0.3:
                traits["name"] = person.name
        else:
            email = phone = None
        orders = rng.choice([0, 0, 0, 1, 1, 2, 5]) if traits else 0
        last_seen = created + (NOW - created) * rng.random()
        merged_into = ids[-1] if ids and rng.random() < 0.02 else None
        erased = created if merged_into is None and rng.random() < 0.005 else None
        profiles.append(
            (pid, workspace_id, orjson.dumps(traits).decode(), email, phone, merged_into, erased,
             created, created, created, last_seen, 0, orders, orders * 1990.0,
             last_seen if orders else None)
        )  # fmt: skip
        ids.append(pid)
        if not person.anonymous_only:
            ident("user_id", person.user_id, pid, created)
        ident("email", email, pid, created)
        ident("phone", phone, pid, created)
        for anon in person.anonymous_ids:
            ident("anonymous_id", anon, pid, created)
    event_rows = []
    names = ["Product Viewed", "Product Added", "Order Completed", "Signed In"]
    for seq in range(events):
        pid = ids[rng.randrange(len(ids))]
        when = NOW - timedelta(minutes=rng.randrange(400 * 24 * 60))
        kind = "page" if seq % 3 else "track"
        name = None if kind == "page" else names[seq % 4]
        payload = {"type": kind, "properties": {"path": f"/p/{seq % 997}", "n": seq}}
        event_rows.append(
            (workspace_id, f"b-{seq}", kind, name, None, None, when, when,
             orjson.dumps(payload).decode(), pid, 1, False)
        )  # fmt: skip
    with engine.begin() as conn:
        bulk(conn, "profile", PROFILE_COLS, profiles)
        bulk(conn, "identity", ("id", "workspace_id", "type", "value", "profile_id", "created_at"),
             identities)  # fmt: skip
    for start in range(0, len(event_rows), 200_000):
        with engine.begin() as conn:
            bulk(conn, "event", EVENT_COLS, event_rows[start : start + 200_000])
    live = [p for p in profiles if p[5] is None and p[6] is None]
    oldest_user = next(p.user_id for p in people if not p.anonymous_only)
    return {**probes(live), "user_id": oldest_user}


PROFILE_COLS = (
    "id", "workspace_id", "traits", "email", "phone", "merged_into", "erased_at", "created_at",
    "updated_at", "first_seen_at", "last_seen_at", "events_count", "orders_count", "revenue",
    "last_order_at",
)  # fmt: skip
EVENT_COLS = (
    "workspace_id", "message_id", "type", "name", "user_id", "anonymous_id", "timestamp",
    "received_at", "payload", "profile_id", "status", "needs_payload",
)  # fmt: skip


def bulk(conn: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Rows straight to the driver: COPY on PostgreSQL, executemany on SQLite."""
    from otklik.kit.rawsql import Dialect

    dialect = Dialect(conn)
    raw = conn.connection.driver_connection
    if dialect.postgres:
        with (
            raw.cursor() as cur,
            cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as cp,
        ):
            for row in rows:
                cp.write_row(row)
        return

    def value(v: Any) -> Any:
        if isinstance(v, uuid.UUID):
            return v.hex
        if isinstance(v, datetime):
            return dialect.time(v)
        return v

    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'
    raw.cursor().executemany(sql, ([value(v) for v in row] for row in rows))


def probes(live: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Search texts that match few customers, taken from the oldest ones (the longest walk)."""
    oldest = [p for p in live[: max(50, len(live) // 20)] if p[3] and p[4] and p[2] != "{}"]
    person = oldest[len(oldest) // 2]
    traits = orjson.loads(person[2])
    email, phone = person[3], person[4]
    local = email.split("@")[0]
    deep = live[int(len(live) * 0.9)]
    return {
        "email_partial": local[1:-1] if len(local) > 4 else local,
        "phone_domestic": f"8 ({phone[2:5]}) {phone[5:8]}-{phone[8:10]}",
        "phone_digits": phone[4:11],
        "name_rare": f"{traits['first_name']} {traits['last_name']}".upper(),
        "name_common": traits["last_name"][:-1].lower(),
        "no_match": "zzqqxx-nobody",
        "deep": (deep[7], deep[0]),
        "deep_offset": len(live) - int(len(live) * 0.9),
    }


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    fn()  # warm: caches, prepared statements
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 50), percentile(times, 99), result


def cases(probe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from otklik.kit.pagination import encode_cursor
    from otklik.kit.time import iso

    ts, pid = probe["deep"]
    return {
        "list_first_page": {},
        "list_filtered": {"has_orders": "1", "seen": "30", "has_phone": "1"},
        "list_deep_page": {"cursor": encode_cursor([iso(ts), str(pid)])},
        "search_email_partial": {"q": probe["email_partial"]},
        "search_phone_domestic": {"q": probe["phone_domestic"]},
        "search_phone_digits": {"q": probe["phone_digits"]},
        "search_name_cyrillic_rare": {"q": probe["name_rare"]},
        "search_name_cyrillic_common": {"q": probe["name_common"]},
        "search_no_match": {"q": probe["no_match"]},
        "search_exact_user_id": {"q": probe["user_id"]},
    }


def query_case(engine: Any, workspace_id: uuid.UUID, params: dict[str, Any]) -> Callable[[], int]:
    from otklik.kit.db import read_tx
    from otklik.profiles import search
    from otklik.profiles.identity import Junk
    from otklik.profiles.resolver import ResolverConfig
    from otklik.profiles.service import Scope

    config = ResolverConfig("RU", "RUB", frozenset(), Junk(frozenset()))
    filters = search.parse_filters(
        identified=bool(params.get("identified")),
        has_email=bool(params.get("has_email")),
        has_phone=bool(params.get("has_phone")),
        has_orders=bool(params.get("has_orders")),
        seen_days=int(params["seen"]) if params.get("seen") else None,
    )

    def run() -> int:
        with read_tx(engine) as conn:
            page = search.customers_page(
                Scope(conn, workspace_id, config),
                q=params.get("q"),
                filters=filters,
                cursor=params.get("cursor"),
                now=datetime.now(UTC),
            )
            return len(page.items)

    return run


def offset_baseline(engine: Any, workspace_id: uuid.UUID, offset: int) -> Callable[[], int]:
    from sqlalchemy import select

    from otklik.kit.db import read_tx
    from otklik.profiles.repository import PROFILE_COLS as COLS
    from otklik.profiles.repository import P

    stmt = (
        select(*COLS)
        .where(P.c.workspace_id == workspace_id, P.c.merged_into.is_(None), P.c.erased_at.is_(None))
        .order_by(P.c.created_at.desc(), P.c.id.desc())
        .offset(offset)
        .limit(51)
    )

    def run() -> int:
        with read_tx(engine) as conn:
            return len(conn.execute(stmt).all())

    return run


@contextlib.contextmanager
def signed_in(url: str, email: str) -> Iterator[Any]:
    import httpx

    csrf = re.compile(r'name="csrf_token" value="([^"]+)"')
    with httpx.Client(base_url=url, timeout=60) as client:
        token = csrf.search(client.get("/login").text)
        assert token
        form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
        assert client.post("/login", data=form).status_code == 303
        yield client


def run(backend: str, args: argparse.Namespace) -> None:
    from otklik.kit.db import make_engine, session_scope
    from otklik.kit.migrate import upgrade
    from otklik.users import service as users
    from otklik.workspaces.service import create_workspace

    events = args.events if args.events is not None else args.customers * 10
    with pg_or_store(backend, args.pg_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        with session_scope(engine) as session:
            ws, _, _ = create_workspace(session, name="bench", slug=new_slug())
            email = f"viewer-{uuid.uuid4().hex[:6]}@bench.example"
            users.add_member(session, ws.id, email=email, role="viewer", password=PASSWORD)
        t0 = time.perf_counter()
        probe = seed(engine, ws.id, args.customers, events)
        if backend == "postgres":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        tag = {"backend": backend, "customers": args.customers, "events": events}
        emit(BENCH, "seed_seconds", time.perf_counter() - t0, "s", **tag)
        all_cases = cases(probe)
        for name, params in all_cases.items():
            p50, p99, count = timed(query_case(engine, ws.id, params), args.repeat)
            emit(BENCH, f"{name}_query_p50", p50, "ms", rows=count, **tag)
            emit(BENCH, f"{name}_query_p99", p99, "ms", rows=count, **tag)
        deep = query_case(engine, ws.id, all_cases["list_deep_page"])
        base = offset_baseline(engine, ws.id, probe["deep_offset"])
        ours, _, _ = timed(deep, args.repeat)
        theirs, _, _ = timed(base, args.repeat)
        ratio = round(theirs / ours, 2) if ours else None
        extra = {"baseline": round(theirs, 3), "ratio": ratio, "baseline_kind": "offset"}
        emit(BENCH, "deep_page_keyset_p50", ours, "ms", **extra, **tag)
        with server(url) as base_url, signed_in(base_url, email) as client:
            for name, params in all_cases.items():

                def fetch(params: dict[str, Any] = params) -> int:
                    response = client.get("/customers", params=params)
                    assert response.status_code == 200, response.text[:300]
                    return response.text.count("data-customer=")

                p50, p99, count = timed(fetch, args.repeat)
                emit(BENCH, f"{name}_page_p50", p50, "ms", rows=count, **tag)
                emit(BENCH, f"{name}_page_p99", p99, "ms", rows=count, **tag)
        engine.dispose()


@contextlib.contextmanager
def pg_or_store(backend: str, pg_url: str | None) -> Iterator[str]:
    if backend == "postgres" and pg_url:
        import psycopg

        name = f"bench_console_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield pg_url.rsplit("/", 1)[0] + "/" + name
        return
    with store(backend) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=None, help="default: 10 per customer")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default=None, help="an existing server (else one is started)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(backend, args)


if __name__ == "__main__":
    main()
