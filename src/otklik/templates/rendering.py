"""Compile and render message templates in a Jinja2 sandbox.

Templates are written by workspace users, so they run in `ImmutableSandboxedEnvironment`: no
`_private` attributes, no mutation of the objects passed in. Two environments share the same
filters and guards: HTML bodies autoescape (a trait holding `<script>` arrives as text), while
subjects, text parts, SMS, push and Telegram bodies do not (they are not HTML).

Compile once, render many: `compile_text(source, field)` / `compile_html(source, field)` parse
and check a template at save time and return a `CompiledText` whose `render(context)` is the
only per-recipient work.

Context contract (what the delivery pipeline passes to `render`):

- `profile`: dict with `id`, `email`, `phone`, `locale`, `timezone`, `traits` (dict), ...
- `event`: the triggering event's properties (dict), or None for campaigns;
- `message`: dict with `id` and `channel`;
- `unsubscribe_url`, `preferences_url`: signed links for this person;
- `workspace`: dict with `name`, `currency`, `timezone`, `locale`.

Tracking links are not a template function: links are rewritten after rendering
(`otklik.templates.email.rewrite_links`), so authors write plain `href="https://..."`.

Missing data renders empty. Undefined values are `ChainableUndefined`: `{{ profile.traits.
first_name }}` for a profile without the trait prints "" instead of failing the send, because
customer data is sparse and a campaign must not stop on one gap. Authors give fallbacks with
`{{ profile.traits.first_name|default('друг') }}`; the editor calls `check_variables` to warn
about names outside the contract, which is where a typo shows.

Errors are `TemplateError` (HTTP 422) with details {"field", "line", "message"}:

- `template_error`: syntax errors and unknown filters, caught at compile (save) time;
- `template_unsafe`: sandbox violations (`{{ ''.__class__ }}`, caught at compile time when the
  attribute is written literally) and the runaway guards below;
- `template_render_failed`: any other error while rendering (a bad value for a filter).

Runaway guards (a template must not hang or exhaust a worker): `range()` yields at most
`MAX_RANGE` items per call and `MAX_RANGE_TOTAL` per render; `**` and sequence `*` are checked
before computing; output stops at `MAX_OUTPUT_CHARS`; `lipsum` is removed. String-expanding
filters (`format` widths, `replace`, `center`) are not each bounded; the output cap catches
their result, and only authenticated workspace users write templates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from otklik.kit.errors import Unprocessable
from otklik.templates.filters import FILTERS

MAX_RANGE = 1_000
MAX_RANGE_TOTAL = 10_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_POWER_BITS = 4_096

LineMap = Callable[[int], int | None]


class TemplateError(Unprocessable):
    code = "template_error"


_range_budget: ContextVar[list[int] | None] = ContextVar("otklik_range_budget", default=None)


def _guarded_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    budget = _range_budget.get()
    if budget is not None:
        budget[0] -= len(items)
        if budget[0] < 0:
            raise SecurityError(f"range() is limited to {MAX_RANGE_TOTAL} items per render")
    return items


def _check_power(left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if ints and right > 0 and max(left.bit_length(), 1) * right > MAX_POWER_BITS:
        raise SecurityError("number too large")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
        if sized and len(seq) * count > MAX_OUTPUT_CHARS:
            raise SecurityError("repetition too large")


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Sandbox(ImmutableSandboxedEnvironment):
    # Intercepting also stops Jinja from constant-folding `10**10**10` at compile time.
    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `profile.traits.first_name` on plain dicts: Jinja tries the attribute first and
        # takes the item after an AttributeError, and raising and catching it was a quarter
        # of a newsletter's render. A name that is no attribute of dict can only be an item,
        # so it is looked up as one straight away; the result is the same.
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # With ChainableUndefined an unsafe access would print "" silently; authors should
        # learn that the template is refused instead.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


@cache
def environment(html: bool) -> _Sandbox:
    env = _Sandbox(autoescape=html, undefined=ChainableUndefined, keep_trailing_newline=True)
    env.globals["range"] = _guarded_range
    env.globals.pop("lipsum", None)
    env.filters.update(FILTERS)
    return env


def _filename(field: str) -> str:
    return f"<otklik:{field}>"


def _error(
    code: str, field: str, line: int | None, message: str, line_map: LineMap | None
) -> TemplateError:
    if line is not None and line_map is not None:
        line = line_map(line)
    return TemplateError(
        f"{field}: {message}" + (f" (line {line})" if line else ""),
        code=code,
        details={"field": field, "line": line, "message": message},
    )


def _unsafe_names(tree: nodes.Template) -> Iterator[tuple[str, int]]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            yield name, node.lineno


def _parse(env: _Sandbox, source: str, field: str, line_map: LineMap | None) -> nodes.Template:
    try:
        tree = env.parse(source, filename=_filename(field))
    except TemplateSyntaxError as exc:
        raise _error("template_error", field, exc.lineno, exc.message or "", line_map) from exc
    for name, line in _unsafe_names(tree):
        message = f"access to attribute {name!r} is unsafe"
        raise _error("template_unsafe", field, line, message, line_map)
    return tree


def _runtime_line(exc: BaseException, field: str) -> int | None:
    filename = _filename(field)
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@dataclass(frozen=True, eq=False)
class CompiledText:
    """A checked template; `render` is safe to call from many threads at once."""

    source: str
    field: str
    template: Template = dataclass_field(repr=False)
    line_map: LineMap | None = dataclass_field(default=None, repr=False)

    def render(self, context: Mapping[str, Any]) -> str:
        token = _range_budget.set([MAX_RANGE_TOTAL])
        try:
            parts: list[str] = []
            size = 0
            for chunk in self.template.generate(context):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"output is limited to {MAX_OUTPUT_CHARS} characters")
                parts.append(chunk)
            return "".join(parts)
        except SecurityError as exc:
            line = _runtime_line(exc, self.field)
            raise _error("template_unsafe", self.field, line, str(exc), self.line_map) from exc
        except TemplateError:
            raise
        except Exception as exc:
            line = _runtime_line(exc, self.field)
            message = str(exc) or type(exc).__name__
            code = "template_render_failed"
            raise _error(code, self.field, line, message, self.line_map) from exc
        finally:
            _range_budget.reset(token)


def compile_template(
    source: str, field: str, *, html: bool, line_map: LineMap | None = None
) -> CompiledText:
    """Parse, check and compile; `line_map` turns generated-source lines into the author's."""
    env = environment(html)
    tree = _parse(env, source, field, line_map)
    try:
        code = env.compile(tree, name=field, filename=_filename(field))
    except TemplateSyntaxError as exc:
        raise _error("template_error", field, exc.lineno, exc.message or "", line_map) from exc
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return CompiledText(source=source, field=field, template=template, line_map=line_map)


def compile_text(source: str, field: str) -> CompiledText:
    """A subject, text part, SMS, push or Telegram body: no HTML escaping."""
    return compile_template(source, field, html=False)


def compile_html(source: str, field: str) -> CompiledText:
    """An HTML body: every `{{ value }}` is HTML-escaped unless marked `|safe`."""
    return compile_template(source, field, html=True)


def check_variables(source: str, field: str = "body") -> set[str]:
    """Top-level names the template reads (the editor warns about ones outside the contract)."""
    env = environment(False)
    tree = _parse(env, source, field, None)
    return set(meta.find_undeclared_variables(tree)) - set(env.globals)
