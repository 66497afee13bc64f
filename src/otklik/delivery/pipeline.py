"""One pass over a batch of messages: claim, check, render, send, record.

Three short transactions per batch and none held while providers answer:
1. claim the due messages (state `sending`, with a lease: if this worker dies, the
   dispatcher hands them to another once the lease ends);
2. record the messages the gates stopped (skipped, deferred, failed to render) and open an
   attempt row for each message about to go out;
3. after the providers answered, record each outcome, with the profile events, the
   suppressions and the retries it implies.

A message is at most in flight once per claim. A worker killed between a provider's "ok" and
step 3 leaves an open attempt, which recovery marks `interrupted` before sending again: that
one message may reach the provider twice, with the same Message-ID / Idempotency-Key /
apns-id, so receivers that deduplicate (mail stores, our webhook receivers) see it once.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from otklik.channels import registry
from otklik.channels.base import (
    ChannelKind,
    Failed,
    InvalidAddress,
    OutboundMessage,
    RetryLater,
    SendResult,
    Sent,
)
from otklik.consent import repository as consent_repo
from otklik.consent.service import decide
from otklik.delivery import repository as repo
from otklik.delivery.context import Loaded, load, render_context
from otklik.delivery.links import Links
from otklik.delivery.policy import cap_verdict, exempt, quiet_until
from otklik.delivery.sender import Sender
from otklik.kit.db import read_tx, write_tx
from otklik.kit.errors import AppError
from otklik.kit.time import utc_now
from otklik.models.message import DEFERRED, FAILED, QUEUED, SENT, SKIPPED
from otklik.profiles.events_repository import OwnEvent, append_own_events
from otklik.templates.email import add_open_pixel, rewrite_links
from otklik.templates.rendering import TemplateError

log = logging.getLogger(__name__)

LABEL = {
    "email": "Email",
    "sms": "SMS",
    "webpush": "Web Push",
    "mobile_push": "Push",
    "telegram": "Telegram",
    "webhook": "Webhook",
}
# A hard failure of the address suppresses it for the channel, with this reason.
GONE_REASON = {"email": "hard_bounce", "sms": "invalid", "telegram": "invalid"}


def suppression_key(channel: str, address: str) -> tuple[str, str]:
    """(channel, address) as suppression lists store it (see consent/suppression_list.py).

    The adapters have validated the address already: an email only needs the lower case the
    lists use, and phones (E.164) and chat ids are stored as adapters give them.
    """
    return channel, address.lower() if channel == "email" else address


def backoff(attempt: int, asked: float | None) -> timedelta:
    """30 s, 1, 2, 4 ... minutes up to an hour, ±20 % so retries of a batch spread out."""
    if asked is not None:
        return timedelta(seconds=min(max(asked, 1.0), 3600.0))
    base = min(30.0 * 2 ** max(attempt - 1, 0), 3600.0)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


@dataclass
class Outcomes:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    claimed: int = 0

    def add(self, other: Outcomes) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Stop:
    """A message the gates stopped before sending."""

    state: str
    code: str
    reason: str
    until: datetime | None = None


@dataclass(frozen=True)
class Target:
    kind: ChannelKind
    key: Hashable
    provider: str
    profile: Any | None
    address: str


@dataclass
class Go:
    key: Hashable
    provider: str
    outbound: OutboundMessage
    attempt_id: uuid.UUID = field(default_factory=uuid.uuid4)


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        sender: Sender,
        links: Links,
        *,
        lease: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.links = links
        self.lease = lease
        self.clock = clock

    def process(self, ids: Sequence[uuid.UUID]) -> Outcomes:
        out = Outcomes()
        now = self.clock()
        with write_tx(self.engine) as conn:
            claimed = repo.claim(conn, ids, now, now + self.lease)
        if not claimed:
            return out
        out.claimed = len(claimed)
        with read_tx(self.engine) as conn:
            world = load(conn, claimed, now)
            targets = {row.id: self._target(row, world) for row in claimed}
            self._load_suppressions(conn, claimed, targets, world)
        plans: list[tuple[Any, Stop | Go]] = []
        for row in claimed:
            try:
                plans.append((row, self._plan(row, world, targets[row.id], now)))
            except TemplateError as exc:
                plans.append((row, Stop(FAILED, exc.code, exc.message)))
        goes = [(row, plan) for row, plan in plans if isinstance(plan, Go)]
        with write_tx(self.engine) as conn:
            self._record_stops(conn, [(r, p) for r, p in plans if isinstance(p, Stop)], now, out)
            repo.insert_attempts(
                conn,
                [
                    {
                        "id": go.attempt_id,
                        "message_id": row.id,
                        "number": row.attempts + 1,
                        "provider": go.provider,
                        "started_at": now,
                    }
                    for row, go in goes
                ],
            )
            repo.update_messages(
                conn, [{"mid": row.id, "attempts": row.attempts + 1} for row, _ in goes]
            )
        results = self.sender.send_all([(go.key, go.outbound) for _, go in goes])
        done = self.clock()
        with write_tx(self.engine) as conn:
            self._record_results(conn, world, goes, results, done, out)
        return out

    # ------------------------------------------------------------------ planning

    def _target(self, row: Any, world: Loaded) -> Target | Stop:
        """Which provider and which address, or why there is none."""
        setting = world.channel_for(row)
        if setting is None:
            return Stop(SKIPPED, "channel_not_configured", f"no {row.channel} provider is set up")
        if not setting.enabled:
            return Stop(SKIPPED, "channel_disabled", f"the provider {setting.name!r} is disabled")
        kind = ChannelKind(row.channel)
        key = (setting.id, setting.updated_at)
        try:
            adapter = self.sender.adapter(
                key, lambda: registry.build(kind, setting.provider, setting.config)
            )
        except (ValueError, AppError) as exc:  # a stored config the adapter no longer accepts
            return Stop(FAILED, "channel_misconfigured", str(exc)[:500])
        profile = world.profiles.get(row.profile_id) if row.profile_id else None
        if row.profile_id and (profile is None or profile.erased_at is not None):
            return Stop(SKIPPED, "profile_gone", "the person was erased or no longer exists")
        raw = world.address_for(row, profile, setting.provider)
        if raw is None:
            return Stop(SKIPPED, "no_address", f"the person has no {LABEL[row.channel]} address")
        try:
            address = adapter.normalise_address(raw) if raw else raw
        except InvalidAddress as exc:
            return Stop(FAILED, exc.code, f"invalid address: {exc.reason}")
        return Target(kind, key, setting.provider, profile, address)

    def _load_suppressions(
        self,
        conn: Connection,
        rows: Sequence[Any],
        targets: dict[uuid.UUID, Target | Stop],
        world: Loaded,
    ) -> None:
        by_ws: dict[uuid.UUID, list[tuple[str, str]]] = {}
        for row in rows:
            target = targets[row.id]
            if isinstance(target, Target) and target.address:
                by_ws.setdefault(row.workspace_id, []).append(
                    suppression_key(row.channel, target.address)
                )
        for wid, pairs in by_ws.items():
            for pair, found in consent_repo.suppressed(conn, wid, pairs).items():
                world.suppressed[pair] = found.reason

    def _plan(self, row: Any, world: Loaded, target: Target | Stop, now: datetime) -> Stop | Go:
        if isinstance(target, Stop):
            return target
        ws = world.workspaces[row.workspace_id]
        kind, key, profile, address = target.kind, target.key, target.profile, target.address
        key_pair = suppression_key(row.channel, address)
        if key_pair in world.suppressed:
            why = world.suppressed[key_pair]
            return Stop(SKIPPED, "suppressed", f"the address is suppressed ({why})")
        if profile is not None and row.source != "test":
            decision = decide(
                world.consents.get(profile.id, {}), ws.settings, row.channel, row.purpose, row.topic
            )
            if not decision.allowed:
                return Stop(SKIPPED, decision.code, decision.reason)
        if not exempt(row.purpose, row.priority) and row.source != "test":
            zone = world.zone_for(profile, ws)
            until = quiet_until(now, zone, ws.settings.quiet_hours)
            if until is not None:
                return Stop(DEFERRED, "quiet_hours", f"quiet hours in {zone.key}", until)
            verdict = cap_verdict(
                ws.caps,
                world.history.get(row.profile_id, []),
                channel=row.channel,
                purpose=row.purpose,
                priority=row.priority,
                now=now,
            )
            if verdict.action == "drop":
                return Stop(SKIPPED, verdict.code, verdict.reason)
            if verdict.action == "defer":
                return Stop(DEFERRED, verdict.code, verdict.reason, verdict.until)
        compiled = world.templates.get((row.template_id, row.template_version))
        if compiled is None:
            return Stop(FAILED, "template_missing", "the template version no longer exists")
        if isinstance(compiled, TemplateError):
            raise compiled
        links = self.links.with_base(ws.settings.public_url)
        marketing = row.purpose != "transactional"
        unsubscribe = links.unsubscribe(row.id) if marketing and profile else ""
        preferences = links.preferences(profile.id) if profile else ""
        context = render_context(row, profile, ws, unsubscribe, preferences)
        rendered = compiled.render(context)

        def track(url: str) -> str:
            if url in (unsubscribe, preferences):
                return url
            return links.click(row.id, url)

        html = rendered.html
        if html is not None:
            html = add_open_pixel(rewrite_links(html, track), links.open_pixel(row.id))
        data = dict(rendered.data)
        if data.get("url"):
            data["url"] = track(str(data["url"]))
        if data.get("buttons"):
            data["buttons"] = [
                [{**b, "url": track(b["url"])} for b in line] for line in data["buttons"]
            ]
        headers: dict[str, str] = {}
        if unsubscribe and kind is ChannelKind.EMAIL:
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if kind is ChannelKind.WEBHOOK:
            data["payload"] = {
                "message_id": str(row.id),
                "profile_id": str(row.profile_id) if row.profile_id else None,
                "subject": rendered.subject,
                "text": rendered.text,
                "data": row.context.get("data"),
            }
        outbound = OutboundMessage(
            message_id=row.id,
            kind=kind,
            to=address,
            text=rendered.text,
            subject=rendered.subject,
            html=html,
            headers=headers,
            data=data,
        )
        return Go(key, target.provider, outbound)

    # ------------------------------------------------------------------ recording

    def _record_stops(
        self, conn: Connection, stops: list[tuple[Any, Stop]], now: datetime, out: Outcomes
    ) -> None:
        changes, events, own = [], [], []
        for row, stop in stops:
            change: dict[str, Any] = {
                "mid": row.id,
                "state": stop.state,
                "reason_code": stop.code,
                "reason": stop.reason,
                "updated_at": now,
            }
            if stop.state == DEFERRED:
                change.update(due_at=stop.until or now, dispatched_at=None)
                out.deferred += 1
            elif stop.state == FAILED:
                change["failed_at"] = now
                out.failed += 1
                own.append(self._own(row, "Failed", now, {"reason": stop.code}))
            else:
                out.skipped += 1
            changes.append(change)
            events.append(_mevent(row.id, stop.state, now, code=stop.code, reason=stop.reason))
        repo.update_messages(conn, changes)
        repo.insert_message_events(conn, events)
        append_own_events(conn, [e for e in own if e is not None])

    def _record_results(
        self,
        conn: Connection,
        world: Loaded,
        goes: list[tuple[Any, Go]],
        results: list[SendResult],
        now: datetime,
        out: Outcomes,
    ) -> None:
        changes, attempts, own, gone = [], [], [], []
        for (row, go), result in zip(goes, results, strict=True):
            number = row.attempts + 1
            if isinstance(result, Sent):
                out.sent += 1
                changes.append(
                    {
                        "mid": row.id,
                        "state": SENT,
                        "sent_at": now,
                        "address": go.outbound.to,
                        "provider_message_id": result.provider_message_id,
                        "reason_code": "",
                        "reason": "",
                        "updated_at": now,
                    }
                )
                attempts.append(_finish(go, "sent", "", result.detail, now))
                own.append(self._own(row, "Sent", now, {}))
                continue
            if isinstance(result, RetryLater):
                limit = world.workspaces[row.workspace_id].settings.max_attempts
                attempts.append(_finish(go, "retry", result.code, result.reason, now))
                if number < limit:
                    out.retried += 1
                    changes.append(
                        {
                            "mid": row.id,
                            "state": QUEUED,
                            "due_at": now + backoff(number, result.retry_after),
                            "dispatched_at": None,
                            "reason_code": result.code,
                            "reason": result.reason[:2000],
                            "updated_at": now,
                        }
                    )
                    continue
                result = Failed(
                    "retries_exhausted", f"gave up after {number} attempts: {result.reason}"
                )
            else:
                attempts.append(_finish(go, "failed", result.code, result.reason, now))
            out.failed += 1
            changes.append(
                {
                    "mid": row.id,
                    "state": FAILED,
                    "failed_at": now,
                    "address": go.outbound.to,
                    "reason_code": result.code,
                    "reason": result.reason[:2000],
                    "updated_at": now,
                }
            )
            own.append(self._own(row, "Failed", now, {"reason": result.code}))
            if result.address_gone:
                gone.append((row, go.outbound.to, result))
        repo.update_messages(conn, changes)
        repo.finish_attempts(conn, attempts)
        append_own_events(conn, [e for e in own if e is not None])
        for row, address, result in gone:
            self._forget_address(conn, row, address, result, now)

    def _forget_address(
        self, conn: Connection, row: Any, address: str, result: Failed, now: datetime
    ) -> None:
        if row.channel in ("webpush", "mobile_push"):
            repo.remove_push_addresses(conn, row.workspace_id, [address], now)
            return
        reason = GONE_REASON.get(row.channel)
        if reason:
            consent_repo.add_suppressions(
                conn,
                row.workspace_id,
                [
                    {
                        "channel": row.channel,
                        "address": suppression_key(row.channel, address)[1],
                        "reason": reason,
                        "detail": f"{result.code}: {result.reason}"[:1000],
                    }
                ],
                now,
            )

    def _own(self, row: Any, action: str, now: datetime, extra: dict[str, Any]) -> OwnEvent | None:
        if row.profile_id is None:
            return None
        return own_event(row, action, now, extra)


def own_event(row: Any, action: str, now: datetime, extra: dict[str, Any], n: str = "") -> OwnEvent:
    """The profile event for something that happened to a message ("Email Opened")."""
    return OwnEvent(
        workspace_id=row.workspace_id,
        profile_id=row.profile_id,
        message_id=f"otk:msg:{row.id}:{action.lower().replace(' ', '-')}{n}",
        name=f"{LABEL[row.channel]} {action}",
        properties={
            "message_id": str(row.id),
            "channel": row.channel,
            "template_id": str(row.template_id) if row.template_id else None,
            "source": row.source,
            "source_ref": row.source_ref or None,
            **extra,
        },
        timestamp=now,
    )


def _finish(go: Go, outcome: str, code: str, detail: str, now: datetime) -> dict[str, Any]:
    return {
        "aid": go.attempt_id,
        "outcome": outcome,
        "code": code,
        "detail": detail[:2000],
        "finished_at": now,
    }


def _mevent(message_id: uuid.UUID, kind: str, now: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "message_id": message_id,
        "kind": kind,
        "detail": detail,
        "occurred_at": now,
    }
