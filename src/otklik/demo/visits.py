"""One person's history in the demo shop, as a generator of the moments of their messages.

The generator yields the timestamp (epoch ms) of its next message *before* building it; when
resumed it builds exactly that message into `shop.out`. `generate_events` merges the people on
those timestamps, so only the messages due right now exist in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import quote

from otklik.demo.catalog import SHOP_URL
from otklik.demo.identities import between, pick
from otklik.demo.people import DAY_MS, HOUR_MS, Person, local_moment, to_ms
from otklik.demo.shop import LIBRARY, LIBRARY_VERSION, SHOP_NAME, Message, Shop

# buyer_type -> (mean days between visits, churn chance per visit, buy chance, add-to-cart chance)
_BEHAVIOUR = {
    "browser": (15.0, 0.30, 0.0, 0.10),
    "one_time": (12.0, 0.15, 0.4, 0.20),
    "occasional": (9.0, 0.05, 0.22, 0.20),
    "loyal": (4.0, 0.02, 0.35, 0.25),
}
_CATEGORY_PAGES = {  # category -> (page title, what people search for there)
    "electronics": ("Электроника", "наушники"),
    "clothes": ("Одежда и обувь", "кроссовки"),
    "home": ("Дом и кухня", "чайник"),
    "books": ("Книги", "книги"),
    "beauty": ("Красота", "крем для лица"),
    "sports": ("Спорт", "коврик для йоги"),
}
_REFERRERS = ["", "", "https://yandex.ru/", "https://www.google.com/", "https://vk.com/"]
_CAMPAIGNS = [
    ("yandex", "cpc", "spring_sale"),
    ("google", "cpc", "brand"),
    ("vk", "social", "new_collection"),
    ("email", "email", "weekly_digest"),
    ("telegram", "messenger", "flash_sale"),
]
_ANON, _SIGNUP, _LOGIN, _KNOWN = range(4)  # how a visit relates to the person's account


class Visitor:
    """One person's history, as a generator that yields the time of each next message."""

    __slots__ = (
        "cart",
        "dev",
        "devices",
        "favourite",
        "logged_in",
        "mid",
        "orders",
        "p",
        "page",
        "seq",
        "shop",
        "uid",
    )

    def __init__(self, shop: Shop, person: Person, index: int) -> None:
        self.shop = shop
        self.p = person
        self.mid = f"demo-{shop.seed}-{index}-"
        self.seq = 0
        self.devices = [
            shop.device(k, a) for k, a in zip(person.devices, person.anonymous_ids, strict=True)
        ]
        self.dev = self.devices[0]
        self.logged_in = [False] * len(self.devices)
        self.uid: str | None = None
        self.page: dict[str, str] | None = None
        self.cart: dict[int, int] = {}  # product index -> quantity; survives abandoned visits
        self.orders = 0
        self.favourite = pick(shop.rng, shop.categories)

    def history(self) -> Generator[int, None, None]:
        shop, p, rng = self.shop, self.p, self.shop.rng
        gap_days, churn, p_buy, p_add = _BEHAVIOUR[p.buyer_type]
        t_free = to_ms(p.first_seen_at)
        if p.signup_at is None:
            t = t_free
            while t < shop.cutoff:
                buy = self.orders == 0 and rng.random() < p_buy
                t_free = yield from self.visit(t, 0, _ANON, p_add, buy)
                if rng.random() < churn + 0.05:
                    return
                t = self.next_visit(t_free, gap_days)
            return
        signup = to_ms(p.signup_at)
        start = t_free
        if signup - t_free >= 3 * HOUR_MS:  # came back to sign up; browsed anonymously before
            start = signup - between(rng, 60_000, 600_000)
            n_before = min(4, int(rng.expovariate(0.6)))
            later = sorted(between(rng, t_free + HOUR_MS, start - HOUR_MS) for _ in range(n_before))
            planned = [t_free, *later]
            earliest = t_free
            for t in planned:
                t = max(t, earliest)
                if t > start - HOUR_MS:  # a visit lasts < 1 h: it must end before sign-up
                    break
                earliest = (yield from self.visit(t, 0, _ANON, p_add, False)) + 20 * 60_000
        t_free = yield from self.visit(start, 0, _SIGNUP, p_add, False, signup)
        while True:
            if rng.random() < (0.4 if p.buyer_type == "one_time" and self.orders else churn):
                return
            t = self.next_visit(t_free, gap_days)
            if t >= shop.cutoff:
                return
            dev = 0 if rng.random() < 0.7 else int(rng.random() * len(self.devices))
            # On a new device people often browse a while as strangers before logging in.
            mode = _KNOWN if self.logged_in[dev] else _LOGIN if rng.random() < 0.6 else _ANON
            done = p.buyer_type == "one_time" and self.orders > 0
            buy = mode != _ANON and not done and rng.random() < p_buy
            t_free = yield from self.visit(t, dev, mode, p_add, buy)

    def next_visit(self, t_free: int, gap_days: float) -> int:
        rng = self.shop.rng
        day = t_free + int(rng.expovariate(1 / gap_days) * DAY_MS)
        t = local_moment(rng, day - day % DAY_MS, self.p.utc_offset)
        while t < t_free + 30 * 60_000:
            t += DAY_MS
        return t

    def visit(
        self, t: int, dev: int, mode: int, p_add: float, buy: bool, signup: int = 0
    ) -> Generator[int, None, int]:
        """One visit; every step lasts ≤ 2 min, so a visit stays under an hour."""
        shop, rng = self.shop, self.shop.rng
        self.dev = self.devices[dev]
        self.uid = self.p.user_id if mode == _KNOWN else None
        self.page = None
        landing = rng.random()
        campaign = _CAMPAIGNS[int(rng.random() * 5)] if rng.random() < 0.25 else None
        referrer = _REFERRERS[int(rng.random() * 5)]
        yield t
        if landing < 0.4:
            self.view(t, "Home", "/", "Otklik Demo — интернет-магазин", referrer, campaign)
        elif landing < 0.65:
            title, _query = _CATEGORY_PAGES[self.favourite]
            self.view(t, "Category", f"/catalog/{self.favourite}", title, referrer, campaign)
        else:
            self.product_view(t, shop.pick_product(self.favourite), referrer, campaign)
        if mode == _SIGNUP:
            t = max(t + 1000, signup - 15_000)
            yield t
            self.view(t, "Sign Up", "/account/signup", "Регистрация")
            t = max(t + 1000, signup)
            yield t
            self.login(t, dev)
            t += 1000
            yield t
            self.track(t, "Signed Up", {"method": "email" if self.p.email else "phone"})
            if rng.random() < 0.15:  # some shops still call alias() at sign-up
                t += 500
                yield t
                self.message(t, "alias")["previousId"] = self.dev.anonymous_id
        elif mode == _LOGIN:
            t += 5000 + int(rng.random() * 55_000)
            yield t
            self.view(t, "Sign In", "/account/login", "Вход")
            t += 5000 + int(rng.random() * 25_000)
            yield t
            self.login(t, dev)
            t += 1000
            yield t
            self.track(t, "Signed In", {})
        if rng.random() < 0.2:
            title, query = _CATEGORY_PAGES[self.favourite]
            t += 3000 + int(rng.random() * 30_000)
            yield t
            self.track(t, "Products Searched", {"query": query})
            t += 1000
            yield t
            self.view(t, "Search", "/search", f"Поиск: {query}", search=f"?q={quote(query)}")
        for _ in range(min(8, 1 + int(rng.expovariate(0.45)))):
            last = shop.pick_product(self.favourite)
            t += 5000 + int(rng.random() * 85_000)
            yield t
            self.product_view(t, last)
            t += 1000 + int(rng.random() * 2000)
            yield t
            self.track(t, "Product Viewed", dict(shop.props[last]))
            if rng.random() < p_add or (buy and not self.cart):
                t += 3000 + int(rng.random() * 57_000)
                yield t
                self.add_to_cart(t, last)
        if buy and self.cart:
            t = yield from self.checkout(t)
        elif self.cart and rng.random() < 0.1:
            gone = next(iter(self.cart))
            qty = self.cart.pop(gone)
            t += 3000 + int(rng.random() * 30_000)
            yield t
            props = dict(shop.props[gone], quantity=qty, cart_id=self.mid + "cart")
            self.track(t, "Product Removed", props)
        return t

    def checkout(self, t: int) -> Generator[int, None, int]:
        shop, rng = self.shop, self.shop.rng
        items: list[dict[str, Any]] = []
        for i, qty in self.cart.items():
            p = shop.catalog[i]
            items.append(
                {
                    "product_id": p["product_id"],
                    "sku": p["sku"],
                    "name": p["name"],
                    "price": p["price"],
                    "quantity": qty,
                    "category": p["category"],
                }
            )
        total = round(sum(shop.catalog[i]["price"] * q for i, q in self.cart.items()), 2)
        order_id = shop.next_order_id()
        self.cart = {}
        t += 5000 + int(rng.random() * 55_000)
        yield t
        self.view(t, "Checkout", "/checkout", "Оформление заказа")
        t += 1000
        yield t
        products = [dict(x) for x in items]
        props = {"order_id": order_id, "value": total, "revenue": total, "currency": "RUB"}
        self.track(t, "Checkout Started", {**props, "products": products})
        t += 30_000 + int(rng.random() * 90_000)
        yield t
        self.view(t, "Order Completed", "/checkout/success", "Спасибо за заказ!")
        t += 1000
        yield t
        self.orders += 1
        props = {
            "order_id": order_id,
            "affiliation": SHOP_NAME,
            "total": total,
            "subtotal": total,
            "revenue": total,
            "currency": "RUB",
            "products": items,
        }
        self.track(t, "Order Completed", props)
        return t

    # --- message builders: each sets shop.out to exactly one new message -------------------

    def message(self, t: int, kind: str) -> Message:
        self.seq += 1
        d = self.dev
        ctx: dict[str, Any] = {
            "library": {"name": LIBRARY, "version": LIBRARY_VERSION},
            "ip": d.ip,
            "userAgent": d.user_agent,
            "locale": self.p.locale,
            "timezone": self.p.timezone,
        }
        if d.app is not None and d.os is not None and d.device is not None:
            ctx["app"] = dict(d.app)
            ctx["os"] = dict(d.os)
            ctx["device"] = dict(d.device)
        elif self.page is not None:
            ctx["page"] = dict(self.page)  # analytics.js stamps the current page on every call
        msg: Message = {
            "type": kind,
            "messageId": f"{self.mid}{self.seq}",
            "timestamp": self.shop.iso(t),
            "anonymousId": d.anonymous_id,
        }
        if self.uid is not None:
            msg["userId"] = self.uid
        msg["context"] = ctx
        self.shop.out = msg
        return msg

    def view(
        self,
        t: int,
        name: str,
        path: str,
        title: str,
        referrer: str | None = None,
        campaign: tuple[str, str, str] | None = None,
        search: str = "",
    ) -> None:
        if self.dev.app is not None:  # native apps report screens, not pages
            msg = self.message(t, "screen")
            msg["name"] = name
            msg["properties"] = {"title": title}
            return
        if campaign is not None:
            search = (
                f"?utm_source={campaign[0]}&utm_medium={campaign[1]}&utm_campaign={campaign[2]}"
            )
        if referrer is None:
            referrer = self.page["url"] if self.page is not None else ""
        url = f"{SHOP_URL}{path}{search}"
        self.page = {
            "path": path,
            "referrer": referrer,
            "search": search,
            "title": title,
            "url": url,
        }
        msg = self.message(t, "page")
        msg["name"] = name
        msg["properties"] = dict(self.page)
        if campaign is not None:
            source, medium, campaign_name = campaign
            msg["context"]["campaign"] = {"source": source, "medium": medium, "name": campaign_name}

    def product_view(
        self,
        t: int,
        i: int,
        referrer: str | None = None,
        campaign: tuple[str, str, str] | None = None,
    ) -> None:
        path, title = self.shop.pages[i]
        self.view(t, "Product", path, title, referrer, campaign)

    def track(self, t: int, event: str, properties: dict[str, Any]) -> None:
        msg = self.message(t, "track")
        msg["event"] = event
        msg["properties"] = properties

    def login(self, t: int, dev: int) -> None:
        """identify with userId *and* this device's anonymousId: the stitch the CDP relies on."""
        self.uid = self.p.user_id
        self.logged_in[dev] = True
        self.message(t, "identify")["traits"] = _traits(self.p, self.shop.iso)

    def add_to_cart(self, t: int, i: int) -> None:
        rnd = self.shop.rng.random
        qty = 1 if rnd() < 0.8 else 2 if rnd() < 0.75 else 3
        self.cart[i] = self.cart.get(i, 0) + qty
        props = dict(self.shop.props[i], quantity=qty, cart_id=self.mid + "cart")
        self.track(t, "Product Added", props)


def _traits(p: Person, iso: Callable[[int], str]) -> dict[str, str]:
    traits = {
        "email": p.email,
        "phone": p.phone,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "name": p.name,
        "birthday": p.birthday.isoformat() if p.birthday else None,
        "gender": p.gender,
        "city": p.city,
        "createdAt": iso(to_ms(p.signup_at)) if p.signup_at else None,
    }
    return {k: v for k, v in traits.items() if v is not None}
