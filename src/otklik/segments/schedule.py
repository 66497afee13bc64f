"""When a time-relative condition can next change its answer, per profile.

"Ordered at least twice in the last 30 days" can only turn false when the oldest counted
order turns 31 days old; "signed up more than 30 days ago" turns true 30 days after sign-up.
So instead of rescanning everyone every night, each profile gets a due time per segment:
the earliest moment any of its conditions can flip. At that moment the segment loop
re-evaluates just that profile (and schedules the next one). A due time that turns out to
change nothing costs one cheap evaluation; a missing one would be a wrong answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, union_all

from otklik.segments import behaviour as b
from otklik.segments import compiler as c
from otklik.segments import context as cx
from otklik.segments import rules as r
from otklik.segments.sql import any_of, column_epoch, epoch_to_time

# Rows of (profile id, Unix seconds), and the offset that turns those seconds into a due time.
Candidate = tuple[Select[Any], float]


def candidates(rule: Any, ctx: cx.Context) -> list[Candidate]:
    out: list[Candidate] = []
    for _path, node in r.walk(rule):
        out.extend(_leaf(node, ctx))
    return out


def due_rows(queries: list[Candidate], ctx: cx.Context) -> Select[Any] | None:
    """The earliest future flip time per profile, as one set-based SELECT of (profile, due_at):
    a full build schedules a million people without bringing a row into Python, and the
    incremental path writes a changed profile's with one INSERT … SELECT. One second late
    rather than early: at the exact boundary the condition has not flipped yet."""
    if not queries:
        return None
    parts = []
    for query, offset in queries:
        found = query.subquery()
        pid, epoch = list(found.c)[:2]
        parts.append(select(pid.label("pid"), (epoch + (offset + 1)).label("at")))
    every = union_all(*parts).subquery()
    soonest = func.min(every.c.at)
    return (
        select(every.c.pid, epoch_to_time(ctx.dialect, soonest))
        .where(every.c.at > ctx.epoch())
        .group_by(every.c.pid)
    )


def _leaf(node: Any, ctx: cx.Context) -> list[Candidate]:
    if isinstance(node, r.TraitRule) and node.op in r.RELATIVE_DATE_OPS - {"anniversary_within"}:
        epoch = c.trait_operand(node.field, ctx).epoch
        return _date_flips(epoch, node.op, node.value, ctx)
    if isinstance(node, r.AttributeRule) and node.op in r.RELATIVE_DATE_OPS - {
        "anniversary_within"
    }:
        epoch = column_epoch(ctx.dialect, cx.PROFILE.c[node.field])
        return _date_flips(epoch, node.op, node.value, ctx)
    if isinstance(node, r.EventRule) and node.within_days:
        return [_ageing(node, ctx)]
    if isinstance(node, r.SequenceRule):
        gap = node.within_hours * 3600
        out = []
        for since, offset in ((node.in_last_days * cx.DAY, node.in_last_days * cx.DAY), (gap, gap)):
            rows = b.EventRows(ctx, node.first.name, node.first.where).since(since)
            inner, joined = rows.per_root(oldest=func.min(rows.e.c.timestamp))
            oldest = func.min(column_epoch(ctx.dialect, inner.c.oldest))
            query = select(rows.root, oldest).select_from(joined).group_by(rows.root)
            out.append((query, float(offset)))
        return out
    return []


def _ageing(node: r.EventRule, ctx: cx.Context) -> Candidate:
    """When the oldest counted event leaves the window a count can only fall, so only people
    it can flip are scheduled (a "3 or more" member, a "2 or fewer" non-member). A sum, an
    average or an extreme can move either way (values may be negative): everyone counted."""
    assert node.within_days is not None
    offset = float(node.within_days * cx.DAY)
    flips = node.measure == "count"
    kept = ctx.totals.get(id(node))
    if kept is not None:
        query = select(kept.c.profile_id, kept.c.oldest)
        return (query.where(*b.selecting(node, kept.c.total)) if flips else query), offset
    rows = b.EventRows(ctx, node.name, node.where).since(node.within_days * cx.DAY)
    grouped, total, inner = b.event_totals(
        rows, node.measure, node.property, oldest=func.min(rows.e.c.timestamp)
    )
    query = grouped.add_columns(func.min(column_epoch(ctx.dialect, inner.c.oldest)))
    return (query.having(*b.selecting(node, total)) if flips else query), offset


def _date_flips(epoch: Any, op: str, days: int, ctx: cx.Context) -> list[Candidate]:
    span = days * cx.DAY
    base = select(cx.PROFILE.c.id, epoch).where(cx.live_profiles(ctx))
    if op in ("days_ago_more_than", "days_ago_within"):
        # Both flip when the date is `days` old; only dates younger than that still will.
        return [(base.where(epoch >= ctx.epoch(-span)), float(span))]
    # days_ahead_within: enters `days` before the date, leaves when the date has passed.
    later = base.where(epoch > ctx.epoch())
    return [(later, float(-span)), (later, 0.0)]


def next_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def anniversary_days(rule: Any) -> list[int]:
    """The windows (in days) of the birthday-style conditions in a tree."""
    return [
        int(node.value)
        for _path, node in r.walk(rule)
        if isinstance(node, r.TraitRule | r.AttributeRule) and node.op == "anniversary_within"
    ]


def calendar_flips(rule: Any, ctx: cx.Context, since: datetime) -> Select[Any]:
    """Profiles whose birthday-style conditions flipped between `since` and now.

    A condition "within N days" admits a date when today + N reaches it and drops it the day
    after; covering every day since the last sweep means a missed night loses nothing.
    """
    days = max(1, min(366, (ctx.now.date() - since.date()).days))
    month_days: set[str] = set()
    for window in anniversary_days(rule):
        for back in range(days + 1):
            day = ctx.now - timedelta(days=back)
            month_days.update(cx.month_days(day + timedelta(days=window), 0))
            month_days.update(cx.month_days(day - timedelta(days=1), 0))
    conditions = []
    for _path, node in r.walk(rule):
        if isinstance(node, r.TraitRule) and node.op == "anniversary_within":
            operand = c.trait_operand(node.field, ctx)
        elif isinstance(node, r.AttributeRule) and node.op == "anniversary_within":
            operand = c.attribute_operand(node.field, ctx)
        else:
            continue
        assert operand.month_day is not None
        conditions.append(operand.month_day.in_(sorted(month_days)))
    return select(cx.PROFILE.c.id).where(cx.live_profiles(ctx), any_of(conditions))
