"""Sandboxed Jinja rendering: errors with lines at save time, escaping, guards against runaways."""

from __future__ import annotations

import time

import pytest

from otklik.kit.errors import Unprocessable
from otklik.templates.rendering import (
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    TemplateError,
    check_variables,
    compile_html,
    compile_text,
)


def error_of(source: str, context: dict[str, object] | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        compiled = compile_text(source, "text")
        compiled.render(context or {})
    return info.value


def test_template_error_is_a_422_with_a_stable_body() -> None:
    err = error_of("{% if %}")
    assert isinstance(err, Unprocessable)
    assert err.status == 422
    assert err.body()["code"] == "template_error"
    assert set(err.body()["details"]) == {"field", "line", "message"}


def test_syntax_error_reports_the_line_it_is_on() -> None:
    err = error_of("Hello\n{{ profile.name }}\n{% endif %}\nbye\n")
    assert err.code == "template_error"
    assert err.details["field"] == "text"
    assert err.details["line"] == 3
    assert "endif" in err.details["message"]


def test_an_unclosed_block_is_reported_at_the_end_of_the_template() -> None:
    err = error_of("Hello\n{% for p in products %}\n{{ p.name }}\nbye")
    # Jinja notices at the last token, which starts on line 3 ("\nbye").
    assert err.details["line"] == 3
    assert "endfor" in err.details["message"]


def test_an_unclosed_expression_is_reported_with_its_line() -> None:
    err = error_of("one\ntwo {{ profile.traits.name \nthree")
    assert err.code == "template_error"
    assert err.details["line"] in (2, 3)


def test_unknown_filter_is_caught_at_compile_time_with_its_line() -> None:
    with pytest.raises(TemplateError) as info:
        compile_html("<p>ok</p>\n<p>{{ price|moneyy }}</p>", "body")
    assert info.value.code == "template_error"
    assert info.value.details["field"] == "body"
    assert info.value.details["line"] == 2
    assert "moneyy" in info.value.details["message"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ profile.__class__ }}",
        "{{ ''['__class__'] }}",
    ],
)
def test_private_attributes_are_refused_when_the_template_is_saved(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_text(source, "subject")
    assert info.value.code == "template_unsafe"
    assert info.value.details["line"] == 1


def test_private_attributes_reached_dynamically_are_refused_at_render() -> None:
    compiled = compile_text("a\n{{ profile|attr(name) }}", "text")
    with pytest.raises(TemplateError) as info:
        compiled.render({"profile": {}, "name": "__class__"})
    assert info.value.code == "template_unsafe"
    assert info.value.details["line"] == 2


def test_templates_cannot_mutate_the_data_they_are_given() -> None:
    traits: dict[str, object] = {"tags": ["a"]}
    compiled = compile_text("{{ profile.traits.tags.append('x') }}", "text")
    with pytest.raises(TemplateError) as info:
        compiled.render({"profile": {"traits": traits}})
    assert info.value.code == "template_unsafe"
    assert traits == {"tags": ["a"]}


def test_html_bodies_escape_profile_data() -> None:
    compiled = compile_html("<p>Hi {{ profile.traits.first_name }}</p>", "body")
    out = compiled.render({"profile": {"traits": {"first_name": "<script>x</script>"}}})
    assert out == "<p>Hi &lt;script&gt;x&lt;/script&gt;</p>"


def test_text_templates_do_not_escape() -> None:
    compiled = compile_text("Hi {{ profile.traits.first_name }} & co", "sms")
    out = compiled.render({"profile": {"traits": {"first_name": '<Ann> "A"'}}})
    assert out == 'Hi <Ann> "A" & co'


def test_missing_data_renders_empty_and_default_gives_a_fallback() -> None:
    compiled = compile_text(
        "[{{ profile.traits.first_name }}|{{ event.order.total }}|"
        "{{ profile.traits.first_name|default('друг') }}]",
        "text",
    )
    assert compiled.render({"profile": {"traits": {}}, "event": None}) == "[||друг]"
    assert compiled.render({}) == "[||друг]"


def test_one_compiled_template_renders_many_profiles() -> None:
    compiled = compile_text("{{ profile.traits.first_name }}", "text")
    names = [f"n{i}" for i in range(50)]
    assert [compiled.render({"profile": {"traits": {"first_name": n}}}) for n in names] == names


def test_a_runtime_failure_reports_template_render_failed_with_the_line() -> None:
    compiled = compile_text("line one\nTotal: {{ event.total|money('RUB') }}", "text")
    with pytest.raises(TemplateError) as info:
        compiled.render({"event": {"total": "not a number"}})
    assert info.value.code == "template_render_failed"
    assert info.value.details["line"] == 2


def test_huge_range_is_refused_quickly_instead_of_hanging() -> None:
    compiled = compile_text("{% for i in range(10**9) %}x{% endfor %}", "text")
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        compiled.render({})
    assert info.value.code == "template_unsafe"
    assert "range" in info.value.details["message"]
    assert time.monotonic() - started < 1


def test_small_ranges_work_but_nested_ones_share_one_budget_per_render() -> None:
    assert compile_text("{% for i in range(3) %}{{ i }}{% endfor %}", "t").render({}) == "012"
    nested = compile_text(
        f"{{% for i in range({MAX_RANGE}) %}}{{% for j in range({MAX_RANGE}) %}}"
        "{% endfor %}{% endfor %}",
        "text",
    )
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        nested.render({})
    assert info.value.code == "template_unsafe"
    assert time.monotonic() - started < 2
    # The budget is per render, so the next message starts afresh.
    assert compile_text("{% for i in range(2) %}.{% endfor %}", "t").render({}) == ".."


@pytest.mark.parametrize("source", ["{{ 'x' * 10**8 }}", "{{ [1] * 10**8 }}", "{{ 2**100000 }}"])
def test_operators_that_would_exhaust_memory_or_time_are_refused(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        compile_text(source, "text").render({})
    assert info.value.code == "template_unsafe"
    assert time.monotonic() - started < 1


def test_ordinary_arithmetic_still_works() -> None:
    assert compile_text("{{ 2**10 }} {{ 'ab' * 3 }} {{ 6 * 7 }}", "t").render({}) == (
        "1024 ababab 42"
    )


def test_output_is_capped() -> None:
    big = "x" * 1000
    compiled = compile_text("{% for i in items %}{{ big }}{% endfor %}", "text")
    with pytest.raises(TemplateError) as info:
        compiled.render({"items": list(range(MAX_OUTPUT_CHARS // 1000 + 5)), "big": big})
    assert info.value.code == "template_unsafe"
    assert "output" in info.value.details["message"]


def test_lipsum_is_not_available() -> None:
    assert compile_text("[{{ lipsum }}]", "t").render({}) == "[]"


def test_check_variables_lists_the_top_level_names_a_template_reads() -> None:
    source = (
        "{% set greeting = 'Hi' %}{{ greeting }} {{ profile.traits.first_name }}"
        "{% for p in event.products %}{{ p.name }}{% endfor %}{{ unsubscribe_url }}"
        "{{ profle.email }}{% for i in range(2) %}{% endfor %}"
    )
    assert check_variables(source) == {"profile", "event", "unsubscribe_url", "profle"}


def test_check_variables_reports_syntax_errors_like_compile() -> None:
    with pytest.raises(TemplateError) as info:
        check_variables("{{ a }\n")
    assert info.value.code == "template_error"


@pytest.mark.parametrize(
    "source",
    [
        "{{ d.x }}",
        "{{ d.nested.y }}",
        "{{ d.missing }}|{{ d.missing.deeper }}|{{ d.missing|default('?') }}",
        # A dict method wins over an item of the same name, as in Jinja itself.
        "{{ d.items()|list|length }}|{{ d.get('x') }}|{{ d['items'] }}|{{ d.keys()|list }}",
        "{% for p in d.products %}{{ p.name }}:{{ p.price }};{% endfor %}",
        "{{ d.nested.values()|list }}|{{ d.nested.copy is defined }}|{{ d.x.real }}",
    ],
)
def test_dotted_access_on_dicts_reads_exactly_as_jinja_reads_it(source: str) -> None:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    data = {
        "d": {
            "x": 1,
            "items": 5,
            "nested": {"y": "Ы"},
            "products": [{"name": "чай", "price": 10}, {"name": "мёд", "price": 20}],
        }
    }
    jinja = ImmutableSandboxedEnvironment(undefined=ChainableUndefined)
    assert compile_text(source, "text").render(data) == jinja.from_string(source).render(data)


def test_unsafe_attributes_of_dicts_are_still_refused_at_render() -> None:
    with pytest.raises(TemplateError) as info:
        compile_text("{{ d.__class__ }}", "text").render({"d": {"__class__": "item"}})
    assert info.value.code == "template_unsafe"
