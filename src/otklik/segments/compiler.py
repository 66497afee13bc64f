"""A validated rule tree compiled to one SQL predicate over the profile table.

Every condition becomes `profile.id IN (a set-based subquery)` or a test on the profile row,
so a full build is a handful of grouped scans, not a loop over profiles. The same predicate
with a `scope` (a few profile ids) pushes the ids into every subquery: that is the
incremental path, and it answers from the indexes in well under a millisecond per condition.
Both paths share this one compiler, so they cannot disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, not_, or_, select, true

from otklik.kit.time import parse_iso
from otklik.segments import behaviour as b
from otklik.segments import rules as r
from otklik.segments.comparison import compare, two_valued
from otklik.segments.context import (
    CONSENT,
    DAY,
    IDENTITY,
    MEMBERSHIP,
    PROFILE,
    PUSH,
    SCORE,
    SUPPRESSION,
    Context,
    cluster,
    live_profiles,
)
from otklik.segments.sql import Json, column_epoch


def members(rule: Any, ctx: Context) -> Select[Any]:
    """The ids of the profiles that match (within the scope, when there is one)."""
    return select(PROFILE.c.id).where(live_profiles(ctx), predicate(rule, ctx))


def predicate(rule: Any, ctx: Context) -> ColumnElement[bool]:
    if isinstance(rule, r.AllRule):
        return and_(*(predicate(child, ctx) for child in rule.rules))
    if isinstance(rule, r.AnyRule):
        return or_(*(predicate(child, ctx) for child in rule.rules))
    if isinstance(rule, r.NotRule):
        return not_(predicate(rule.rule, ctx))
    found = LEAVES[type(rule)](rule, ctx)
    # Membership tests (`id IN (...)`, NOT EXISTS) are never NULL; left bare, a positive one
    # lets the database drive the query from the matching ids instead of every profile.
    return two_valued(found) if isinstance(rule, NULLABLE) else found


# Conditions on JSON traits and nullable columns can answer NULL; the rest never do.
NULLABLE = (r.TraitRule, r.AttributeRule)


# -- the profile's own fields ---------------------------------------------------------------
class _Operand:
    """How to read one field as text, number, date or boolean."""

    def __init__(
        self,
        text: ColumnElement[Any],
        number: ColumnElement[Any],
        epoch: ColumnElement[Any],
        present: ColumnElement[bool],
        boolean: Callable[[bool], ColumnElement[bool]] | None = None,
        contains: Callable[[Any], ColumnElement[bool]] | None = None,
        month_day: ColumnElement[Any] | None = None,
    ) -> None:
        self.text, self.number, self.epoch, self.present = text, number, epoch, present
        self.boolean, self.contains, self.month_day = boolean, contains, month_day


def trait_operand(name: str, ctx: Context) -> _Operand:
    j = Json(ctx.dialect, PROFILE.c.traits, [name])
    text = j.text()
    return _Operand(
        text=text,
        number=j.number(),
        epoch=j.epoch(),
        present=j.exists(),
        boolean=j.boolean_is,
        contains=j.list_contains,
        month_day=func.substr(text, 6, 5),
    )


def attribute_operand(name: str, ctx: Context) -> _Operand:
    column = PROFILE.c[name]
    kind = r.ATTRIBUTES[name]
    if kind == "date":
        month_day = (
            func.substr(column, 6, 5) if ctx.dialect == "sqlite" else func.to_char(column, "MM-DD")
        )
        epoch = column_epoch(ctx.dialect, column)
        return _Operand(column, column, epoch, column.is_not(None), month_day=month_day)
    return _Operand(column, column, column, column.is_not(None))


def field_condition(
    operand: _Operand, kind: str, op: str, value: Any, ctx: Context
) -> ColumnElement[bool]:
    if op == "exists":
        return operand.present
    if op == "not_exists":
        return not_(operand.present)
    if op in ("is_true", "is_false"):
        assert operand.boolean is not None
        return operand.boolean(op == "is_true")
    if kind == "list":
        assert operand.contains is not None
        found = operand.contains(value)
        return not_(two_valued(found)) if op == "not_contains" else found
    if kind == "date":
        return _date_condition(operand, op, value, ctx)
    expr = operand.number if kind == "number" else operand.text
    return compare(expr, op, value, text=kind == "string")


def _date_condition(operand: _Operand, op: str, value: Any, ctx: Context) -> Any:
    epoch = operand.epoch
    if op == "before":
        return epoch < _epoch_of(value)
    if op == "after":
        return epoch > _epoch_of(value)
    if op == "days_ago_more_than":
        return epoch < ctx.epoch(-value * DAY)
    if op == "days_ago_within":
        return and_(epoch >= ctx.epoch(-value * DAY), epoch <= ctx.epoch())
    if op == "days_ahead_within":
        return and_(epoch >= ctx.epoch(), epoch <= ctx.epoch(value * DAY))
    assert op == "anniversary_within" and operand.month_day is not None
    return ctx.in_month_days(operand.month_day, int(value))


def _epoch_of(value: str) -> float:
    return parse_iso(value).timestamp()


def _trait(rule: r.TraitRule, ctx: Context) -> ColumnElement[Any]:
    kind = ctx.trait_types.get(rule.field, "string")
    return field_condition(trait_operand(rule.field, ctx), kind, rule.op, rule.value, ctx)


def _attribute(rule: r.AttributeRule, ctx: Context) -> ColumnElement[Any]:
    kind = r.ATTRIBUTES[rule.field]
    operand = attribute_operand(rule.field, ctx)
    if kind == "date" and rule.op in COLUMN_DATE_OPS:
        return _column_date(PROFILE.c[rule.field], rule.op, rule.value, ctx)
    return field_condition(operand, kind, rule.op, rule.value, ctx)


COLUMN_DATE_OPS = ("before", "after", "days_ago_more_than", "days_ago_within", "days_ahead_within")


def _column_date(column: Any, op: str, value: Any, ctx: Context) -> Any:
    # Compared as stored (an index can serve it), not through Unix seconds.
    if op == "before":
        return column < parse_iso(value)
    if op == "after":
        return column > parse_iso(value)
    if op == "days_ago_more_than":
        return column < ctx.moment(-value * DAY)
    if op == "days_ago_within":
        return and_(column >= ctx.moment(-value * DAY), column <= ctx.moment())
    return and_(column >= ctx.moment(), column <= ctx.moment(value * DAY))


# -- reachability and consent ---------------------------------------------------------------
def latest_consent(
    ctx: Context, channel: str, purpose: str, statuses: Sequence[str]
) -> Select[Any]:
    """Roots whose newest answer (over the merged cluster) for the channel is one of `statuses`."""
    c, p = CONSENT.alias("c"), PROFILE.alias("cp")
    root = func.coalesce(p.c.merged_into, p.c.id)
    conds = [
        c.c.workspace_id == ctx.workspace_id,
        c.c.channel == channel,
        c.c.purpose == purpose,
        c.c.topic == "",
    ]
    if ctx.scope is not None:
        conds.append(c.c.profile_id.in_(cluster(ctx)))
    rank = func.row_number().over(partition_by=root, order_by=c.c.updated_at.desc())
    ranked = (
        select(root.label("root"), c.c.status, rank.label("rank"))
        .select_from(c.join(p, p.c.id == c.c.profile_id))
        .where(*conds)
        .subquery()
    )
    return select(ranked.c.root).where(ranked.c.rank == 1, ranked.c.status.in_(list(statuses)))


def _has_address(channel: str, ctx: Context) -> ColumnElement[Any]:
    if channel in ("email", "sms"):
        column = PROFILE.c.email if channel == "email" else PROFILE.c.phone
        s = SUPPRESSION.alias("s")
        suppressed = exists(
            select(literal(1))
            .select_from(s)
            .where(
                s.c.workspace_id == ctx.workspace_id, s.c.channel == channel, s.c.address == column
            )
        )
        return and_(column.is_not(None), not_(suppressed))
    if channel == "telegram":
        return _has_identifier("telegram", ctx)
    ps, p = PUSH.alias("ps"), PROFILE.alias("pp")
    conds = [ps.c.workspace_id == ctx.workspace_id, ps.c.kind == channel, ps.c.removed_at.is_(None)]
    if ctx.scope is not None:
        conds.append(ps.c.profile_id.in_(cluster(ctx)))
    roots = (
        select(func.coalesce(p.c.merged_into, p.c.id))
        .select_from(ps.join(p, p.c.id == ps.c.profile_id))
        .where(*conds)
    )
    return PROFILE.c.id.in_(roots)


def _has_identifier(kind: str, ctx: Context) -> ColumnElement[Any]:
    i = IDENTITY.alias("i")
    conds = [i.c.workspace_id == ctx.workspace_id, i.c.type == kind]
    if ctx.scope is not None:
        conds.append(ctx.among(i.c.profile_id))
    return PROFILE.c.id.in_(select(i.c.profile_id).where(*conds))


def _reachable(rule: r.ReachableRule, ctx: Context) -> ColumnElement[Any]:
    # The same answer as the delivery pipeline's consent decision (consent.service.decide).
    if rule.purpose == "service":
        allowed = PROFILE.c.id.not_in(latest_consent(ctx, rule.channel, "service", ["denied"]))
    elif ctx.marketing_consent == "opt_out":
        refused = latest_consent(ctx, rule.channel, "marketing", ["denied", "pending"])
        allowed = PROFILE.c.id.not_in(refused)
    else:
        allowed = PROFILE.c.id.in_(latest_consent(ctx, rule.channel, "marketing", ["granted"]))
    return and_(_has_address(rule.channel, ctx), allowed)


def _consent(rule: r.ConsentRule, ctx: Context) -> ColumnElement[Any]:
    if rule.status == "none":
        anything = latest_consent(ctx, rule.channel, rule.purpose, ["granted", "denied", "pending"])
        return PROFILE.c.id.not_in(anything)
    return PROFILE.c.id.in_(latest_consent(ctx, rule.channel, rule.purpose, [rule.status]))


def _identifier(rule: r.IdentifierRule, ctx: Context) -> ColumnElement[Any]:
    return _has_identifier(rule.type, ctx)


# -- segments and scores ---------------------------------------------------------------------
def current_members(segment_id: uuid.UUID, ctx: Context) -> Select[Any]:
    m = MEMBERSHIP.alias("m")
    conds = [m.c.segment_id == segment_id, m.c.exited_at.is_(None)]
    if ctx.scope is not None:
        conds.append(ctx.among(m.c.profile_id))
    return select(m.c.profile_id).where(*conds)


def _segment(rule: r.SegmentRule, ctx: Context) -> ColumnElement[Any]:
    found = PROFILE.c.id.in_(current_members(rule.segment_id, ctx))
    return found if rule.member else not_(found)


def _score_column(name: str) -> Any:
    return 1 - SCORE.c.p_alive if name == "churn_risk" else SCORE.c[name]


def _rfm(rule: r.RfmRule, ctx: Context) -> ColumnElement[Any]:
    return _score_subquery(ctx, SCORE.c.rfm_class.in_(rule.classes))


def _score(rule: r.ScoreRule, ctx: Context) -> ColumnElement[Any]:
    return _score_subquery(ctx, compare(_score_column(rule.field), rule.op, rule.value))


def _leaving(rule: r.LeavingRule, ctx: Context) -> ColumnElement[Any]:
    leaving = _score_subquery(ctx, SCORE.c.leaving.is_(true()))
    return leaving if rule.value else not_(leaving)


def _score_subquery(ctx: Context, condition: Any) -> ColumnElement[Any]:
    conds = [SCORE.c.workspace_id == ctx.workspace_id, condition]
    if ctx.scope is not None:
        conds.append(ctx.among(SCORE.c.profile_id))
    return PROFILE.c.id.in_(select(SCORE.c.profile_id).where(*conds))


LEAVES: dict[type, Callable[[Any, Context], ColumnElement[Any]]] = {
    r.TraitRule: _trait,
    r.AttributeRule: _attribute,
    r.EventRule: b.event_condition,
    r.SequenceRule: b.sequence_condition,
    r.ReachableRule: _reachable,
    r.IdentifierRule: _identifier,
    r.ConsentRule: _consent,
    r.SegmentRule: _segment,
    r.RfmRule: _rfm,
    r.ScoreRule: _score,
    r.LeavingRule: _leaving,
}
