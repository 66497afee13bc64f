"""What every visitor of the demo shop shares: the catalog, devices, the clock format, one rng."""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from otklik.demo.catalog import SHOP_URL, Product
from otklik.demo.identities import between, pick
from otklik.demo.people import DAY_MS, HOUR_MS, to_ms

if TYPE_CHECKING:
    from otklik.demo.generator import DemoConfig

LIBRARY = "otklik-demo"
LIBRARY_VERSION = "1.0.0"
SHOP_NAME = "Otklik Demo Shop"

Message = dict[str, Any]

_UA = {
    "desktop": [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
    ],
    "mobile_web": [
        "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ],
}
# Documentation address ranges (RFC 5737): never a real visitor's IP.
_IP_PREFIXES = ["203.0.113.", "198.51.100.", "192.0.2."]


@functools.cache
def _clock_tables() -> tuple[list[str], list[str]]:
    hours_minutes = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
    seconds = [f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000)]
    return hours_minutes, seconds


def iso_formatter() -> Callable[[int], str]:
    """Millisecond epoch → `2026-05-01T12:00:00.000Z`: the hottest call, so three lookups."""
    hours_minutes, seconds = _clock_tables()
    days: dict[int, str] = {}

    def iso(ms: int) -> str:
        day, rest = divmod(ms, DAY_MS)
        minute, rest = divmod(rest, 60_000)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
        return prefix + hours_minutes[minute] + seconds[rest]

    return iso


@dataclass(slots=True)
class Device:
    """One browser or app install: its anonymousId and what it stamps on every message."""

    anonymous_id: str
    ip: str
    user_agent: str
    app: dict[str, str] | None  # context.app/os/device for native apps, None on the web
    os: dict[str, str] | None
    device: dict[str, str] | None


class Shop:
    """State shared by every person's history: the catalog, the order counter, the one rng.

    One rng for all people stays reproducible because the merge in `generate_events` resumes
    the per-person generators in an order that depends only on what they yielded before.
    """

    def __init__(self, cfg: DemoConfig, catalog: list[Product]) -> None:
        self.rng = random.Random(f"otklik-demo:{cfg.seed}:events")
        self.seed = cfg.seed
        self.cutoff = to_ms(cfg.start) + cfg.days * DAY_MS - HOUR_MS  # visits last < 1 h
        self.iso = iso_formatter()
        self.orders = 0
        self.out: Message = {}  # the message the last resumed visitor built; see generate_events
        self.catalog = catalog
        self.props = [
            {
                "product_id": p["product_id"],
                "sku": p["sku"],
                "category": p["category"],
                "name": p["name"],
                "price": p["price"],
                "currency": "RUB",
                "url": p["url"],
            }
            for p in catalog
        ]
        self.pages = [
            (p["url"][len(SHOP_URL) :], f"{p['name']} — купить за {p['price']:.0f} ₽")
            for p in catalog
        ]
        self.categories = sorted({p["category"] for p in catalog})
        # Popularity is long-tailed: a few hits get most views, as in any real shop.
        rank = list(range(len(catalog)))
        self.rng.shuffle(rank)
        weight = [1.0 / (r + 1) ** 0.8 for r in rank]
        self.by_category: dict[str, tuple[list[int], list[float]]] = {}
        for category in [*self.categories, ""]:
            idx = [i for i, p in enumerate(catalog) if not category or p["category"] == category]
            cum: list[float] = []
            acc = 0.0
            for i in idx:
                acc += weight[i]
                cum.append(acc)
            self.by_category[category] = (idx, cum)

    def next_order_id(self) -> str:
        self.orders += 1
        return f"o-{self.orders:07d}"

    def pick_product(self, favourite: str) -> int:
        """Mostly from the person's favourite category, else anything; hits more often."""
        rnd = self.rng.random
        idx, cum = self.by_category[favourite if rnd() < 0.6 else ""]
        return idx[min(len(idx) - 1, bisect.bisect(cum, rnd() * cum[-1]))]

    def device(self, kind: str, anonymous_id: str) -> Device:
        rng = self.rng
        ip = f"{pick(rng, _IP_PREFIXES)}{between(rng, 1, 255)}"
        if kind in _UA:
            return Device(anonymous_id, ip, pick(rng, _UA[kind]), None, None, None)
        build = pick(rng, ["412", "418", "431"])
        app = {"name": SHOP_NAME, "version": f"3.{build[1]}.{build[2]}", "build": build}
        if kind == "ios_app":
            app["namespace"] = "com.example.otklikdemo"
            os = {"name": "iOS", "version": pick(rng, ["16.7", "17.4", "17.5"])}
            dev = {"manufacturer": "Apple", "model": pick(rng, ["iPhone14,5", "iPhone15,2"])}
        else:
            app["namespace"] = "com.example.otklikdemo.android"
            os = {"name": "Android", "version": pick(rng, ["12", "13", "14"])}
            dev = {"manufacturer": "Samsung", "model": pick(rng, ["SM-A546B", "SM-S911B"])}
        dev["type"] = os["name"].lower()
        dev["id"] = anonymous_id
        ua = f"OtklikDemoShop/{app['version']} ({dev['model']}; {os['name']} {os['version']})"
        return Device(anonymous_id, ip, ua, app, os, dev)
