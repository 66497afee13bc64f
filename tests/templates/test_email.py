"""Email templates: MJML/HTML compiled once with Jinja intact, text parts, link tracking, pixel."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from otklik.templates import email as email_module
from otklik.templates.email import (
    add_open_pixel,
    compile_email,
    rewrite_links,
    rewrite_text_links,
)
from otklik.templates.rendering import TemplateError
from otklik.templates.text import html_to_text


def newsletter_mjml(articles: int = 8) -> str:
    """A realistic newsletter (~12-15 KB of MJML): a loop over products, 10+ links, a footer.

    Also used by the send benchmark as its template.
    """
    intro = (
        "<p>Мы собрали для вас подборку новинок сезона и лучших предложений недели. "
        "Скидки действуют до воскресенья, количество товаров ограничено.</p>"
    )
    blocks = "".join(
        f"""
    <mj-section background-color="#ffffff" padding="10px 0">
      <mj-column width="40%">
        <mj-image src="https://cdn.shop.example/blog/{i}.jpg" alt="Статья {i}"
          href="https://shop.example/blog/{i}?utm_source=email" />
      </mj-column>
      <mj-column width="60%">
        <mj-text font-size="18px" font-weight="bold">Статья {i}: как выбрать подарок</mj-text>
        <mj-text css-class="muted">{intro}{intro}</mj-text>
        <mj-button href="https://shop.example/blog/{i}?utm_campaign=spring">Читать</mj-button>
      </mj-column>
    </mj-section>"""
        for i in range(1, articles + 1)
    )
    return f"""<mjml>
  <mj-head>
    <mj-title>{{{{ workspace.name }}}}: новинки недели</mj-title>
    <mj-preview>{{{{ profile.traits.first_name|default('Друг') }}}}, скидки до 30%</mj-preview>
    <mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes>
    <mj-style inline="inline">.muted {{ color: #666666; }} .price {{ color: #cc0000; }}</mj-style>
    <mj-style>@media (max-width: 480px) {{ .wide {{ display: none !important; }} }}</mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-image width="120px" src="https://cdn.shop.example/logo.png"
          alt="{{{{ workspace.name }}}}" href="https://shop.example/?utm_source=email" />
        <mj-text font-size="22px">
          Здравствуйте, {{{{ profile.traits.first_name|default('друг') }}}}!</mj-text>
        <mj-text>{intro}</mj-text>
        {{% if profile.traits.loyalty_points %}}
        <mj-text>
          У вас {{{{ profile.traits.loyalty_points|plural_n('балл', 'балла', 'баллов') }}}}.
        </mj-text>
        {{% endif %}}
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-table>
          <tr><th align="left">Товар</th><th align="right">Цена</th></tr>
          {{% for p in event.products %}}
          <tr>
            <td><a href="{{{{ p.url }}}}">{{{{ p.name }}}}</a></td>
            <td align="right" class="price">{{{{ p.price|money }}}}</td>
          </tr>
          {{% endfor %}}
        </mj-table>
        <mj-button href="https://shop.example/cart?utm_source=email">В корзину</mj-button>
      </mj-column>
    </mj-section>{blocks}
    <mj-section>
      <mj-column>
        <mj-text css-class="muted" font-size="11px">
          Вы подписаны на новости {{{{ workspace.name }}}}.
          <a href="{{{{ preferences_url }}}}">Настройки</a> ·
          <a href="{{{{ unsubscribe_url }}}}">Отписаться</a> ·
          <a href="mailto:help@shop.example">help@shop.example</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def newsletter_context(n: int) -> dict[str, Any]:
    """One recipient's context; products come from a 50-item catalogue, as in real campaigns."""
    products = [(n * 7 + k) % 50 for k in range(3)]
    return {
        "profile": {
            "id": f"p{n}",
            "email": f"user{n}@example.com",
            "traits": {"first_name": f"Имя{n}", "loyalty_points": n % 30},
        },
        "event": {
            "products": [
                {"name": f"Товар {p}", "url": f"https://shop.example/p/{p}", "price": 490 + 100 * p}
                for p in products
            ]
        },
        "message": {"id": f"m{n}", "channel": "email"},
        "unsubscribe_url": f"https://otklik.example/u/{n}",
        "preferences_url": f"https://otklik.example/prefs/{n}",
        "workspace": {"name": "Магазин", "currency": "RUB", "timezone": "UTC", "locale": "ru"},
    }


def mjml(body: str, head: str = "") -> str:
    return f"<mjml><mj-head>{head}</mj-head><mj-body>{body}</mj-body></mjml>"


def section(inner: str) -> str:
    return f"<mj-section><mj-column>{inner}</mj-column></mj-section>"


# --- compile once, render many -------------------------------------------------------------


def test_mjml_is_converted_once_and_only_jinja_runs_per_recipient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = compile_email("Для {{ profile.traits.first_name }}", newsletter_mjml(), "mjml")

    def forbidden(*args: object, **kwargs: object) -> str:
        raise AssertionError("MJML or CSS work at render time")

    class NoInliner:
        inline = staticmethod(forbidden)

    monkeypatch.setattr(email_module, "mjml2html", forbidden)
    monkeypatch.setattr(email_module, "_INLINER", NoInliner())
    first, second = compiled.render(newsletter_context(1)), compiled.render(newsletter_context(2))
    assert first.subject == "Для Имя1" and second.subject == "Для Имя2"
    assert "Здравствуйте, Имя1!" in first.html and "Имя2" not in first.html
    assert "Здравствуйте, Имя2!" in second.html
    assert "https://otklik.example/u/2" in second.html
    assert "{{" not in first.html and "{%" not in first.html


def test_rendering_a_newsletter_takes_well_under_a_millisecond_or_so() -> None:
    compiled = compile_email("{{ profile.traits.first_name }}", newsletter_mjml(), "mjml")
    contexts = [newsletter_context(i) for i in range(200)]
    started = time.perf_counter()
    for context in contexts:
        compiled.render(context)
    per_render = (time.perf_counter() - started) / len(contexts)
    # A generous bound for a loaded 2-core machine; the bench reports the real figure.
    assert per_render < 0.005


# --- Jinja survives MJML and CSS inlining --------------------------------------------------


def test_a_loop_over_table_rows_in_mjml_repeats_the_rows_inside_the_table() -> None:
    compiled = compile_email("s", newsletter_mjml(articles=1), "mjml")
    html = compiled.render(newsletter_context(3)).html
    names = re.findall(r'<a href="https://shop.example/p/(\d+)"[^>]*>Товар (\d+)</a>', html)
    assert names == [("21", "21"), ("22", "22"), ("23", "23")]
    table_start = html.index("Товар</th>")
    assert all(html.index(f">Товар {n}<") > table_start for n in (21, 22, 23))
    assert "2\xa0590,00\xa0₽" in html  # product 21's price through the money filter


def test_conditionals_in_mjml_show_and_hide_whole_components() -> None:
    source = mjml(
        section(
            "<mj-text>Всем</mj-text>{% if profile.traits.vip %}<mj-text>VIP!</mj-text>"
            "{% else %}<mj-text>Станьте VIP</mj-text>{% endif %}"
        )
        + "{% if profile.traits.vip %}"
        + section("<mj-text>Секция VIP</mj-text>")
        + "{% endif %}"
    )
    compiled = compile_email("s", source, "mjml")
    vip = compiled.render({"profile": {"traits": {"vip": True}}}).html
    plain = compiled.render({"profile": {"traits": {}}}).html
    assert "VIP!" in vip and "Секция VIP" in vip and "Станьте VIP" not in vip
    assert "VIP!" not in plain and "Секция VIP" not in plain and "Станьте VIP" in plain


def test_a_loop_between_sections_repeats_whole_sections() -> None:
    source = mjml(
        "{% for p in event.products %}"
        + section(
            "<mj-text>{{ loop.index }}. {{ p.name }}</mj-text>"
            '<mj-button href="{{ p.url }}">Купить</mj-button>'
        )
        + "{% endfor %}"
    )
    html = compile_email("s", source, "mjml").render(newsletter_context(0)).html
    assert re.findall(r">(\d)\. Товар (\d+)<", html) == [("1", "0"), ("2", "1"), ("3", "2")]
    assert html.count('href="https://shop.example/p/') == 3


def test_jinja_comparisons_with_angle_brackets_survive_mjml() -> None:
    source = mjml(
        section("<mj-text>{% if event.total < 1000 %}мало{% else %}много{% endif %}</mj-text>")
        + "<mj-raw>{# comment with <b>markup</b> #}{% for i in range(2) %}<p>r{{ i }}</p>"
        "{% endfor %}</mj-raw>"
    )
    compiled = compile_email("s", source, "mjml")
    assert "мало" in compiled.render({"event": {"total": 5}}).html
    html = compiled.render({"event": {"total": 5000}}).html
    assert "много" in html and "comment" not in html
    assert re.search(r">r0</p><p [^>]*>r1</p>", html)


def test_jinja_in_attributes_title_and_preview_survives() -> None:
    source = mjml(
        section(
            '<mj-image src="{{ p.img }}" alt="{{ p.name }}" href="{{ p.url }}" />'
            '<mj-text css-class="{% if vip %}gold{% endif %}">x</mj-text>'
        ),
        head="<mj-title>{{ workspace.name }}</mj-title><mj-preview>Hi {{ name }}</mj-preview>",
    ).replace("<mj-body>", '<mj-body background-color="{{ brand }}">')
    context = {
        "p": {"img": "https://c/1.png", "name": "Кеды", "url": "https://s/1"},
        "vip": True,
        "workspace": {"name": "Shop & Co"},
        "name": "Ann",
        "brand": "#123456",
    }
    html = compile_email("s", source, "mjml").render(context).html
    assert 'src="https://c/1.png"' in html and 'alt="Кеды"' in html
    assert 'href="https://s/1"' in html
    assert 'class="gold"' in html
    assert "<title>Shop &amp; Co</title>" in html
    assert "Hi Ann" in html
    assert "#123456" in html


def test_a_loop_over_rows_in_an_html_body_stays_inside_the_table() -> None:
    body = (
        "<html><head><style>td.n { color: red; }</style></head><body><table>"
        '{% for p in items %}<tr><td class="n">{{ p }}</td></tr>{% endfor %}'
        "</table></body></html>"
    )
    html = compile_email("s", body, "html").render({"items": ["a", "b"]}).html
    assert re.search(r"<table>.*>a</td>.*>b</td>.*</table>", html, re.DOTALL)
    assert html.count('style="color: red;"') == 2


def test_a_jinja_tag_between_attributes_is_refused_with_its_line() -> None:
    body = mjml(
        section('<mj-text>ok</mj-text>\n<mj-text {% if x %}css-class="a"{% endif %}>y</mj-text>')
    )
    with pytest.raises(TemplateError) as info:
        compile_email("s", body, "mjml")
    assert info.value.code == "template_error"
    assert info.value.details["field"] == "body"
    assert info.value.details["line"] == 2


def test_html_without_styles_is_left_as_written_so_any_jinja_works() -> None:
    body = '<p {% if vip %}class="gold"{% endif %}>Hi {{ name }}</p>'
    html = compile_email("s", body, "html").render({"vip": True, "name": "<A>"}).html
    assert html == '<p class="gold">Hi &lt;A&gt;</p>'


# --- CSS -----------------------------------------------------------------------------------


def test_mj_style_inline_rules_end_up_in_style_attributes() -> None:
    source = mjml(
        section('<mj-text css-class="promo">Скидка</mj-text>'),
        head='<mj-style inline="inline">.promo { color: #ff0000; }</mj-style>'
        "<mj-style>@media (max-width: 480px) { .promo { color: blue; } }</mj-style>",
    )
    html = compile_email("s", source, "mjml").render({}).html
    assert re.search(r'class="promo"[^>]*style="[^"]*color: #ff0000', html)
    assert "@media (max-width: 480px)" in html  # responsive rules stay in <style>
    assert "fonts.googleapis.com" in html  # the font link is kept, never fetched


def test_style_rules_of_an_html_body_are_inlined() -> None:
    body = (
        '<html><head><style>p.x { font-weight: bold; }</style></head><body><p class="x">'
        "{{ name }}</p></body></html>"
    )
    html = compile_email("s", body, "html").render({"name": "Ann"}).html
    assert '<p class="x" style="font-weight: bold;">Ann</p>' in html


# --- escaping and errors -------------------------------------------------------------------


def test_profile_data_is_escaped_in_the_html_but_not_in_subject_or_text() -> None:
    source = mjml(section("<mj-text>Привет, {{ profile.traits.first_name }}</mj-text>"))
    compiled = compile_email("{{ profile.traits.first_name }}", source, "mjml")
    out = compiled.render({"profile": {"traits": {"first_name": "<script>alert(1)</script>"}}})
    assert "<script>alert" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert out.subject == "<script>alert(1)</script>"
    assert "Привет, <script>alert(1)</script>" in out.text


def test_the_subject_is_always_one_line() -> None:
    compiled = compile_email("Hi {{ name }}", "<p>x</p>", "html")
    assert compiled.render({"name": "A\r\nBcc: evil@example.com"}).subject == (
        "Hi A Bcc: evil@example.com"
    )


def test_invalid_mjml_is_a_template_error_on_the_body_with_a_line() -> None:
    source = "<mjml>\n<mj-body>\n<mj-section>\n<mj-column>\n</mj-section>\n</mj-body>\n</mjml>"
    with pytest.raises(TemplateError) as info:
        compile_email("s", source, "mjml")
    assert info.value.code == "template_error"
    assert info.value.details["field"] == "body"
    assert "MJML" in info.value.details["message"]


def test_an_mjml_error_after_jinja_tags_points_at_the_authors_line() -> None:
    source = (
        "<mjml><mj-body>\n{% if a %}{{ b }}{% endif %}\n{{ 'long expression' ~ c }}\n"
        '<mj-include path="/etc/passwd" />\n</mj-body></mjml>'
    )
    with pytest.raises(TemplateError) as info:
        compile_email("s", source, "mjml")
    assert info.value.details["line"] == 4


def test_mj_include_never_reads_files() -> None:
    with pytest.raises(TemplateError):
        compile_email("s", mjml('<mj-include path="/etc/hostname" />'), "mjml")


def test_jinja_errors_are_reported_on_the_authors_source_and_field() -> None:
    with pytest.raises(TemplateError) as info:
        compile_email("s", mjml(section("<mj-text>\n{{ x|nope }}</mj-text>")), "mjml")
    assert info.value.details == {
        "field": "body",
        "line": 2,
        "message": "No filter named 'nope'.",
    }
    with pytest.raises(TemplateError) as info:
        compile_email("Hi {{ name", "<p></p>", "html")
    assert info.value.details["field"] == "subject"
    with pytest.raises(TemplateError) as info:
        compile_email("s", "<p></p>", "html", text="{% if %}")
    assert info.value.details["field"] == "text"


def test_a_render_failure_in_mjml_points_near_the_authors_line() -> None:
    source = mjml(
        section(
            "<mj-text>a</mj-text>\n<mj-text>b</mj-text>\n"
            "<mj-text>{{ total|money('RUB') }}</mj-text>"
        )
    )
    compiled = compile_email("s", source, "mjml")
    with pytest.raises(TemplateError) as info:
        compiled.render({"total": "junk"})
    assert info.value.code == "template_render_failed"
    assert info.value.details["line"] == 3


def test_unsafe_access_in_an_email_body_is_refused() -> None:
    with pytest.raises(TemplateError) as info:
        compile_email("s", mjml(section("<mj-text>{{ ''.__class__ }}</mj-text>")), "mjml")
    assert info.value.code == "template_unsafe"


# --- the text part -------------------------------------------------------------------------


def test_a_text_part_is_generated_from_the_html_when_none_is_given() -> None:
    compiled = compile_email("s", newsletter_mjml(articles=1), "mjml")
    assert compiled.text_is_derived
    text = compiled.render(newsletter_context(1)).text
    assert text.startswith("Магазин (https://shop.example/?utm_source=email)")
    assert "Здравствуйте, Имя1!" in text
    assert "У вас 1 балл." in text
    assert "Товар 7 (https://shop.example/p/7)\n1\xa0190,00\xa0₽" in text
    assert "Отписаться (https://otklik.example/u/1)" in text
    assert "скидки до 30%" not in text  # the hidden preheader
    assert "{" not in text and "@media" not in text and "<" not in text
    assert "\n\n\n" not in text


def test_the_generated_text_matches_converting_each_rendered_html() -> None:
    compiled = compile_email("s", newsletter_mjml(articles=2), "mjml")
    for n in (0, 5):
        rendered = compiled.render(newsletter_context(n))
        assert rendered.text == html_to_text(rendered.html)


def test_values_printed_as_raw_html_become_their_text_in_the_text_part() -> None:
    compiled = compile_email("s", "<p>Hi {{ name }}: {{- block|safe }}</p>", "html")
    assert compiled.text_is_derived
    out = compiled.render({"name": "<Ann>", "block": "<b>Sale</b><br>now"})
    assert out.html == "<p>Hi &lt;Ann&gt;:<b>Sale</b><br>now</p>"
    assert out.text == "Hi <Ann>:Sale\nnow"


def test_bodies_with_autoescape_blocks_get_their_text_from_each_message() -> None:
    body = "<p>{% autoescape false %}{{ block }}{% endautoescape %}</p>"
    compiled = compile_email("s", body, "html")
    assert not compiled.text_is_derived
    assert compiled.render({"block": "<b>Sale</b><br>now"}).text == "Sale\nnow"


def test_a_given_text_part_is_used_as_written() -> None:
    compiled = compile_email("s", "<p>x</p>", "html", text="Hi {{ name }} & <you>")
    assert compiled.render({"name": "Ann"}).text == "Hi Ann & <you>"


def test_literal_braces_in_html_text_stay_literal_in_the_text_part() -> None:
    body = "<p>Code: &#123;&#123; not jinja &#125;&#125; for {{ name }}</p>"
    compiled = compile_email("s", body, "html")
    assert compiled.render({"name": "Ann"}).text == "Code: {{ not jinja }} for Ann"


def test_html_to_text_keeps_structure_and_drops_what_nobody_sees() -> None:
    html = """<html><head><title>T</title><style>p { color: red }</style></head><body>
      <div style="display:none">preheader <span>inner</span></div>
      <h1>Заголовок</h1><p>Первый   абзац
      текста.</p><p>Строка<br>вторая</p>
      <ul><li>один</li><li>два <a href="https://x.example/2">ссылка</a></li></ul>
      <ol><li>first</li><li>second</li></ol>
      <p><a href="https://x.example/same">https://x.example/same</a>
         <a href="mailto:a@b.c">a@b.c</a> <a href="#top">наверх</a>
         <a href="https://x.example/img"><img src="i.png" alt="Картинка"></a></p>
      <script>var x = "<p>no</p>";</script><!--[if mso]><p>outlook</p><![endif]-->
      <table><tr><td>A &amp; B</td><td>1&nbsp;₽</td></tr></table>
    </body></html>"""
    assert html_to_text(html) == (
        "Заголовок\n\n"
        "Первый абзац текста.\n\n"
        "Строка\nвторая\n\n"
        "- один\n- два ссылка (https://x.example/2)\n\n"
        "1. first\n2. second\n\n"
        "https://x.example/same a@b.c наверх Картинка (https://x.example/img)\n\n"
        "A & B\n1\xa0₽"
    )


# --- link tracking and the open pixel ------------------------------------------------------


def wrap(url: str) -> str:
    if url.startswith("https://otklik.example/"):
        return url  # unsubscribe and preferences links are the caller's to exclude
    return "https://t.example/c?u=" + url


def test_rewrite_links_wraps_http_links_and_leaves_the_rest() -> None:
    html = (
        '<a href="https://shop.example/a?x=1&amp;y=2" class="b">A</a>'
        "<A HREF='http://shop.example/b'>B</A>"
        '<a href="mailto:help@shop.example">m</a><a href="tel:+7900">t</a>'
        '<a href="#top">top</a><a href="/relative">r</a><a name="anchor">n</a>'
        '<a data-otklik-notrack href="https://shop.example/secret">s</a>'
        '<a href="https://otklik.example/u/1">unsub</a>'
        '<a title="x > y" href="https://shop.example/c">c</a>'
    )
    out = rewrite_links(html, wrap)
    assert out == (
        '<a href="https://t.example/c?u=https://shop.example/a?x=1&amp;y=2" class="b">A</a>'
        '<A HREF="https://t.example/c?u=http://shop.example/b">B</A>'
        '<a href="mailto:help@shop.example">m</a><a href="tel:+7900">t</a>'
        '<a href="#top">top</a><a href="/relative">r</a><a name="anchor">n</a>'
        '<a href="https://shop.example/secret">s</a>'
        '<a href="https://otklik.example/u/1">unsub</a>'
        '<a title="x > y" href="https://t.example/c?u=https://shop.example/c">c</a>'
    )


def test_wrap_receives_unescaped_urls_and_its_result_is_escaped() -> None:
    seen: list[str] = []

    def record(url: str) -> str:
        seen.append(url)
        return 'https://t.example/c?a=1&b="2"'

    out = rewrite_links('<a href="https://s.example/?a=1&amp;b=2">x</a>', record)
    assert seen == ["https://s.example/?a=1&b=2"]
    assert out == '<a href="https://t.example/c?a=1&amp;b=&quot;2&quot;">x</a>'


def test_rewrite_links_on_a_rendered_newsletter_tracks_every_shop_link() -> None:
    html = compile_email("s", newsletter_mjml(), "mjml").render(newsletter_context(1)).html
    out = rewrite_links(html, wrap)
    hrefs = re.findall(r'<a [^>]*href="([^"]*)"', out)
    tracked = [h for h in hrefs if h.startswith("https://t.example/")]
    assert len(tracked) >= 10
    assert all(
        h.startswith(("https://t.example/", "https://otklik.example/", "mailto:")) for h in hrefs
    )


def test_rewrite_text_links_tracks_bare_urls_in_plain_text() -> None:
    text = "Купить (https://shop.example/p/1)\nОтписка: https://otklik.example/u/1"
    assert rewrite_text_links(text, wrap) == (
        "Купить (https://t.example/c?u=https://shop.example/p/1)\n"
        "Отписка: https://otklik.example/u/1"
    )


def test_open_pixel_goes_just_before_the_closing_body_tag() -> None:
    out = add_open_pixel("<html><body><p>x</p></body></html>", "https://t.example/o?m=1&s=2")
    assert out == (
        '<html><body><p>x</p><img src="https://t.example/o?m=1&amp;s=2" width="1" height="1"'
        ' alt="" style="display:block;width:1px;height:1px;border:0;" /></body></html>'
    )


def test_open_pixel_handles_upper_case_body_and_fragments() -> None:
    assert add_open_pixel("<BODY>x</BODY >", "https://t/o").index("<img") == len("<BODY>x")
    assert add_open_pixel("<p>fragment</p>", "https://t/o").startswith("<p>fragment</p><img")
