"""Over-communication protection: frequency caps and quiet hours.

Pure functions over what the pipeline loaded, so the rules are tested without a store.

Priorities: 0 critical (transactional: never capped, never held for the night), 1 high
(counts towards caps but is not held back by them), 2 normal and 3 low (capped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from otklik.delivery.settings import QuietHours

CRITICAL, HIGH, NORMAL, LOW = 0, 1, 2, 3
PRIORITIES = {"critical": CRITICAL, "high": HIGH, "normal": NORMAL, "low": LOW}


@dataclass(frozen=True)
class Cap:
    name: str
    channel: str | None
    purposes: frozenset[str]
    max_messages: int
    window: timedelta
    action: str  # defer | drop


@dataclass(frozen=True)
class SentBefore:
    channel: str
    purpose: str
    sent_at: datetime


@dataclass(frozen=True)
class Verdict:
    """send, defer (until `until`) or drop; code and reason say why for the message log."""

    action: str
    code: str = ""
    reason: str = ""
    until: datetime | None = None


SEND = Verdict("send")


def exempt(purpose: str, priority: int) -> bool:
    return purpose == "transactional" or priority == CRITICAL


def quiet_until(now: datetime, zone: ZoneInfo, hours: QuietHours) -> datetime | None:
    """The end of the quiet period `now` falls in, or None when it is daytime there."""
    if not hours.enabled or hours.start == hours.end:
        return None
    local = now.astimezone(zone)
    t = local.timetz().replace(tzinfo=None)
    if hours.start < hours.end:
        inside = hours.start <= t < hours.end
    else:  # spans midnight, e.g. 21:00-09:00
        inside = t >= hours.start or t < hours.end
    if not inside:
        return None
    end = local.replace(hour=hours.end.hour, minute=hours.end.minute, second=0, microsecond=0)
    if end <= local:
        end = end + timedelta(days=1)
    # Re-localise: the wall-clock end may sit across a DST change from `now`.
    end = end.replace(tzinfo=None).replace(tzinfo=zone)
    return end.astimezone(now.tzinfo)


def cap_verdict(
    caps: Sequence[Cap],
    history: Sequence[SentBefore],
    *,
    channel: str,
    purpose: str,
    priority: int,
    now: datetime,
) -> Verdict:
    """Whether one more message fits every cap; the strictest cap that is full decides."""
    if exempt(purpose, priority):
        return SEND
    worst: Verdict | None = None
    for cap in caps:
        if purpose not in cap.purposes or (cap.channel is not None and cap.channel != channel):
            continue
        since = now - cap.window
        times = sorted(
            h.sent_at
            for h in history
            if h.sent_at > since
            and h.purpose in cap.purposes
            and (cap.channel is None or h.channel == cap.channel)
        )
        if len(times) < cap.max_messages or priority == HIGH:
            continue
        # The slot frees when enough of the counted messages have left the window.
        free_at = times[len(times) - cap.max_messages] + cap.window
        where = cap.channel or "all channels"
        reason = f"{cap.name}: {len(times)} of {cap.max_messages} on {where} already sent"
        if cap.action == "drop":
            return Verdict("drop", "frequency_cap", reason)
        candidate = Verdict("defer", "frequency_cap", reason, free_at)
        if worst is None or (worst.until and free_at > worst.until):
            worst = candidate
    return worst or SEND
