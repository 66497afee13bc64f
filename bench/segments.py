"""bench/segments: dynamic segments — full builds, per-event updates, and the cron way beside them.

    python bench/segments.py [--customers 20000] [--events-per-customer 10] [--probes 300]
                             [--burst 100] [--backend sqlite|postgres|both] [--pg-url URL]
                             [--explain] [--analyze] [--seeded DIR]
    python bench/segments.py --customers 1000000 --backend sqlite    # the issue's size (10M events)

--analyze runs ANALYZE on the SQLite store after seeding (Otklik itself never does; PostgreSQL
is always analysed, as autovacuum would do); --explain prints each segment's query plan.

Seeds one shop straight into the store (profiles with consistent aggregates, identities,
consents, suppressions, events already resolved, orders; 1 % of customers carry a merged-away
anonymous profile holding their early events), then measures:
  (a) full builds of 20 typical segments through the segment loop (per segment: ms, members,
      and the evaluating / applying / scheduling stages);
  (b) per-event incremental latency: for --probes random customers one new event, their
      aggregates and the dirty row are committed together, then `SegmentLoop.drain_dirty()`
      is timed; after each probe every segment's stored membership of that customer is checked
      against a from-scratch evaluation (mismatches must be 0); then --burst customers change
      at once and one drain handles them all (checked the same way);
  (c) the cron way (Mautic's `segment:update`), in the same run: each segment's full filter
      (the same compiled SQL, unscoped) re-run and diffed against the stored members, fetched
      and written 300 rows at a time; the ratio to (b).
Progress goes to stderr; stdout is JSON lines only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, new_slug, percentile
from bench.console import EVENT_COLS, PROFILE_COLS, pg_or_store

BENCH = "segments"
DAY = 86400.0
SPAN_DAYS = 400
CRON_BATCH = 300  # Mautic's segment:update --batch-limit default
CRON_INTERVAL_S = 300.0  # a cron every 5 minutes: a change waits half of that on average

VIEW, ADD, ORDER, SIGNIN, PAGE = range(5)
NAMES = ("Product Viewed", "Product Added", "Order Completed", "Signed In", None)
KIND_P = (0.52, 0.16, 0.03, 0.12, 0.17)
FOLLOW_UP = 0.3  # share of "Product Added" followed by an order within 20 hours
CITIES = ("Moscow", "Saint Petersburg", "Novosibirsk", "Yekaterinburg", "Kazan",
          "Nizhny Novgorod", "Chelyabinsk", "Samara", "Omsk", "Rostov-on-Don", "Ufa",
          "Krasnoyarsk")  # fmt: skip
CITY_CUM = list(np.cumsum([30, 14, 7, 7, 6, 6, 5, 5, 5, 5, 5, 5]))
CATEGORIES = ("shoes", "clothes", "electronics", "home", "beauty", "sports", "toys", "books")
DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "outlook.com", "bk.ru", "icloud.com")
FIRST = ("anna", "ivan", "olga", "sergey", "maria", "dmitry", "elena", "alexey", "natalia",
         "pavel", "irina", "mikhail", "john", "emma", "daniel", "sofia")  # fmt: skip
TIERS = ("bronze", "silver", "gold")
SKUS = 5000
ORDER_COLS = ("id", "workspace_id", "external_id", "profile_id", "placed_at", "total",
              "currency", "status", "source", "message_id", "created_at")  # fmt: skip
IDENTITY_COLS = ("id", "workspace_id", "type", "value", "profile_id", "created_at")
CONSENT_COLS = ("id", "workspace_id", "profile_id", "channel", "purpose", "topic", "status",
                "source", "updated_at")  # fmt: skip
SUPPRESSION_COLS = ("id", "workspace_id", "channel", "address", "reason", "detail", "created_at")


# -- the shop --------------------------------------------------------------------------------------
@dataclass
class Shop:
    """Customers and their events as arrays (events in time order = arrival order)."""

    now: float
    created: np.ndarray  # per customer, Unix seconds
    pids: list[str]  # root profile id (hex) per customer
    loser: dict[int, str]  # customer -> merged-away profile id (hex)
    owner: np.ndarray  # per event: customer index
    on_loser: np.ndarray  # per event: stored on the merged-away profile
    ts: np.ndarray  # per event: Unix seconds
    kind: np.ndarray
    sku: np.ndarray
    total: np.ndarray  # order totals (0 elsewhere)
    price: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def events(self) -> int:
        return len(self.ts)


def generate(customers: int, per_customer: float, seed: int = 11) -> Shop:
    rng = np.random.default_rng(seed)
    now = time.time() - 60
    span = SPAN_DAYS * DAY
    created = np.sort(now - span + rng.random(customers) * (span - 3600))
    counts = 1 + rng.poisson(max(per_customer - 1, 0), customers)
    total = int(counts.sum())
    owner = np.repeat(np.arange(customers, dtype=np.int32), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ts = created[owner] + rng.random(total) * (now - created[owner])
    ts[starts] = created  # the first visit creates the profile
    kind = rng.choice(5, size=total, p=KIND_P).astype(np.int8)
    kind[starts] = PAGE
    # Carts that turn into orders a few hours later (the rest are abandoned carts).
    follow = (kind[:-1] == ADD) & (owner[1:] == owner[:-1]) & (rng.random(total - 1) < FOLLOW_UP)
    nxt = np.nonzero(follow)[0] + 1
    kind[nxt] = ORDER
    ts[nxt] = np.minimum(ts[nxt - 1] + rng.uniform(0.05, 20, len(nxt)) * 3600, now - 1)
    order = np.argsort(ts, kind="stable")
    owner, ts, kind = owner[order], ts[order], kind[order]
    sku = rng.integers(0, SKUS, total).astype(np.int32)
    price = np.round(np.exp(rng.normal(7.8, 0.8, SKUS)), -1)
    amounts = np.round(np.exp(rng.normal(8.3, 0.7, total)), 2)
    order_total = np.where(kind == ORDER, amounts, 0.0)
    bits = rng.integers(0, 2**63, customers)
    pids = [f"{(n + 1):016x}{int(b):016x}" for n, b in enumerate(bits)]
    merged = rng.random(customers) < 0.01
    loser = {int(n): f"{(n + 1):016x}{0xA000000000000000 | int(bits[n]) >> 4:016x}"
             for n in np.nonzero(merged)[0]}  # fmt: skip
    # A merged customer's early history (the first fifth of their life) is on the anonymous one.
    cut = created + 0.2 * (now - created)
    on_loser = merged[owner] & (ts < cut[owner])
    return Shop(now, created, pids, loser, owner, on_loser, ts, kind, sku, order_total, price)


def times(seconds: np.ndarray, suffix: str) -> list[str]:
    """Unix seconds as the store's text ("YYYY-MM-DD HH:MM:SS.ffffff" + suffix)."""
    text = np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") + suffix for t in text.tolist()]


def first_last(owner: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the value at the first and last occurrence (NaN where none)."""
    first, last = np.full(n, np.nan), np.full(n, np.nan)
    if len(owner):
        ids, at = np.unique(owner, return_index=True)
        first[ids] = values[at]
        ids, at = np.unique(owner[::-1], return_index=True)
        last[ids] = values[::-1][at]
    return first, last


# -- writing it ------------------------------------------------------------------------------------
class Writer:
    """Rows straight to the driver (COPY on PostgreSQL, executemany on SQLite)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.tz = "+00" if self.postgres else ""

    def rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            names = ", ".join(columns)
            if self.postgres:
                with (
                    raw.cursor() as cur,
                    cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as cp,
                ):
                    for row in rows:
                        cp.write_row(row)
                return
            marks = ", ".join("?" for _ in columns)
            raw.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """(name, DDL) of indexes that can be dropped and rebuilt around a bulk load."""
        with self.engine.begin() as conn:
            if self.postgres:
                query = (
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND "
                    "indexname NOT IN (SELECT conname FROM pg_constraint)"
                )
                found = conn.exec_driver_sql(query, (table,)).all()
            else:
                query = "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? "
                found = conn.exec_driver_sql(query + "AND sql IS NOT NULL", (table,)).all()
        return [(str(name), str(ddl)) for name, ddl in found]


def seed(engine: Any, ws: uuid.UUID, shop: Shop, bar: Any) -> dict[str, int]:
    w = Writer(engine)
    wsx, tz = ws.hex, w.tz
    n = len(shop.pids)
    rng = random.Random(5)
    sizes = {"merged_profiles": len(shop.loser)}
    root_owner = shop.owner
    counts = np.bincount(root_owner, minlength=n)
    first_seen, last_seen = first_last(root_owner, shop.ts, n)
    is_order = shop.kind == ORDER
    orders = np.bincount(root_owner[is_order], minlength=n)
    revenue = np.bincount(root_owner[is_order], weights=shop.total[is_order], minlength=n)
    _, last_order = first_last(root_owner[is_order], shop.ts[is_order], n)
    created_s = times(shop.created, tz)
    first_s = times(first_seen, tz)
    last_s = times(last_seen, tz)
    last_order_s = times(np.nan_to_num(last_order), tz)
    this_year = datetime.fromtimestamp(shop.now, UTC).year

    task = bar.add_task("profiles", total=n)
    profiles, identities, consents, suppressions = [], [], [], []
    emails = phones = 0
    for i in range(n):
        pid = shop.pids[i]
        first = FIRST[i % len(FIRST)]
        traits: dict[str, Any] = {"first_name": first.title()}
        traits["city"] = rng.choices(CITIES, cum_weights=CITY_CUM)[0]
        traits["tier"] = TIERS[min(2, int(rng.random() ** 2 * 3))]
        age = rng.randint(18, 70)
        traits["age"] = age
        if rng.random() < 0.7:
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            traits["birthday"] = f"{this_year - age:04d}-{month:02d}-{day:02d}"
        email = phone = None
        if rng.random() < 0.9:
            email = f"{first}.{i}@{DOMAINS[i % len(DOMAINS)]}"
            traits["email"] = email
            emails += 1
        if rng.random() < 0.5:
            phone = f"+79{i:09d}"
            traits["phone"] = phone
            phones += 1
        c = created_s[i]
        profiles.append(
            (pid, wsx, orjson.dumps(traits).decode(), email, phone, None, None, c, last_s[i],
             first_s[i], last_s[i], int(counts[i]), int(orders[i]), round(float(revenue[i]), 2),
             last_order_s[i] if orders[i] else None)
        )  # fmt: skip
        identities.append((uuid.uuid4().hex, wsx, "user_id", f"u-{i}", pid, c))
        if email:
            identities.append((uuid.uuid4().hex, wsx, "email", email, pid, c))
            if rng.random() < 0.6:
                status = "granted" if rng.random() < 0.85 else "denied"
                consents.append(
                    (uuid.uuid4().hex, wsx, pid, "email", "marketing", "", status, "form", c)
                )
                if status == "granted" and rng.random() < 0.02:
                    suppressions.append((uuid.uuid4().hex, wsx, "email", email, "bounce", "", c))
        if phone:
            identities.append((uuid.uuid4().hex, wsx, "phone", phone, pid, c))
            if rng.random() < 0.4:
                consents.append(
                    (uuid.uuid4().hex, wsx, pid, "sms", "marketing", "", "granted", "form", c)
                )
        if i in shop.loser:
            lid = shop.loser[i]
            profiles.append((lid, wsx, "{}", None, None, pid, None, c, c, c, c, 0, 0, 0.0, None))
            identities.append((uuid.uuid4().hex, wsx, "anonymous_id", f"a-{i}", pid, c))
        if len(profiles) >= 50_000:
            w.rows("profile", PROFILE_COLS, profiles)
            bar.advance(task, len(profiles))
            profiles = []
    w.rows("profile", PROFILE_COLS, profiles)
    bar.update(task, completed=n)
    identities.sort(key=lambda row: (row[2], row[3]))
    for start in range(0, len(identities), 200_000):
        w.rows("identity", IDENTITY_COLS, identities[start : start + 200_000])
    w.rows("consent", CONSENT_COLS, consents)
    w.rows("suppression", SUPPRESSION_COLS, suppressions)
    sizes.update(identities=len(identities), consents=len(consents), emails=emails,
                 phones=phones, suppressed=len(suppressions))  # fmt: skip
    sizes["orders"] = seed_events(w, wsx, shop, bar)
    return sizes


def seed_events(w: Writer, wsx: str, shop: Shop, bar: Any) -> int:
    """Events (resolved, in time order) and their orders; event indexes rebuilt afterwards."""
    indexes = w.secondary_indexes("event")
    with w.engine.begin() as conn:
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    task = bar.add_task("events", total=shop.events)
    chunk = 100_000
    orders = 0
    loser_ids = shop.loser
    for start in range(0, shop.events, chunk):
        stop = min(start + chunk, shop.events)
        stamps = times(shop.ts[start:stop], "")
        owners = shop.owner[start:stop].tolist()
        kinds = shop.kind[start:stop].tolist()
        skus = shop.sku[start:stop].tolist()
        totals = shop.total[start:stop].tolist()
        moved = shop.on_loser[start:stop].tolist()
        rows, order_rows = [], []
        for k in range(stop - start):
            seq = start + k
            who, kind, stamp = owners[k], kinds[k], stamps[k]
            mid = f"m-{seq:010d}"
            anonymous = moved[k]
            pid = loser_ids[who] if anonymous else shop.pids[who]
            user = None if anonymous else f"u-{who}"
            anon = f"a-{who}" if anonymous else None
            name = NAMES[kind]
            if kind in (VIEW, ADD):
                s = skus[k]
                props: dict[str, Any] = {"sku": f"SKU-{s}", "category": CATEGORIES[s % 8],
                                         "price": float(shop.price[s])}  # fmt: skip
            elif kind == ORDER:
                props = {"order_id": f"o-{seq:010d}", "total": totals[k], "currency": "RUB"}
                order_rows.append(
                    (uuid.uuid4().hex, wsx, f"o-{seq:010d}", pid, stamp + w.tz, totals[k], "RUB",
                     "completed", "event", mid, stamp + w.tz)
                )  # fmt: skip
            elif kind == SIGNIN:
                props = {"method": "password"}
            else:
                props = {"path": f"/catalog/{skus[k] % 97}", "title": "Catalog"}
            kind_name = "page" if name is None else "track"
            payload = {
                "type": kind_name,
                "event": name,
                "userId": user,
                "anonymousId": anon,
                "messageId": mid,
                "timestamp": stamp.replace(" ", "T") + "Z",
                "properties": props,
                "context": {"library": {"name": "analytics.js", "version": "2.11.1"}},
            }
            rows.append(
                (wsx, mid, kind_name, name, user, anon, stamp + w.tz, stamp + w.tz,
                 orjson.dumps(payload).decode(), pid, 1, False)
            )  # fmt: skip
        w.rows("event", EVENT_COLS, rows)
        w.rows("order", ORDER_COLS, order_rows)
        orders += len(order_rows)
        bar.advance(task, stop - start)
    task = bar.add_task("event indexes", total=len(indexes))
    for _, ddl in indexes:
        with w.engine.begin() as conn:
            conn.exec_driver_sql(ddl)
        bar.advance(task)
    return orders


# -- the 20 segments -------------------------------------------------------------------------------
def ev(name: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "event", "name": name, **kw}


def attr(field_name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"kind": "attribute", "field": field_name, "op": op, "value": value}


def trait(field_name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"kind": "trait", "field": field_name, "op": op, "value": value}


def all_of(*rules: Any) -> dict[str, Any]:
    return {"kind": "all", "rules": list(rules)}


def any_of(*rules: Any) -> dict[str, Any]:
    return {"kind": "any", "rules": list(rules)}


def not_(rule: Any) -> dict[str, Any]:
    return {"kind": "not", "rule": rule}


BEHAVIOURAL = "viewed_3x_30d"


def definitions(ids: dict[str, uuid.UUID]) -> list[tuple[str, dict[str, Any]]]:
    """(name, rules); the last two refer to earlier segments through `ids`."""
    oc, viewed = "Order Completed", "Product Viewed"
    shoes = [{"property": "category", "op": "eq", "value": "shoes"}]
    abandoned = {
        "kind": "sequence",
        "first": {"name": "Product Added"},
        "then_not": {"name": oc},
        "within_hours": 24,
        "in_last_days": 30,
    }
    return [
        (BEHAVIOURAL, ev(viewed, within_days=30, op="gte", value=3)),
        ("big_spenders_90d", ev(oc, within_days=90, measure="sum", property="total",
                                op="gte", value=10_000)),
        ("lapsed_60d", all_of(ev(oc, op="gte", value=1),
                              not_(ev(oc, within_days=60, op="gte", value=1)))),
        ("cart_abandoned_24h", abandoned),
        ("city_big3", trait("city", "in", ["Moscow", "Saint Petersburg", "Kazan"])),
        ("signed_up_30d_ago", attr("created_at", "days_ago_more_than", 30)),
        ("birthday_7d", trait("birthday", "anniversary_within", 7)),
        ("email_reachable", {"kind": "reachable", "channel": "email"}),
        ("vip", any_of(attr("revenue", "gte", 30_000), attr("orders_count", "gte", 5))),
        ("active_outside_moscow", all_of(not_(trait("city", "eq", "Moscow")),
                                         attr("last_seen_at", "days_ago_within", 14))),
        ("shoes_viewers_30d", ev(viewed, where=shoes, within_days=30, op="gte", value=1)),
        ("premium_browsers_90d", ev(viewed, within_days=90, measure="avg", property="price",
                                    op="gte", value=8_000)),
        ("dormant_buyers", all_of(attr("orders_count", "gte", 1),
                                  ev("Signed In", within_days=30, op="lte", value=0))),
        ("new_30d", attr("created_at", "days_ago_within", 30)),
        ("gmail", attr("email", "contains", "gmail")),
        ("has_phone", {"kind": "identifier", "type": "phone"}),
        ("gold_tier", trait("tier", "eq", "gold")),
        ("age_25_34", trait("age", "between", [25, 34])),
        ("abandoned_reachable", all_of(segment_rule(ids, "cart_abandoned_24h"),
                                       segment_rule(ids, "email_reachable"))),
        ("win_back", all_of(segment_rule(ids, "lapsed_60d"),
                            segment_rule(ids, "vip", member=False),
                            any_of({"kind": "reachable", "channel": "email"},
                                   {"kind": "reachable", "channel": "sms"}))),
    ]  # fmt: skip


def segment_rule(ids: dict[str, uuid.UUID], name: str, member: bool = True) -> dict[str, Any]:
    # Placeholders until the segment exists; create_segments asks again once it does.
    target = ids.get(name)
    return {"kind": "segment", "segment_id": str(target or uuid.UUID(int=0)), "member": member}


def create_segments(engine: Any, ws: uuid.UUID) -> dict[str, uuid.UUID]:
    from otklik.kit.db import write_tx
    from otklik.kit.time import utc_now
    from otklik.segments import service

    ids: dict[str, uuid.UUID] = {}
    for n in range(len(definitions(ids))):
        name, rules = definitions(ids)[n]  # later rules see the ids created so far
        with write_tx(engine) as conn:
            ids[name] = service.create(conn, ws, name=name, description="", kind="dynamic",
                                       rules=rules, now=utc_now())  # fmt: skip
    return ids


# -- (a) full builds -------------------------------------------------------------------------------
def full_builds(loop: Any, ids: dict[str, uuid.UUID], tag: dict[str, Any]) -> dict[str, int]:
    stages: list[dict[str, float]] = []  # per build, in build order: stage -> start time

    def progress(stage: str, step: int, of: int) -> None:
        if stage == "evaluating":
            stages.append({})
        stages[-1][stage] = time.perf_counter()

    names = {v: k for k, v in ids.items()}
    t0 = time.perf_counter()
    built = loop.build_waiting(progress)
    wall = (time.perf_counter() - t0) * 1000
    members: dict[str, int] = {}
    for result, marks in zip(loop.last_builds, stages, strict=False):
        name = names[result.segment_id]
        members[name] = result.members
        evaluating = (marks["applying"] - marks["evaluating"]) * 1000
        applying = (marks.get("scheduling", marks["applying"]) - marks["applying"]) * 1000
        # build_ms runs from the start of the build to its last write (not the staging drop).
        extra = {"evaluating_ms": evaluating, "applying_ms": applying,
                 "scheduling_ms": max(0.0, result.build_ms - evaluating - applying)}  # fmt: skip
        emit(BENCH, f"build_{name}_ms", result.build_ms, "ms", segment=name,
             members=result.members, **extra, **tag)  # fmt: skip
    total = sum(r.build_ms for r in loop.last_builds)
    emit(BENCH, "build_20_segments_total_ms", total, "ms", built=built, wall_ms=wall, **tag)
    behavioural = next(r for r in loop.last_builds if names[r.segment_id] == BEHAVIOURAL)
    emit(BENCH, "build_behavioural_segment_ms", behavioural.build_ms, "ms", target=10_000,
         segment=BEHAVIOURAL, members=behavioural.members, **tag)  # fmt: skip
    return members


def catch_up_dues(loop: Any) -> tuple[int, float]:
    """Due times that passed while building (the loop's own job between events)."""
    t0, done = time.perf_counter(), 0
    while step := loop.run_due():
        done += step
    return done, (time.perf_counter() - t0) * 1000


# -- (b) per-event incremental updates -------------------------------------------------------------
PROBE_KINDS = (VIEW, VIEW, ADD, ORDER, SIGNIN)


def probe_event(
    engine: Any, ws: uuid.UUID, pid: uuid.UUID, customer: int, kind: int, rng: random.Random
) -> None:
    """One new event as the resolver would leave it: the event, the aggregates, the dirty row."""
    from sqlalchemy import insert

    from otklik.kit.db import write_tx
    from otklik.kit.time import utc_now
    from otklik.models import Event, Order, Profile
    from otklik.segments.changes import profiles_changed

    now = utc_now()
    name = NAMES[kind]
    mid = f"probe-{uuid.uuid4().hex}"
    props: dict[str, Any]
    if kind == ORDER:
        total = round(rng.uniform(500, 40_000), 2)
        props = {"order_id": mid, "total": total, "currency": "RUB"}
    elif kind in (VIEW, ADD):
        s = rng.randrange(SKUS)
        price = round(rng.uniform(300, 20_000), -1)
        props = {"sku": f"SKU-{s}", "category": CATEGORIES[s % 8], "price": price}
    else:
        props = {"method": "password"}
    payload = {"type": "track", "event": name, "userId": f"u-{customer}", "messageId": mid,
               "timestamp": now.isoformat(), "properties": props}  # fmt: skip
    topics = {"seen", f"event:{name}"}
    with write_tx(engine) as conn:
        conn.execute(insert(Event.__table__), [{
            "workspace_id": ws, "message_id": mid, "type": "track", "name": name,
            "user_id": f"u-{customer}", "timestamp": now, "received_at": now,
            "payload": payload, "profile_id": pid, "status": 1, "needs_payload": False,
        }])  # fmt: skip
        p = Profile.__table__.c
        values: dict[str, Any] = {"events_count": p.events_count + 1, "last_seen_at": now,
                                  "updated_at": now}  # fmt: skip
        if kind == ORDER:
            values.update(orders_count=p.orders_count + 1, revenue=p.revenue + total,
                          last_order_at=now)  # fmt: skip
            conn.execute(insert(Order.__table__), [{
                "workspace_id": ws, "external_id": mid, "profile_id": pid, "placed_at": now,
                "total": total, "currency": "RUB", "message_id": mid,
            }])  # fmt: skip
            topics.add("order")
        conn.execute(Profile.__table__.update().where(p.id == pid).values(**values))
        profiles_changed(conn, ws, {pid: topics})


def mismatches(engine: Any, loop: Any, ws: uuid.UUID, pid: uuid.UUID) -> list[str]:
    """Segments whose stored membership of `pid` differs from a from-scratch evaluation."""
    from sqlalchemy import select

    from otklik.kit.db import read_tx
    from otklik.kit.time import utc_now
    from otklik.models import SegmentMembership
    from otklik.segments import compiler

    m = SegmentMembership.__table__.c
    out = []
    with read_tx(engine) as conn:
        segments = loop.cache.of_workspaces(conn, [ws]).get(ws, [])
        base = loop.base(conn, ws, utc_now())
        for segment in segments:
            ctx = segment.context(base).scoped([pid])
            fresh = pid in {row[0] for row in conn.execute(compiler.members(segment.rules, ctx))}
            stored = conn.execute(
                select(m.profile_id).where(
                    m.segment_id == segment.id, m.profile_id == pid, m.exited_at.is_(None)
                )
            ).first()
            if fresh != (stored is not None):
                out.append(segment.name)
    return out


def probes(
    engine: Any, loop: Any, ws: uuid.UUID, shop: Shop, count: int, tag: dict[str, Any]
) -> tuple[float, float]:
    rng = random.Random(13)
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    wrong: list[tuple[int, list[str]]] = []
    evaluated0 = loop.evaluated
    for n in range(count + 5):
        customer = rng.randrange(len(shop.pids))
        pid = uuid.UUID(hex=shop.pids[customer])
        kind = rng.choice(PROBE_KINDS)
        probe_event(engine, ws, pid, customer, kind, rng)
        t0 = time.perf_counter()
        loop.drain_dirty()
        ms = (time.perf_counter() - t0) * 1000
        bad = mismatches(engine, loop, ws, pid)
        if bad:
            wrong.append((customer, bad))
        if n >= 5:  # the first few warm caches and prepared statements
            latencies.append(ms)
            by_kind.setdefault(str(NAMES[kind]), []).append(ms)
    extra = {"probes": count, "target_p99": 10, **tag}
    for q in (50, 99):
        emit(BENCH, f"incremental_p{q}_ms", percentile(latencies, q), "ms", **extra)
    emit(BENCH, "incremental_max_ms", max(latencies), "ms", **extra)
    for name, values in sorted(by_kind.items()):
        emit(BENCH, "incremental_p50_by_event_ms", percentile(values, 50), "ms", event=name,
             p99=percentile(values, 99), probes=len(values), **tag)  # fmt: skip
    evaluated = loop.evaluated - evaluated0
    emit(BENCH, "incremental_mismatches", len(wrong), "count", examples=wrong[:5],
         profile_segment_evaluations=evaluated, **tag)  # fmt: skip
    return percentile(latencies, 50), percentile(latencies, 99)


def burst(
    engine: Any, loop: Any, ws: uuid.UUID, shop: Shop, count: int, tag: dict[str, Any]
) -> None:
    """`count` customers change at once and one drain handles them all (as after a resolver
    batch); then each one's membership in every segment is checked from scratch."""
    rng = random.Random(17)
    chosen = rng.sample(range(len(shop.pids)), min(count, len(shop.pids)))
    for customer in chosen:
        kind = rng.choice(PROBE_KINDS)
        probe_event(engine, ws, uuid.UUID(hex=shop.pids[customer]), customer, kind, rng)
    t0 = time.perf_counter()
    drained = 0
    while step := loop.drain_dirty():
        drained += step
    ms = (time.perf_counter() - t0) * 1000
    wrong = []
    for customer in chosen:
        bad = mismatches(engine, loop, ws, uuid.UUID(hex=shop.pids[customer]))
        if bad:
            wrong.append((customer, bad))
    emit(BENCH, "burst_drain_ms", ms, "ms", changed=drained, per_event_ms=ms / max(drained, 1),
         mismatches=len(wrong), examples=wrong[:5], **tag)  # fmt: skip


# -- (c) the cron way ------------------------------------------------------------------------------
def cron_table() -> Any:
    from sqlalchemy import Column, MetaData, Table, Uuid

    return Table(
        "bench_cron_member",
        MetaData(),
        Column("segment_id", Uuid, primary_key=True),
        Column("profile_id", Uuid, primary_key=True),
    )


def cron_snapshot(engine: Any) -> None:
    """The cron's own member list, as its previous pass left it (= our members now)."""
    from sqlalchemy import insert, select

    from otklik.kit.db import write_tx
    from otklik.models import SegmentMembership

    table = cron_table()
    m = SegmentMembership.__table__.c
    with write_tx(engine) as conn:
        table.create(conn, checkfirst=True)
        current = select(m.segment_id, m.profile_id).where(m.exited_at.is_(None))
        conn.execute(insert(table).from_select(["segment_id", "profile_id"], current))


def cron_pass(engine: Any, loop: Any, ws: uuid.UUID, tag: dict[str, Any]) -> float:
    """Mautic's segment:update for every segment: full filter, diff, 300 rows at a time."""
    from sqlalchemy import delete, insert, select

    from otklik.kit.db import read_tx, write_tx
    from otklik.kit.time import utc_now
    from otklik.segments import compiler

    table = cron_table()
    t = table.c
    with read_tx(engine) as conn:
        segments = loop.cache.of_workspaces(conn, [ws]).get(ws, [])
    started = time.perf_counter()
    added = removed = 0
    for segment in segments:
        t0 = time.perf_counter()
        with read_tx(engine) as conn:
            base = loop.base(conn, ws, utc_now())
            query = compiler.members(segment.rules, segment.context(base))
            matching = {row[0] for row in conn.execute(query)}
            stored: set[uuid.UUID] = set()
            after = None
            while True:  # the stored members, a batch of 300 at a time
                page = select(t.profile_id).where(t.segment_id == segment.id)
                if after is not None:
                    page = page.where(t.profile_id > after)
                batch = [row[0] for row in conn.execute(page.order_by(t.profile_id).limit(300))]
                stored.update(batch)
                if len(batch) < CRON_BATCH:
                    break
                after = batch[-1]
        adds, removes = sorted(matching - stored), sorted(stored - matching)
        for start in range(0, len(adds), CRON_BATCH):
            with write_tx(engine) as conn:
                rows = [{"segment_id": segment.id, "profile_id": pid}
                        for pid in adds[start : start + CRON_BATCH]]  # fmt: skip
                conn.execute(insert(table), rows)
        for start in range(0, len(removes), CRON_BATCH):
            with write_tx(engine) as conn:
                conn.execute(delete(table).where(
                    t.segment_id == segment.id,
                    t.profile_id.in_(removes[start : start + CRON_BATCH]),
                ))  # fmt: skip
        added, removed = added + len(adds), removed + len(removes)
        emit(BENCH, f"cron_{segment.name}_ms", (time.perf_counter() - t0) * 1000, "ms",
             segment=segment.name, matching=len(matching), added=len(adds),
             removed=len(removes), **tag)  # fmt: skip
    pass_ms = (time.perf_counter() - started) * 1000
    emit(BENCH, "cron_pass_ms", pass_ms, "ms", segments=len(segments), added=added,
         removed=removed, batch=CRON_BATCH, **tag)  # fmt: skip
    return pass_ms


def cron_vs_ours(engine: Any, loop: Any, ws: uuid.UUID, tag: dict[str, Any]) -> None:
    """Where the cron's recomputed members and our incremental members differ, and why.

    The cron pass reads each segment at its own moment, minutes after the incremental side
    last caught up with its due times; a difference whose (segment, profile) has a due time
    that has passed since is a time-relative flip not yet applied (the loop's next turn does
    it). Any other difference would be a wrong membership.
    """
    from sqlalchemy import select

    from otklik.kit.db import read_tx
    from otklik.kit.time import utc_now
    from otklik.models import SegmentDue, SegmentMembership

    t = cron_table().c
    m = SegmentMembership.__table__.c
    d = SegmentDue.__table__.c
    ours = select(m.segment_id, m.profile_id).where(m.exited_at.is_(None))
    theirs = select(t.segment_id, t.profile_id)
    with read_tx(engine) as conn:
        now = utc_now()
        names = {s.id: s.name for s in loop.cache.of_workspaces(conn, [ws]).get(ws, [])}
        pairs = [tuple(row) for row in conn.execute(ours.except_(theirs))]
        pairs += [tuple(row) for row in conn.execute(theirs.except_(ours))]
        explained = 0
        by_segment: dict[str, int] = {}
        for sid, pid in pairs:
            due = conn.execute(
                select(d.due_at).where(d.segment_id == sid, d.profile_id == pid, d.due_at <= now)
            ).first()
            explained += due is not None
            by_segment[names.get(sid, str(sid))] = by_segment.get(names.get(sid, str(sid)), 0) + 1
    emit(BENCH, "cron_vs_incremental_differences", len(pairs), "rows", by_segment=by_segment,
         explained_by_passed_due_times=explained, unexplained=len(pairs) - explained,
         **tag)  # fmt: skip


# -- the run ---------------------------------------------------------------------------------------
def explain(engine: Any, loop: Any, ws: uuid.UUID) -> None:
    """The query plan of every segment's full build query, to stderr."""
    from sqlalchemy.ext.compiler import compiles
    from sqlalchemy.sql.expression import ClauseElement, Executable

    from otklik.kit.db import read_tx
    from otklik.kit.time import utc_now
    from otklik.segments import compiler

    class Explain(Executable, ClauseElement):
        inherit_cache = False

        def __init__(self, query: Any, prefix: str) -> None:
            self.query, self.prefix = query, prefix

    @compiles(Explain)
    def _explain(element: Explain, sql: Any, **kw: Any) -> str:
        return element.prefix + sql.process(element.query, **kw)

    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with read_tx(engine) as conn:
        base = loop.base(conn, ws, utc_now())
        for segment in loop.cache.of_workspaces(conn, [ws]).get(ws, []):
            query = compiler.members(segment.rules, segment.context(base))
            print(f"\n== {segment.name}\n{query.compile(conn)}\n--", file=sys.stderr)
            plan = conn.execute(Explain(query, prefix)).cursor  # raw rows: no type processing
            for row in plan.fetchall() if plan else []:
                print("  " + " | ".join(str(v) for v in row), file=sys.stderr)


def progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))  # fmt: skip


class SeededCopy:
    """--seeded DIR: keep the seeded SQLite store and reuse it on the next run of the same size.

    Seeding 1M customers takes minutes; the shop itself is regenerated (it is deterministic) and
    only the store file is copied, so every run still builds and measures from the same start.
    """

    def __init__(self, args: argparse.Namespace, backend: str, url: str) -> None:
        self.path = Path(url.removeprefix("sqlite:///")) if backend == "sqlite" else None
        self.dir = Path(args.seeded) if args.seeded and self.path else None
        name = f"segments-{args.customers}-{args.events_per_customer:g}"
        self.file = self.dir / f"{name}.db" if self.dir else None
        self.meta = self.dir / f"{name}.json" if self.dir else None
        self.workspace_id = uuid.UUID(int=0)
        self.sizes: dict[str, int] = {}
        self.restored = False

    def restore(self) -> bool:
        if not (self.file and self.meta and self.path and self.file.exists()):
            return False
        meta = orjson.loads(self.meta.read_bytes())
        self.workspace_id, self.sizes = uuid.UUID(meta["workspace_id"]), meta["sizes"]
        shutil.copyfile(self.file, self.path)
        self.restored = True
        return True

    def save(self, engine: Any, ws: uuid.UUID, sizes: dict[str, int]) -> None:
        if not (self.file and self.meta and self.path and self.dir):
            return
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, self.file)
        self.meta.write_bytes(orjson.dumps({"workspace_id": str(ws), "sizes": sizes}))


def run(backend: str, args: argparse.Namespace) -> None:
    from otklik.config import Settings
    from otklik.kit.db import make_engine, session_scope
    from otklik.kit.migrate import upgrade
    from otklik.worker.segment_loop import SegmentLoop
    from otklik.workspaces.service import create_workspace

    started = time.perf_counter()
    with pg_or_store(backend, args.pg_url) as url:
        t0 = time.perf_counter()
        shop = generate(args.customers, args.events_per_customer)
        kept = SeededCopy(args, backend, url)
        if kept.restore():
            engine = make_engine(url, synchronous="NORMAL")
            upgrade(engine)
            ws_id, sizes = kept.workspace_id, kept.sizes
        else:
            engine = make_engine(url, synchronous="NORMAL")
            upgrade(engine)
            with session_scope(engine) as session:
                ws, _, _ = create_workspace(session, name="bench", slug=new_slug())
            ws_id = ws.id
            with progress_bar() as bar:
                sizes = seed(engine, ws_id, shop, bar)
            kept.save(engine, ws_id, sizes)
        if backend == "postgres" or args.analyze:
            # PostgreSQL's autovacuum would, soon after a load like this; nothing in Otklik
            # runs ANALYZE on SQLite, so there it is opt-in (to show what statistics change).
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        tag: dict[str, Any] = {"backend": backend, "customers": args.customers,
                               "events": shop.events}  # fmt: skip
        if args.analyze and backend == "sqlite":
            tag["analyzed"] = True
        emit(BENCH, "seed_seconds", time.perf_counter() - t0, "s", **sizes, **tag,
             restored_from=str(kept.file) if kept.restored else None)  # fmt: skip
        settings = Settings(database_url=url)
        loop = SegmentLoop(engine, settings)
        ids = create_segments(engine, ws_id)
        members = full_builds(loop, ids, tag)
        emit(BENCH, "members", sum(members.values()), "count", per_segment=members, **tag)
        if args.explain:
            explain(engine, loop, ws_id)
        done, ms = catch_up_dues(loop)
        emit(BENCH, "due_catch_up_after_builds_ms", ms, "ms", due_rows=done, **tag)
        cron_snapshot(engine)
        p50, p99 = probes(engine, loop, ws_id, shop, args.probes, tag)
        if args.burst:
            burst(engine, loop, ws_id, shop, args.burst, tag)
        done, ms = catch_up_dues(loop)
        emit(BENCH, "due_catch_up_after_probes_ms", ms, "ms", due_rows=done, **tag)
        pass_ms = cron_pass(engine, loop, ws_id, tag)
        waited = pass_ms + CRON_INTERVAL_S * 1000 / 2
        emit(BENCH, "cron_fresh_after_ms", waited, "ms", pass_ms=pass_ms,
             interval_s=CRON_INTERVAL_S, note="pass + half a 5-minute interval", **tag)  # fmt: skip
        emit(BENCH, "fresh_sooner_ratio", pass_ms / p99, "x", baseline=pass_ms, ours_p99=p99,
             ours_p50=p50, ratio_p50=pass_ms / p50, ratio_with_interval=waited / p99,
             target=100, note="cron pass alone vs our p99", **tag)  # fmt: skip
        cron_vs_ours(engine, loop, ws_id, tag)
        emit(BENCH, "run_seconds", time.perf_counter() - started, "s", **tag)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events-per-customer", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--burst", type=int, default=100, help="customers changed at once")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default=None, help="an existing server (else one is started)")
    parser.add_argument("--explain", action="store_true", help="query plans to stderr")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE SQLite after seeding")
    parser.add_argument(
        "--seeded", default=None, metavar="DIR", help="keep the seeded SQLite store for reuse"
    )
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run(backend, args)


if __name__ == "__main__":
    main()
