"""Behaviour conditions: what people did — counts, sums and averages of events in a window,
and "did X but not Y within T after it"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal, not_, or_, select

from otklik.segments import rules as r
from otklik.segments.comparison import compare, holds, two_valued
from otklik.segments.context import (
    DAY,
    EVENT,
    PROFILE,
    Context,
    cluster,
    unindexed,
)
from otklik.segments.sql import Json, column_epoch, plus_seconds


class EventRows:
    """Events of one name (with property filters), grouped first by the profile that holds
    them and then by the live profile they count for (merged profiles keep their events).

    Grouping by the event's own profile before joining profiles joins each profile once,
    not each event. For a whole workspace the (workspace, name, timestamp) index drives the
    scan; for a few profiles the (profile, timestamp) index must, so the name test is then
    written as an expression no index can serve (SQLite would otherwise pick the name index
    and read every event of that name to find one person's).
    """

    def __init__(self, ctx: Context, name: str, where: Sequence[r.PropertyFilter]) -> None:
        self.e = EVENT.alias("e")
        self.p = PROFILE.alias("ep")
        self.ctx = ctx
        if ctx.scope is None:
            self.conds: list[Any] = [
                self.e.c.workspace_id == ctx.workspace_id,
                self.e.c.name == name,
                self.e.c.profile_id.is_not(None),
            ]
        else:
            self.conds = [
                self.e.c.profile_id.in_(cluster(ctx)),
                unindexed(self.e.c.name) == name,
            ]
        self.conds.append(self.e.c.timestamp <= ctx.moment())
        self.conds.extend(property_condition(self.e, f, ctx.dialect) for f in where)

    def since(self, seconds_ago: float) -> EventRows:
        self.conds.append(self.e.c.timestamp >= self.ctx.moment(-seconds_ago))
        return self

    @property
    def root(self) -> ColumnElement[Any]:
        return func.coalesce(self.p.c.merged_into, self.p.c.id)

    def value(self, prop: str) -> ColumnElement[Any]:
        return Json(self.ctx.dialect, self.e.c.payload, ["properties", *prop.split(".")]).number()

    def per_root(self, **per_profile: Any) -> tuple[Any, Any]:
        """(grouped subquery, its root column): the named aggregates per event holder, and
        a root column to group them again by the live profile."""
        columns = [v.label(k) for k, v in per_profile.items()]
        inner = (
            select(self.e.c.profile_id.label("holder"), *columns)
            .where(*self.conds)
            .group_by(self.e.c.profile_id)
            .subquery()
        )
        joined = inner.join(self.p, self.p.c.id == inner.c.holder)
        return inner, joined


def event_totals(
    rows: EventRows, measure: str, prop: str | None, **extra: Any
) -> tuple[Select[Any], Any, Any]:
    """Per live profile: a select of roots grouped by root, the total column to compare, and
    the per-holder subquery (carrying `extra` aggregates, for the schedule)."""
    if measure == "count":
        inner, joined = rows.per_root(n=func.count(), **extra)
        total: Any = func.sum(inner.c.n)
    elif measure == "avg":
        assert prop is not None
        value = rows.value(prop)
        inner, joined = rows.per_root(s=func.sum(value), n=func.count(value), **extra)
        total = func.sum(inner.c.s) / func.nullif(func.sum(inner.c.n), 0)
    else:
        assert prop is not None
        inner, joined = rows.per_root(v=AGGREGATES[measure](rows.value(prop)), **extra)
        total = AGGREGATES["sum" if measure == "sum" else measure](inner.c.v)
    return select(rows.root).select_from(joined).group_by(rows.root), total, inner


def property_condition(e: Any, rule: r.PropertyFilter, dialect: str) -> ColumnElement[bool]:
    j = Json(dialect, e.c.payload, ["properties", *rule.property.split(".")])
    if rule.op == "exists":
        return j.exists()
    sample = rule.value[0] if isinstance(rule.value, list) and rule.value else rule.value
    if isinstance(sample, bool):
        return (
            j.boolean_is(bool(rule.value))
            if rule.op == "eq"
            else not_(j.boolean_is(bool(rule.value)))
        )
    if isinstance(sample, int | float):
        return two_valued(compare(j.number(), rule.op, rule.value))
    return two_valued(compare(j.text(), rule.op, rule.value, text=True))


AGGREGATES: dict[str, Callable[[Any], Any]] = {
    "sum": func.sum,
    "avg": func.avg,
    "min": func.min,
    "max": func.max,
}


def event_condition(rule: r.EventRule, ctx: Context) -> ColumnElement[Any]:
    test = PROFILE.c.id.not_in if complement(rule) else PROFILE.c.id.in_
    kept = ctx.totals.get(id(rule))
    if kept is not None:
        return test(select(kept.c.profile_id).where(*selecting(rule, kept.c.total)))
    rows = EventRows(ctx, rule.name, rule.where)
    if rule.within_days:
        rows.since(rule.within_days * DAY)
    grouped, total, _ = event_totals(rows, rule.measure, rule.property)
    return test(grouped.having(*selecting(rule, total)))


def complement(rule: r.EventRule) -> bool:
    """ "At most 2 times" and "spent under 1,000" hold for people with no such events at all:
    those conditions are the complement of the people whose total breaks them."""
    return rule.measure in ("count", "sum") and holds(rule.op, 0, rule.value)


def selecting(rule: r.EventRule, total: Any) -> list[Any]:
    """The test on a profile's total that selects it: the members, or for a complement rule
    the people it excludes."""
    if complement(rule):
        kept = compare(func.coalesce(total, 0), rule.op, rule.value)
        return [not_(two_valued(kept))]
    return [compare(total, rule.op, rule.value)]


def event_aggregate(rule: r.EventRule, ctx: Context) -> Select[Any]:
    """Per live profile with such events: (profile, total, oldest counted event in Unix
    seconds) — what a full build materialises for a time-relative condition (`totals`)."""
    rows = EventRows(ctx, rule.name, rule.where)
    if rule.within_days:
        rows.since(rule.within_days * DAY)
    grouped, total, inner = event_totals(
        rows, rule.measure, rule.property, oldest=func.min(rows.e.c.timestamp)
    )
    return grouped.add_columns(total, func.min(column_epoch(ctx.dialect, inner.c.oldest)))


def sequence_condition(rule: r.SequenceRule, ctx: Context) -> ColumnElement[Any]:
    gap = rule.within_hours * 3600
    first = EventRows(ctx, rule.first.name, rule.first.where)
    first.since(rule.in_last_days * DAY)
    # Only a `first` older than the gap can be judged: until then the follow-up may come.
    first.conds.append(first.e.c.timestamp <= ctx.moment(-gap))
    x = first.e
    # The follow-up may sit on any profile of the same person (merged profiles keep theirs).
    holder, kin = PROFILE.alias("yh"), PROFILE.alias("yq")
    person = func.coalesce(holder.c.merged_into, holder.c.id)
    y = EVENT.alias("y")
    within = [
        y.c.timestamp >= x.c.timestamp,
        y.c.timestamp <= plus_seconds(ctx.dialect, x.c.timestamp, gap),
        *(property_condition(y, f, ctx.dialect) for f in rule.then_not.where),
    ]
    family = holder.join(kin, or_(kin.c.id == person, kin.c.merged_into == person))
    if ctx.dialect == "postgresql":
        # PostgreSQL can only test `y.profile_id IN (correlated subquery)` row by row, over
        # every follow-up of the workspace; as a join it walks the person's profiles to their
        # events by index (a full build 902 s -> 3 s at 200k customers, see benchmarks.md).
        follow_up = (
            select(literal(1))
            .select_from(family.join(y, y.c.profile_id == kin.c.id))
            .where(holder.c.id == x.c.profile_id, y.c.name == rule.then_not.name, *within)
            .correlate(x)
        )
    else:
        # SQLite runs the join form about twice as slow; the IN form probes
        # (profile, timestamp) per kin with the name hidden from the index choice.
        same_person = (
            select(kin.c.id).select_from(family).where(holder.c.id == x.c.profile_id).correlate(x)
        )
        follow_up = (
            select(literal(1))
            .select_from(y)
            .where(
                y.c.profile_id.in_(same_person),
                unindexed(y.c.name) == rule.then_not.name,
                *within,
            )
            .correlate(x)
        )
    first.conds.append(not_(exists(follow_up)))
    _, joined = first.per_root()
    return PROFILE.c.id.in_(select(first.root).select_from(joined))
