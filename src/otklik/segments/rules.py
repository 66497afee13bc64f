"""The rule tree of a dynamic segment, as JSON: groups (all/any/not) over typed conditions.

Pydantic checks the shape (kinds, required fields, value types); `validation.py` checks the
meaning against the workspace (known traits, operators that fit the type, segment cycles).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otklik.insights.rfm import Segment as RfmClass

MAX_CHILDREN = 50
MAX_DEPTH = 8
MAX_NODES = 200
Scalar = str | int | float | bool

# Operators by the type of the value they compare. Dates are ISO-8601 strings in traits.
STRING_OPS = frozenset(
    {"eq", "ne", "contains", "not_contains", "starts_with", "in", "not_in", "exists", "not_exists"}
)
NUMBER_OPS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"}
)
BOOLEAN_OPS = frozenset({"is_true", "is_false", "exists", "not_exists"})
LIST_OPS = frozenset({"contains", "not_contains", "exists", "not_exists"})
# "More than N days ago", "within the last N days", "within the next N days", "birthday in N days".
RELATIVE_DATE_OPS = frozenset(
    {"days_ago_more_than", "days_ago_within", "days_ahead_within", "anniversary_within"}
)
DATE_OPS = frozenset({"before", "after", "exists", "not_exists"}) | RELATIVE_DATE_OPS
OPS_BY_TYPE: dict[str, frozenset[str]] = {
    "string": STRING_OPS,
    "number": NUMBER_OPS,
    "boolean": BOOLEAN_OPS,
    "date": DATE_OPS,
    "list": LIST_OPS,
}
FieldOp = Literal[
    "eq",
    "ne",
    "contains",
    "not_contains",
    "starts_with",
    "in",
    "not_in",
    "exists",
    "not_exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "is_true",
    "is_false",
    "before",
    "after",
    "days_ago_more_than",
    "days_ago_within",
    "days_ahead_within",
    "anniversary_within",
]
CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"]
PropertyOp = Literal[
    "eq", "ne", "contains", "starts_with", "in", "not_in", "gt", "gte", "lt", "lte", "exists"
]

# Profile columns a rule can name, with their types (traits are typed from the data).
ATTRIBUTES: dict[str, str] = {
    "created_at": "date",
    "first_seen_at": "date",
    "last_seen_at": "date",
    "last_order_at": "date",
    "events_count": "number",
    "orders_count": "number",
    "revenue": "number",
    "email": "string",
    "phone": "string",
}
SCORES: dict[str, str] = {
    "p_alive": "number",
    "churn_risk": "number",  # 1 - P(alive)
    "expected_purchases": "number",
    "clv": "number",
    "recency_days": "number",
    "frequency": "number",
    "monetary": "number",
    "r": "number",
    "f": "number",
    "m": "number",
    "usual_gap_days": "number",
}
RFM_CLASSES = tuple(str(s.value) for s in RfmClass)
REACH_CHANNELS = ("email", "sms", "telegram", "webpush", "mobile_push")


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraitRule(_Node):
    kind: Literal["trait"]
    field: str = Field(min_length=1, max_length=200, pattern=r'^[^"\\]+$')
    op: FieldOp
    value: Any = None
    # A trait nobody has yet (a form field about to go live) is an error unless allowed here.
    allow_unknown: bool = False


class AttributeRule(_Node):
    kind: Literal["attribute"]
    field: str
    op: FieldOp
    value: Any = None


class PropertyFilter(_Node):
    property: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_$][\w$ .-]*$")
    op: PropertyOp
    value: Any = None


class EventRule(_Node):
    """Did an event (with property filters) a number of times, or sum/average a property."""

    kind: Literal["event"]
    name: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    within_days: int | None = Field(default=None, ge=1, le=3650)
    measure: Literal["count", "sum", "avg", "min", "max"] = "count"
    property: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9_$][\w$ .-]*$")
    op: CompareOp = "gte"
    value: float | list[float] = 1.0
    allow_unknown: bool = False


class EventRef(_Node):
    name: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


class SequenceRule(_Node):
    """Did `first` in the last D days and not `then_not` within T hours after it."""

    kind: Literal["sequence"]
    first: EventRef
    then_not: EventRef
    within_hours: int = Field(ge=1, le=24 * 90)
    in_last_days: int = Field(default=30, ge=1, le=3650)
    allow_unknown: bool = False


class ReachableRule(_Node):
    """Has an address on the channel, may be written to for the purpose, and is not suppressed."""

    kind: Literal["reachable"]
    channel: Literal["email", "sms", "telegram", "webpush", "mobile_push"]
    purpose: Literal["marketing", "service"] = "marketing"


class IdentifierRule(_Node):
    kind: Literal["identifier"]
    type: str = Field(min_length=1, max_length=40)


class ConsentRule(_Node):
    kind: Literal["consent"]
    channel: Literal["email", "sms", "telegram", "webpush", "mobile_push"]
    purpose: Literal["marketing", "service"] = "marketing"
    status: Literal["granted", "denied", "pending", "none"] = "granted"


class SegmentRule(_Node):
    kind: Literal["segment"]
    segment_id: uuid.UUID
    member: bool = True


class RfmRule(_Node):
    kind: Literal["rfm"]
    classes: list[str] = Field(min_length=1, max_length=len(RFM_CLASSES))


class ScoreRule(_Node):
    kind: Literal["score"]
    field: str
    op: CompareOp
    value: float | list[float]


class LeavingRule(_Node):
    """The simple churn rule: longer since the last order than the customer's own usual gap."""

    kind: Literal["leaving"]
    value: bool = True


class AllRule(_Node):
    kind: Literal["all"]
    rules: list[Rule] = Field(min_length=1, max_length=MAX_CHILDREN)


class AnyRule(_Node):
    kind: Literal["any"]
    rules: list[Rule] = Field(min_length=1, max_length=MAX_CHILDREN)


class NotRule(_Node):
    kind: Literal["not"]
    rule: Rule


Leaf = (
    TraitRule
    | AttributeRule
    | EventRule
    | SequenceRule
    | ReachableRule
    | IdentifierRule
    | ConsentRule
    | SegmentRule
    | RfmRule
    | ScoreRule
    | LeavingRule
)
LEAVES: tuple[type[_Node], ...] = (
    TraitRule,
    AttributeRule,
    EventRule,
    SequenceRule,
    ReachableRule,
    IdentifierRule,
    ConsentRule,
    SegmentRule,
    RfmRule,
    ScoreRule,
    LeavingRule,
)
Rule = Annotated[AllRule | AnyRule | NotRule | Leaf, Field(discriminator="kind")]
for _model in (AllRule, AnyRule, NotRule):
    _model.model_rebuild()


class RuleTree(BaseModel):
    """The top of a segment's rules (a root model keeps error paths starting at "rules")."""

    rules: Rule


def children(rule: Any) -> list[tuple[str, Any]]:
    """The child nodes with the path step that leads to each."""
    if isinstance(rule, AllRule | AnyRule):
        return [(f"rules[{i}]", child) for i, child in enumerate(rule.rules)]
    if isinstance(rule, NotRule):
        return [("rule", rule.rule)]
    return []


def walk(rule: Any, path: str = "rules") -> list[tuple[str, Any]]:
    """Every node, depth first, with its path ("rules.rules[2].rule")."""
    out = [(path, rule)]
    for step, child in children(rule):
        out.extend(walk(child, f"{path}.{step}"))
    return out
