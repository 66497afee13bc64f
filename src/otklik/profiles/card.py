"""The console's customer card: the profile, how to reach them, orders, timeline, one event.

Built only from profiles.service reads (the REST API's own code path) plus one lookup of an
event by its seq. Each channel shows its addresses, whether each is suppressed, and the
consent answers recorded over the whole merged cluster (the latest one wins, as in delivery).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from otklik.consent import repository as consent_repo
from otklik.consent import service as consent
from otklik.delivery.service import workspace_settings
from otklik.delivery.settings import DeliverySettings
from otklik.kit.errors import NotFound, Unprocessable
from otklik.profiles import search_repository as search_repo
from otklik.profiles import service
from otklik.profiles.identity import EMAIL, PHONE, PUSH_TOKEN, TELEGRAM
from otklik.profiles.orders import ORDER_EVENTS
from otklik.profiles.search import display_name
from otklik.profiles.service import PageOf, Scope

TIMELINE_PAGE = 25
ORDERS_SHOWN = 20
MAX_TRAIT_KEY = 100
MAX_TRAIT_VALUE = 10_000
TRAIT_KINDS = ("string", "number", "boolean", "json", "unset")
TRUE_WORDS = frozenset({"true", "yes", "1", "on", "да"})
FALSE_WORDS = frozenset({"false", "no", "0", "off", "нет"})
# channel -> the identifier type that is its address, and the profile column copying it.
CHANNELS: tuple[tuple[str, str, str | None], ...] = (
    ("email", EMAIL, "email"),
    ("sms", PHONE, "phone"),
    ("telegram", TELEGRAM, None),
    ("push", PUSH_TOKEN, None),
)
# The card's channel -> the channels consent is recorded for (push covers browsers and apps).
CONSENT_CHANNELS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("sms",),
    "telegram": ("telegram",),
    "push": ("webpush", "mobile_push"),
}


class EventNotFound(NotFound):
    code = "event_not_found"


class InvalidTrait(Unprocessable):
    code = "invalid_trait"


@dataclass(frozen=True)
class ConsentLine:
    channel: str
    purpose: str
    topic: str  # "" for the whole channel
    status: str
    source: str
    updated_at: datetime


@dataclass(frozen=True)
class Channel:
    channel: str
    addresses: list[str]
    consents: list[ConsentLine]
    suppressed: dict[str, str]  # address -> the suppression's reason

    @property
    def reachable(self) -> bool:
        return bool(self.addresses)


def surviving_id(scope: Scope, profile_id: uuid.UUID) -> uuid.UUID | None:
    """The profile a merged-away id now lives under, or None when the id is a root itself."""
    found = service.locate(scope, profile_id)
    return found.root.id if found.root.id != profile_id else None


def card(scope: Scope, profile_id: uuid.UUID) -> dict[str, Any]:
    profile = service.get_profile(scope, profile_id)
    orders = service.orders(scope, profile_id, cursor=None, limit=ORDERS_SHOWN)
    return {
        "profile": profile,
        "display_name": display_name(profile["traits"]),
        "channels": channels(scope, profile),
        "consent_choices": consent_choices(scope),
        "orders": orders,
        "timeline": timeline(scope, profile_id, cursor=None),
    }


def channels(scope: Scope, profile: dict[str, Any]) -> list[Channel]:
    members = [profile["id"], *profile["merged_ids"]]
    states = consent.current(consent_repo.consents_of(scope.conn, members))
    addresses: dict[str, list[str]] = {}
    for name, kind, column in CHANNELS:
        found = [i["value"] for i in profile["identities"] if i["type"] == kind]
        current = profile.get(column) if column else None
        if current and current not in found:
            found.insert(0, current)
        addresses[name] = found
    pairs = [(name, a) for name, found in addresses.items() for a in found if name != "push"]
    blocked = consent_repo.suppressed(scope.conn, scope.workspace_id, pairs)
    out = []
    for name, _kind, _column in CHANNELS:
        lines = [
            ConsentLine(ch, purpose, topic, s.status, s.source, s.updated_at)
            for (ch, purpose, topic), s in sorted(states.items())
            if ch in CONSENT_CHANNELS[name]
        ]
        suppressed = {a: blocked[(name, a)].reason for a in addresses[name] if (name, a) in blocked}
        out.append(Channel(name, addresses[name], lines, suppressed))
    return out


def delivery_settings(scope: Scope) -> DeliverySettings:
    return workspace_settings(scope.conn, scope.workspace_id)


def consent_choices(scope: Scope) -> dict[str, Any]:
    """What the card's consent form offers: channels, purposes and the workspace's topics."""
    return {
        "channels": consent.CONSENT_CHANNELS,
        "purposes": [p for p in consent.PURPOSES if p != "transactional"],
        "topics": [(t.key, t.name) for t in delivery_settings(scope).topics],
    }


def timeline(scope: Scope, profile_id: uuid.UUID, *, cursor: str | None) -> PageOf:
    page = service.timeline(scope, profile_id, cursor=cursor, limit=TIMELINE_PAGE, event_type=None)
    return PageOf([entry(item) for item in page.items], page.next_cursor)


def entry(item: dict[str, Any]) -> dict[str, Any]:
    """An event as a timeline line: what it was and the one detail worth reading at a glance."""
    payload = item.get("payload") or {}
    props = _dict(payload.get("properties"))
    detail: str | None = None
    if item["type"] == "track" and item["name"] in ORDER_EVENTS:
        total, currency = props.get("total", props.get("revenue")), props.get("currency")
        detail = " ".join(str(v) for v in (props.get("order_id"), total, currency) if v is not None)
    elif item["type"] in ("page", "screen"):
        detail = _first_text(props, "path", "url", "title") or _first_text(payload, "name")
    elif item["type"] == "identify":
        traits = _dict(payload.get("traits"))
        detail = ", ".join(sorted(traits)) or None
    elif item["type"] == "track":
        detail = _first_text(props, "name", "product_id", "sku", "query")
    elif item["type"] == "system":
        detail = ", ".join(sorted(props)) or None
    return {**item, "detail": detail}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_text(values: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            return str(value)[:200]
    return None


def event_detail(scope: Scope, profile_id: uuid.UUID, seq: int) -> dict[str, Any]:
    """One event of the customer's cluster."""
    found = service.locate(scope, profile_id)
    row = search_repo.event_in_cluster(scope.conn, scope.workspace_id, found.members, seq)
    if row is None:
        raise EventNotFound("No such event for this customer")
    view = service.event_view(row)
    return {**view, "status": row.status, "root_id": found.root.id}


def parse_trait_value(kind: str, raw: str) -> Any:
    """The typed value of a trait as entered in the console's form."""
    if len(raw) > MAX_TRAIT_VALUE:
        raise InvalidTrait("The value is too long", code="trait_value_too_long")
    if kind == "string":
        return raw
    text = raw.strip()
    if kind == "number":
        try:
            number = Decimal(text.replace(",", "."))
        except ArithmeticError:
            raise InvalidTrait("Not a number", code="invalid_number") from None
        if not number.is_finite():
            raise InvalidTrait("Not a number", code="invalid_number")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "boolean":
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise InvalidTrait("Not true or false", code="invalid_boolean")
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidTrait("Not valid JSON", code="invalid_json") from None
    raise InvalidTrait("Unknown kind of value", code="invalid_kind")


def edit_trait(
    scope: Scope, profile_id: uuid.UUID, *, key: str, kind: str, raw: str, now: datetime
) -> dict[str, Any]:
    """Set or unset one trait through profiles.service.patch_traits (the API's code path)."""
    key = key.strip()
    if not key or len(key) > MAX_TRAIT_KEY:
        raise InvalidTrait("A trait name of 1 to 100 characters is needed", code="invalid_key")
    if key.startswith("$"):
        # "$set_once" and "$unset" are instructions to the trait merge, not traits.
        raise InvalidTrait("A trait name cannot start with $", code="invalid_key")
    if kind == "unset":
        return service.patch_traits(scope, profile_id, set_={}, set_once={}, unset=[key], now=now)
    value = parse_trait_value(kind, raw)
    return service.patch_traits(
        scope, profile_id, set_={key: value}, set_once={}, unset=[], now=now
    )
