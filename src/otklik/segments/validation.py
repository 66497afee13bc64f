"""Checks a rule tree's meaning against the workspace, and works out what it depends on.

Every problem carries the path of the node in the tree ("rules.rules[1].op"), a stable code
and words, and all of them are reported at once so a form can mark every bad field.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from pydantic import ValidationError

from otklik.kit.errors import Unprocessable
from otklik.kit.time import parse_iso
from otklik.segments import rules as r
from otklik.segments.catalog import Catalog

KIND_TAGS = {
    "all",
    "any",
    "not",
    *(get_args(t.model_fields["kind"].annotation)[0] for t in r.LEAVES),
}
# Pydantic also names the member of a plain union it tried ("float", "list[float]").
UNION_MEMBER = re.compile(r"^(float|int|str|bool|none|list\[.*\]|dict\[.*\])$")
ORDER_ATTRIBUTES = {"orders_count", "revenue", "last_order_at"}
SEEN_ATTRIBUTES = {"events_count", "first_seen_at", "last_seen_at"}


class InvalidRules(Unprocessable):
    code = "invalid_rules"


@dataclass
class Analysis:
    """What a valid tree needs: the trait types to read, and what can change its answer."""

    rules: Any
    trait_types: dict[str, str] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)
    depends_on: set[uuid.UUID] = field(default_factory=set)
    time_relative: bool = False
    calendar: bool = False


@dataclass
class _Checker:
    catalog: Catalog
    segment_id: uuid.UUID | None
    # Every segment of the workspace: id -> (kind, the ids its rules refer to).
    segments: dict[uuid.UUID, tuple[str, set[uuid.UUID]]]
    errors: list[dict[str, str]] = field(default_factory=list)

    def fail(self, path: str, code: str, message: str) -> None:
        self.errors.append({"path": path, "code": code, "message": message})


def parse(body: Any) -> Any:
    """The shape check: a pydantic error becomes our error list with tree paths."""
    try:
        return r.RuleTree.model_validate({"rules": body}).rules
    except ValidationError as exc:
        by_path: dict[str, list[str]] = {}
        for e in exc.errors(include_url=False):
            by_path.setdefault(error_path(e["loc"]), []).append(e["msg"])
        # A value that may be a number or a list fails both ways: one error, both reasons.
        errors = [
            {"path": path, "code": "invalid_shape", "message": "; or ".join(messages)}
            for path, messages in by_path.items()
        ]
        raise InvalidRules(_summary(errors), details=errors) from None


def error_path(loc: tuple[Any, ...]) -> str:
    # Pydantic puts the union member it tried ("all", "trait") in the location; no field
    # of a rule is named like a kind, so those steps are dropped: "rules.rules[0].op".
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step not in KIND_TAGS and not UNION_MEMBER.match(step):
            out += ("." if out else "") + str(step)
    return out


def _summary(errors: list[dict[str, str]]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['path']}: {first['message']}{more}"


def analyse(
    rules: Any,
    catalog: Catalog,
    *,
    segment_id: uuid.UUID | None,
    segments: dict[uuid.UUID, tuple[str, set[uuid.UUID]]],
) -> Analysis:
    checker = _Checker(catalog, segment_id, segments)
    analysis = Analysis(rules)
    nodes = r.walk(rules)
    if len(nodes) > r.MAX_NODES:
        checker.fail("rules", "too_large", f"at most {r.MAX_NODES} conditions in one segment")
    for path, node in nodes:
        if path.count(".") > r.MAX_DEPTH:
            checker.fail(path, "too_deep", f"groups nest at most {r.MAX_DEPTH} deep")
            break
        check = CHECKS.get(type(node))
        if check is not None:
            check(checker, analysis, path, node)
    if checker.errors:
        raise InvalidRules(_summary(checker.errors), details=checker.errors)
    return analysis


# -- values -------------------------------------------------------------------------------
def _check_value(c: _Checker, path: str, kind: str, op: str, value: Any) -> None:
    at = f"{path}.value"
    if op in ("exists", "not_exists", "is_true", "is_false"):
        if value is not None:
            c.fail(at, "unexpected_value", f"{op} takes no value")
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > 1000:
            c.fail(at, "wrong_type", f"{op} takes a list of 1 to 1000 values")
            return
        for i, item in enumerate(value):
            _check_scalar(c, f"{at}[{i}]", kind, item)
        return
    if op == "between":
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_number(v) for v in value)
            and value[0] <= value[1]
        ):
            c.fail(at, "wrong_type", "between takes [low, high] numbers, low <= high")
        return
    if op in r.RELATIVE_DATE_OPS:
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3650):
            c.fail(at, "wrong_type", f"{op} takes a whole number of days, 0 to 3650")
        return
    if op in ("before", "after"):
        if not isinstance(value, str) or _date(value) is None:
            c.fail(at, "wrong_type", f"{op} takes an ISO date such as 2026-01-31")
        return
    if op in ("gt", "gte", "lt", "lte"):
        if not _is_number(value):
            c.fail(at, "wrong_type", f"{op} compares numbers; give a number")
        return
    if kind == "list" or op in ("contains", "not_contains", "starts_with"):
        if not isinstance(value, str | int | float) or value == "":
            c.fail(at, "wrong_type", f"{op} takes a non-empty value")
        return
    _check_scalar(c, at, kind, value)


def _check_scalar(c: _Checker, path: str, kind: str, value: Any) -> None:
    fits = {
        "number": _is_number(value),
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "date": isinstance(value, str) and _date(value) is not None,
    }.get(kind, isinstance(value, str | int | float))
    if not fits:
        c.fail(path, "wrong_type", f"expected a {kind} value, got {type(value).__name__}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _date(value: str) -> datetime | None:
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _check_op(c: _Checker, path: str, kind: str, op: str) -> bool:
    if op not in r.OPS_BY_TYPE.get(kind, frozenset()):
        allowed = ", ".join(sorted(r.OPS_BY_TYPE.get(kind, frozenset())))
        c.fail(f"{path}.op", "operator_mismatch", f"{op} does not apply to a {kind}; use {allowed}")
        return False
    return True


def _mark_time(a: Analysis, op: str) -> None:
    if op == "anniversary_within":
        a.calendar = True
    elif op in r.RELATIVE_DATE_OPS:
        a.time_relative = True


# -- one check per kind of condition ---------------------------------------------------------
def _trait(c: _Checker, a: Analysis, path: str, node: r.TraitRule) -> None:
    kind = c.catalog.trait_type(node.field)
    if kind is None:
        if not node.allow_unknown:
            c.fail(
                f"{path}.field",
                "unknown_trait",
                f"no customer has the trait {node.field!r}; check the spelling, or set "
                "allow_unknown to match on it once it appears",
            )
            return
        kind = _guess_kind(node.op, node.value)
    if _check_op(c, path, kind, node.op):
        _check_value(c, path, kind, node.op, node.value)
    a.trait_types[node.field] = kind
    a.topics.add(f"trait:{node.field}")
    _mark_time(a, node.op)


def _guess_kind(op: str, value: Any) -> str:
    if op in r.RELATIVE_DATE_OPS or op in ("before", "after"):
        return "date"
    if op in ("is_true", "is_false"):
        return "boolean"
    sample = value[0] if isinstance(value, list) and value else value
    if op in ("gt", "gte", "lt", "lte", "between") or _is_number(sample):
        return "number"
    return "string"


def _attribute(c: _Checker, a: Analysis, path: str, node: r.AttributeRule) -> None:
    kind = r.ATTRIBUTES.get(node.field)
    if kind is None:
        known = ", ".join(sorted(r.ATTRIBUTES))
        c.fail(f"{path}.field", "unknown_field", f"unknown field {node.field!r}; use {known}")
        return
    if _check_op(c, path, kind, node.op):
        _check_value(c, path, kind, node.op, node.value)
    if node.field in ORDER_ATTRIBUTES:
        a.topics.add("order")
    elif node.field in SEEN_ATTRIBUTES:
        a.topics.add("seen")
    elif node.field in ("email", "phone"):
        a.topics.add(f"trait:{node.field}")
    _mark_time(a, node.op)


def _event_name(c: _Checker, path: str, name: str, allow_unknown: bool) -> bool:
    if allow_unknown or c.catalog.has_event(name):
        return True
    c.fail(
        path,
        "unknown_event",
        f"no event named {name!r} was ever received; check the spelling, or set allow_unknown",
    )
    return False


def _filters(
    c: _Checker, path: str, event: str, filters: list[r.PropertyFilter], allow_unknown: bool
) -> None:
    for i, f in enumerate(filters):
        at = f"{path}.where[{i}]"
        if not allow_unknown and not c.catalog.has_property(event, f.property):
            c.fail(
                f"{at}.property",
                "unknown_property",
                f"no {event!r} event has the property {f.property!r}",
            )
        if f.op == "exists":
            if f.value is not None:
                c.fail(f"{at}.value", "unexpected_value", "exists takes no value")
        elif f.op in ("in", "not_in"):
            if not isinstance(f.value, list) or not f.value:
                c.fail(f"{at}.value", "wrong_type", f"{f.op} takes a list of values")
        elif f.op in ("gt", "gte", "lt", "lte") and not _is_number(f.value):
            c.fail(f"{at}.value", "wrong_type", f"{f.op} compares numbers; give a number")
        elif not isinstance(f.value, str | int | float | bool):
            c.fail(f"{at}.value", "wrong_type", "give a text, number or true/false value")


def _event(c: _Checker, a: Analysis, path: str, node: r.EventRule) -> None:
    if _event_name(c, f"{path}.name", node.name, node.allow_unknown):
        _filters(c, path, node.name, node.where, node.allow_unknown)
    if node.measure != "count" and not node.property:
        c.fail(f"{path}.property", "missing_property", f"{node.measure} needs a property")
    if node.measure == "count" and node.property:
        c.fail(f"{path}.property", "unexpected_property", "count takes no property")
    if isinstance(node.value, list) != (node.op == "between"):
        c.fail(f"{path}.value", "wrong_type", "between takes [low, high]; others one number")
    elif isinstance(node.value, list) and (len(node.value) != 2 or node.value[0] > node.value[1]):
        c.fail(f"{path}.value", "wrong_type", "between takes [low, high], low <= high")
    a.topics.add(f"event:{node.name}")
    if node.within_days:
        a.time_relative = True


def _sequence(c: _Checker, a: Analysis, path: str, node: r.SequenceRule) -> None:
    for step, ref in (("first", node.first), ("then_not", node.then_not)):
        if _event_name(c, f"{path}.{step}.name", ref.name, node.allow_unknown):
            _filters(c, f"{path}.{step}", ref.name, ref.where, node.allow_unknown)
        a.topics.add(f"event:{ref.name}")
    a.time_relative = True


def _reachable(c: _Checker, a: Analysis, path: str, node: r.ReachableRule) -> None:
    a.topics.add("reach")
    if node.channel in ("email", "sms"):
        a.topics.add("trait:email" if node.channel == "email" else "trait:phone")


def _consent(c: _Checker, a: Analysis, path: str, node: r.ConsentRule) -> None:
    a.topics.add("reach")


def _identifier(c: _Checker, a: Analysis, path: str, node: r.IdentifierRule) -> None:
    known = c.catalog.identifier_types()
    if node.type not in known:
        listed = ", ".join(sorted(known)) or "none yet"
        c.fail(f"{path}.type", "unknown_identifier", f"no {node.type!r} identifiers; have {listed}")
    a.topics.add("reach")


def _segment(c: _Checker, a: Analysis, path: str, node: r.SegmentRule) -> None:
    target = node.segment_id
    if target not in c.segments:
        c.fail(f"{path}.segment_id", "unknown_segment", f"no segment {target} in this workspace")
        return
    if c.segment_id is not None and _reaches(c.segments, target, c.segment_id):
        c.fail(
            f"{path}.segment_id",
            "segment_cycle",
            "segments would refer to each other in a circle; one must not depend on the other",
        )
        return
    a.depends_on.add(target)
    a.topics.add(f"segment:{target}")


def _reaches(
    graph: dict[uuid.UUID, tuple[str, set[uuid.UUID]]], start: uuid.UUID, goal: uuid.UUID
) -> bool:
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(graph.get(node, ("", set()))[1])
    return False


def _rfm(c: _Checker, a: Analysis, path: str, node: r.RfmRule) -> None:
    for i, name in enumerate(node.classes):
        if name not in r.RFM_CLASSES:
            c.fail(
                f"{path}.classes[{i}]",
                "unknown_rfm_class",
                f"unknown RFM class {name!r}; use {', '.join(r.RFM_CLASSES)}",
            )
    a.topics.update({"score", "order"})


def _score(c: _Checker, a: Analysis, path: str, node: r.ScoreRule) -> None:
    if node.field not in r.SCORES:
        known = ", ".join(sorted(r.SCORES))
        c.fail(f"{path}.field", "unknown_field", f"unknown score {node.field!r}; use {known}")
    if isinstance(node.value, list) != (node.op == "between"):
        c.fail(f"{path}.value", "wrong_type", "between takes [low, high]; others one number")
    a.topics.update({"score", "order"})


def _leaving(c: _Checker, a: Analysis, path: str, node: r.LeavingRule) -> None:
    a.topics.update({"score", "order"})


CHECKS: dict[type, Any] = {
    r.TraitRule: _trait,
    r.AttributeRule: _attribute,
    r.EventRule: _event,
    r.SequenceRule: _sequence,
    r.ReachableRule: _reachable,
    r.ConsentRule: _consent,
    r.IdentifierRule: _identifier,
    r.SegmentRule: _segment,
    r.RfmRule: _rfm,
    r.ScoreRule: _score,
    r.LeavingRule: _leaving,
}
