"""Web push subscriptions and app device tokens, bound to the person who allowed them.

The site's snippet (web/static/otklik-push.js) or a mobile SDK posts them with the public
write key, naming the visitor by the same userId/anonymousId its analytics calls use.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from otklik.channels.apns import normalise_apns_token
from otklik.channels.base import InvalidAddress
from otklik.channels.fcm import normalise_fcm_token
from otklik.channels.webpush import parse_subscription
from otklik.delivery import repository as repo
from otklik.kit.errors import NotFound, Unprocessable
from otklik.kit.time import utc_now
from otklik.profiles import repository as profiles_repo

PLATFORMS = ("fcm", "apns")


class UnknownVisitor(NotFound):
    code = "profile_not_found"


@dataclass(frozen=True)
class Subscribed:
    profile_id: uuid.UUID
    created: bool


def _owner(
    conn: Connection, workspace_id: uuid.UUID, user_id: str | None, anonymous_id: str | None
) -> uuid.UUID:
    pairs = [(k, v) for k, v in (("user_id", user_id), ("anonymous_id", anonymous_id)) if v]
    if not pairs:
        raise Unprocessable("give userId or anonymousId", code="no_identifier")
    found = profiles_repo.identities_for(conn, workspace_id, pairs)
    for pair in pairs:  # the user id wins over a device's anonymous id
        if pair in found:
            return found[pair]
    raise UnknownVisitor("no profile has that id yet: send identify or page first, then subscribe")


def _address(kind: str, platform: str, raw: str) -> str:
    try:
        if kind == "webpush":
            return parse_subscription(raw).canonical()
        if platform == "fcm":
            return normalise_fcm_token(raw)
        return normalise_apns_token(raw)
    except InvalidAddress as exc:
        raise Unprocessable(exc.reason, code=exc.code) from None


def subscribe(
    conn: Connection,
    workspace_id: uuid.UUID,
    *,
    kind: str,
    raw: str,
    platform: str = "",
    user_id: str | None = None,
    anonymous_id: str | None = None,
    user_agent: str = "",
) -> Subscribed:
    """Store (or move to this person, or revive) one subscription or device token."""
    if kind == "mobile_push" and platform not in PLATFORMS:
        raise Unprocessable("platform must be fcm or apns", code="invalid_platform")
    profile_id = _owner(conn, workspace_id, user_id, anonymous_id)
    address = _address(kind, platform, raw)
    digest = hashlib.sha256(address.encode()).hexdigest()
    created = repo.upsert_push_subscription(
        conn,
        {
            "id": uuid.uuid4(),
            "workspace_id": workspace_id,
            "profile_id": profile_id,
            "kind": kind,
            "address": address,
            "address_hash": digest,
            "platform": platform if kind == "mobile_push" else "",
            "user_agent": user_agent[:300],
            "created_at": utc_now(),
        },
    )
    return Subscribed(profile_id, created)


def unsubscribe(
    conn: Connection, workspace_id: uuid.UUID, *, kind: str, raw: str, platform: str = ""
) -> bool:
    address = _address(kind, platform, raw)
    return repo.remove_push_addresses(conn, workspace_id, [address], utc_now()) > 0
