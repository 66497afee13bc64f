"""Over-communication rules as pure functions: quiet hours and frequency caps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from otklik.delivery.policy import (
    CRITICAL,
    HIGH,
    LOW,
    NORMAL,
    Cap,
    SentBefore,
    cap_verdict,
    quiet_until,
)
from otklik.delivery.settings import QuietHours

NIGHT = QuietHours(enabled=True, start=time(21, 0), end=time(9, 0))
MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEEK = Cap("3 a week", None, frozenset({"marketing"}), 3, timedelta(days=7), "defer")
SMS_DAY = Cap("1 SMS a day", "sms", frozenset({"marketing"}), 1, timedelta(days=1), "drop")


def test_quiet_hours_hold_night_messages_until_the_local_morning() -> None:
    late = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    until = quiet_until(late, MSK, NIGHT)
    assert until == datetime(2026, 11, 24, 9, 0, tzinfo=MSK)
    early = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 06:00 in Moscow: same morning
    assert quiet_until(early, MSK, NIGHT) == datetime(2026, 11, 24, 9, 0, tzinfo=MSK)


def test_daytime_and_disabled_quiet_hours_hold_nothing() -> None:
    assert quiet_until(NOW, MSK, NIGHT) is None  # 15:00 in Moscow
    late = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    assert quiet_until(late, MSK, QuietHours(enabled=False)) is None


def test_quiet_hours_within_one_day_work_too() -> None:
    lunch = QuietHours(enabled=True, start=time(13, 0), end=time(14, 0))
    at = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # 13:30 in Moscow
    assert quiet_until(at, MSK, lunch) == datetime(2026, 11, 23, 14, 0, tzinfo=MSK)


def sent(*days_ago: float, channel: str = "email", purpose: str = "marketing") -> list[SentBefore]:
    return [SentBefore(channel, purpose, NOW - timedelta(days=d)) for d in days_ago]


def test_a_full_weekly_cap_defers_to_when_the_oldest_leaves_the_window() -> None:
    verdict = cap_verdict(
        [WEEK], sent(6, 2, 1), channel="sms", purpose="marketing", priority=NORMAL, now=NOW
    )
    assert verdict.action == "defer" and verdict.code == "frequency_cap"
    assert verdict.until == NOW + timedelta(days=1)
    assert "3 of 3" in verdict.reason


def test_messages_older_than_the_window_do_not_count() -> None:
    verdict = cap_verdict(
        [WEEK], sent(8, 2, 1), channel="email", purpose="marketing", priority=LOW, now=NOW
    )
    assert verdict.action == "send"


def test_a_channel_cap_counts_only_its_channel_and_can_drop() -> None:
    history = sent(0.5) + sent(0.2, channel="sms")
    assert (
        cap_verdict(
            [SMS_DAY], sent(0.5), channel="sms", purpose="marketing", priority=NORMAL, now=NOW
        ).action
        == "send"
    )
    verdict = cap_verdict(
        [SMS_DAY], history, channel="sms", purpose="marketing", priority=NORMAL, now=NOW
    )
    assert verdict.action == "drop" and "1 SMS a day" in verdict.reason


def test_transactional_critical_and_high_priority_messages_are_not_held() -> None:
    full = sent(1, 2, 3)
    for purpose, priority in (
        ("transactional", NORMAL),
        ("marketing", CRITICAL),
        ("marketing", HIGH),
    ):
        verdict = cap_verdict(
            [WEEK], full, channel="email", purpose=purpose, priority=priority, now=NOW
        )
        assert verdict.action == "send", (purpose, priority)


def test_service_messages_are_capped_only_by_policies_that_name_them() -> None:
    assert (
        cap_verdict(
            [WEEK],
            sent(1, 2, 3, purpose="service"),
            channel="email",
            purpose="service",
            priority=NORMAL,
            now=NOW,
        ).action
        == "send"
    )
