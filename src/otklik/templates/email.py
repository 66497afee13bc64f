"""Email templates: MJML or HTML compiled once, then only Jinja runs per recipient.

Compiling (at save time) converts MJML to HTML with mjml-python, inlines CSS with css-inline
and derives a text-part template; rendering a message is then one sandboxed Jinja render of
the finished HTML (tens of microseconds), never an MJML or CSS pass.

Jinja must survive both converters, and neither knows it: MJML parses `{% if a < b %}` as
markup, and the HTML5 parser inside css-inline moves text that sits between table rows in
front of the table ("foster parenting"), which turns `{% for %}` around a `<tr>` into an empty
loop. So every Jinja tag is swapped for an opaque placeholder first and swapped back after:

- in text, an HTML comment `<!--otk…-->`: comments stay exactly where they are in tables and
  between MJML sections and columns;
- inside attribute values and raw-text elements (`<style>`, `<title>`, `<mj-style>`,
  `<mj-title>`, `<mj-preview>`, HTML comments), a bare lowercase word `otk…`.

Limits, reported at compile time with the line: a Jinja tag between a tag's attributes rather
than inside a value (`<td {% if x %}class="a"{% endif %}>`: css-inline reorders attributes,
MJML drops unknown ones; write `class="{% if x %}a{% endif %}"`), and any tag the converters
dropped. Jinja in MJML layout attributes that MJML computes with (`width`, `padding`) cannot
work; colours, `href`, `src`, `alt` and `css-class` can. A `{% for %}` around `<mj-column>`
repeats the column, but MJML sized it for one.

The text part, when none is written, is derived once as well: the placeholder HTML goes
through `otklik.templates.text.html_to_text` with the Jinja tags kept in place, which gives a
text template rendered per message like the subject (values printed with `|safe` get their
HTML's text through the `html_text` filter). Only bodies with `{% autoescape %}` blocks, or
whose tags the conversion cannot keep balanced, convert each rendered message instead.

Links are tracked after rendering with `rewrite_links` (and `rewrite_text_links` for the text
part), and the open pixel is added with `add_open_pixel`; each is one regex pass over the
rendered message.
"""

from __future__ import annotations

import html as htmllib
import re
import secrets
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import css_inline
from jinja2 import nodes
from mjml import mjml2html

from otklik.templates.rendering import (
    CompiledText,
    TemplateError,
    compile_html,
    compile_template,
    compile_text,
    environment,
)
from otklik.templates.text import html_to_text, tidy

BodyFormat = Literal["mjml", "html"]

_JINJA = re.compile(
    r"\{#.*?#\}"
    r"|\{\{(?:'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|[^'\"])*?\}\}"
    r"|\{%(?:'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|[^'\"])*?%\}",
    re.DOTALL,
)
_TAG_NAME = re.compile(r"/?([A-Za-z][\w:.-]*)")
_TAG_STOP = re.compile(r"[\"'>]")
_RAW_TEXT = frozenset(
    {"style", "script", "title", "textarea", "mj-style", "mj-title", "mj-preview", "mj-raw-head"}
)
_MJML_POSITION = re.compile(r"position (\d+)(?::\d+)?")
_INLINER = css_inline.CSSInliner(
    keep_style_tags=True, keep_link_tags=True, load_remote_stylesheets=False
)


@dataclass
class _Scanner:
    """Tracks where in the markup the next Jinja tag sits: text, tag, attribute value, raw."""

    state: str = "text"  # text | tag | comment | raw
    quote: str = ""
    name: str = ""
    closing: bool = False

    def context(self) -> str:
        if self.state == "tag":
            return "value" if self.quote else "attributes"
        return "text" if self.state == "text" else "raw"

    def feed(self, s: str) -> None:
        i, n = 0, len(s)
        while i < n:
            if self.state == "text":
                j = s.find("<", i)
                if j < 0:
                    return
                if s.startswith("<!--", j):
                    self.state, i = "comment", j + 4
                    continue
                m = _TAG_NAME.match(s, j + 1)
                if m:
                    self.state, self.name = "tag", m.group(1).lower()
                    self.closing = m.group(0).startswith("/")
                    i = m.end()
                else:
                    i = j + 1
            elif self.state == "tag":
                if self.quote:
                    j = s.find(self.quote, i)
                    if j < 0:
                        return
                    self.quote, i = "", j + 1
                    continue
                stop = _TAG_STOP.search(s, i)
                if stop is None:
                    return
                i = stop.end()
                if stop.group() != ">":
                    self.quote = stop.group()
                    continue
                opens_raw = not self.closing and self.name in _RAW_TEXT and s[i - 2] != "/"
                self.state = "raw" if opens_raw else "text"
            elif self.state == "comment":
                j = s.find("-->", i)
                if j < 0:
                    return
                self.state, i = "text", j + 3
            else:
                j = s.lower().find("</" + self.name, i)
                if j < 0:
                    return
                self.state, self.closing, i = "tag", True, j + 2 + len(self.name)


@dataclass
class _Protected:
    markup: str
    source: str
    originals: dict[str, str]  # placeholder word → the Jinja tag it stands for
    # (start in markup, end in markup, start in source, end in source) per placeholder
    spans: list[tuple[int, int, int, int]]
    prefix: str
    pattern: re.Pattern[str]

    def source_line(self, markup_offset: int) -> int:
        starts = [span[0] for span in self.spans]
        k = bisect_right(starts, markup_offset) - 1
        if k < 0:
            offset = markup_offset
        else:
            _, end, src_start, src_end = self.spans[k]
            offset = src_start if markup_offset < end else src_end + markup_offset - end
        return self.source.count("\n", 0, min(offset, len(self.source))) + 1

    def line_of(self, word: str) -> int:
        index = int(word[len(self.prefix) : -1])
        return self.source.count("\n", 0, self.spans[index][2]) + 1


def _protect(source: str, field: str, *, strict_attributes: bool) -> _Protected:
    nonce = secrets.token_hex(4)
    while nonce in source:
        nonce = secrets.token_hex(4)
    prefix = f"otk{nonce}x"
    scanner = _Scanner()
    out: list[str] = []
    originals: dict[str, str] = {}
    spans: list[tuple[int, int, int, int]] = []
    size = last = 0
    for index, m in enumerate(_JINJA.finditer(source)):
        scanner.feed(source[last : m.start()])
        out.append(source[last : m.start()])
        size += m.start() - last
        context = scanner.context()
        if context == "attributes" and strict_attributes:
            line = source.count("\n", 0, m.start()) + 1
            message = "a Jinja tag inside an element must be within an attribute value"
            raise TemplateError(
                f"{field}: {message} (line {line})",
                code="template_error",
                details={"field": field, "line": line, "message": message},
            )
        word = f"{prefix}{index}z"
        originals[word] = m.group()
        placeholder = f"<!--{word}-->" if context == "text" else word
        out.append(placeholder)
        spans.append((size, size + len(placeholder), m.start(), m.end()))
        size += len(placeholder)
        last = m.end()
    out.append(source[last:])
    pattern = re.compile(rf"<!--({prefix}[0-9]+z)-->|({prefix}[0-9]+z)(?:=\"\")?")
    return _Protected("".join(out), source, originals, spans, prefix, pattern)


def _mjml_to_html(protected: _Protected, field: str) -> str:
    try:
        return str(mjml2html(protected.markup))
    except Exception as exc:  # mjml-python reports every parse error as a ValueError
        message = str(exc)
        m = _MJML_POSITION.search(message)
        line = None
        if m:
            # The position is a byte offset into the UTF-8 text.
            raw = protected.markup.encode()[: int(m.group(1))]
            line = protected.source_line(len(raw.decode(errors="ignore")))
        raise TemplateError(
            f"{field}: invalid MJML: {message}" + (f" (line {line})" if line else ""),
            code="template_error",
            details={"field": field, "line": line, "message": f"invalid MJML: {message}"},
        ) from exc


def _inline_css(html: str) -> str:
    try:
        return str(_INLINER.inline(html))
    except css_inline.InlineError as exc:
        message = f"CSS could not be inlined: {exc}"
        raise TemplateError(
            f"body: {message}",
            code="template_error",
            details={"field": "body", "line": None, "message": message},
        ) from exc


def _restore(protected: _Protected, html: str, field: str) -> tuple[str, list[tuple[int, int]]]:
    """Swap placeholders back; returns the Jinja HTML and (output line, source line) pairs."""
    seen: dict[str, int] = {}
    pieces: list[str] = []
    marks: list[tuple[int, int]] = []
    line = 1
    last = 0
    for m in protected.pattern.finditer(html):
        chunk = html[last : m.start()]
        line += chunk.count("\n")
        pieces.append(chunk)
        word = m.group(1) or m.group(2)
        seen[word] = seen.get(word, 0) + 1
        marks.append((line, protected.line_of(word)))
        original = protected.originals[word]
        pieces.append(original)
        line += original.count("\n")
        last = m.end()
    pieces.append(html[last:])
    for word in protected.originals:
        if word not in seen:
            src_line = protected.line_of(word)
            message = f"the Jinja tag {protected.originals[word]!r} was dropped by the converter"
            raise TemplateError(
                f"{field}: {message} (line {src_line})",
                code="template_error",
                details={"field": field, "line": src_line, "message": message},
            )
    return "".join(pieces), marks


def _line_map(marks: list[tuple[int, int]]) -> Callable[[int], int | None]:
    out_lines = [m[0] for m in marks]

    def to_source(line: int) -> int | None:
        k = bisect_right(out_lines, line) - 1
        return marks[k][1] if k >= 0 else None

    return to_source


def _prints_markup(original: str) -> bool:
    if not original.startswith("{{"):
        return False
    tree = environment(False).parse(original)
    return any(node.name == "safe" for node in tree.find_all(nodes.Filter))


def _as_text(original: str) -> str:
    """`{{ x|safe }}` prints HTML into the body; its text part gets the HTML's text."""
    inner = original[2:-2].strip()
    lead = "-" if inner.startswith("-") else ""
    trail = "-" if inner.endswith("-") else ""
    core = inner[len(lead) : len(inner) - len(trail)].strip()
    return f"{{{{{lead} ({core})|html_text {trail}}}}}"


def _text_template(protected: _Protected, html: str) -> CompiledText | None:
    """The text part as a template of its own, derived once from the placeholder HTML."""

    def comment_text(data: str) -> tuple[str, bool] | None:
        original = protected.originals.get(data)
        return None if original is None else (data, original.startswith("{{"))

    def literal(text: str) -> str:
        return text.replace("{", "{{ '{' }}") if "{" in text else text

    texts = {
        word: _as_text(original) if _prints_markup(original) else original
        for word, original in protected.originals.items()
    }
    link = re.compile(rf"https?://|{protected.prefix}", re.IGNORECASE)
    text = html_to_text(html, comment_text=comment_text, link=link, escape=literal)
    restored = protected.pattern.sub(lambda m: texts[m.group(1) or m.group(2)], text)
    try:
        return compile_text(restored, "text")
    except TemplateError:
        # A block split across a link or attribute; fall back to converting each message.
        return None


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True, eq=False)
class CompiledEmail:
    subject: CompiledText
    html: CompiledText
    # None: the text part is converted from each rendered HTML (slower, always faithful).
    text: CompiledText | None
    text_is_derived: bool

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        # A header must stay one line whatever a profile's data holds.
        subject = " ".join(self.subject.render(context).split())
        html = self.html.render(context)
        if self.text is None:
            text = html_to_text(html)
        elif self.text_is_derived:
            text = tidy(self.text.render(context))
        else:
            text = self.text.render(context)
        return RenderedEmail(subject=subject, html=html, text=text)


def compile_email(
    subject: str, body: str, body_format: BodyFormat = "mjml", text: str | None = None
) -> CompiledEmail:
    """Check and convert an email template once; raises TemplateError with field and line."""
    compiled_subject = compile_text(subject, "subject")
    # Syntax is checked on the author's own source first so line numbers are theirs.
    compile_html(body, "body")
    if body_format == "mjml":
        protected = _protect(body, "body", strict_attributes=True)
        html = _inline_css(_mjml_to_html(protected, "body"))
    elif body_format == "html":
        needs_inlining = re.search(r"<style|<link", body, re.IGNORECASE) is not None
        protected = _protect(body, "body", strict_attributes=needs_inlining)
        html = _inline_css(protected.markup) if needs_inlining else protected.markup
    else:
        raise TemplateError(
            f"unknown body format {body_format!r}",
            code="template_error",
            details={"field": "body_format", "line": None, "message": "use mjml or html"},
        )
    restored, marks = _restore(protected, html, "body")
    compiled_html = compile_template(restored, "body", html=True, line_map=_line_map(marks))
    if text is not None:
        return CompiledEmail(compiled_subject, compiled_html, compile_text(text, "text"), False)
    # Inside `{% autoescape false %}` any value may be HTML: convert each message instead.
    raw_blocks = re.search(r"\{%-?\s*autoescape", body) is not None
    derived = None if raw_blocks else _text_template(protected, html)
    return CompiledEmail(compiled_subject, compiled_html, derived, derived is not None)


# Possessive quantifiers: an unclosed `<a` must fail in linear time, not backtrack.
_A_TAG = re.compile(r"<a\s(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+>", re.IGNORECASE)
_HREF = re.compile(r"(\shref\s*=\s*)(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)
_NOTRACK = re.compile(r"\sdata-otklik-notrack(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?", re.I)
_TEXT_URL = re.compile(r"https?://[^\s<>()\"']+", re.IGNORECASE)


@lru_cache(maxsize=8192)
def _parse_tag(tag: str) -> tuple[str, str, str] | str:
    """(text before the URL, the URL, text after) for a trackable tag, else the tag as sent.

    Cached by the tag's text: most links of a campaign are the same for every recipient, so
    each is parsed once, not once per message.
    """
    # Attribute names are lowercase after css-inline; the regex covers hand-written HTML.
    if ("notrack" in tag or "NOTRACK" in tag) and _NOTRACK.search(tag):
        return _NOTRACK.sub("", tag)
    href = _HREF.search(tag)
    if href is None:
        return tag
    raw = href.group(2) if href.group(2) is not None else href.group(3) or href.group(4) or ""
    url = htmllib.unescape(raw.strip())
    if not url.lower().startswith(("http://", "https://")):
        return tag
    return tag[: href.start()] + href.group(1), url, tag[href.end() :]


def _rewrite_tag(tag: str, wrap: Callable[[str], str]) -> str:
    parsed = _parse_tag(tag)
    if isinstance(parsed, str):
        return parsed
    before, url, after = parsed
    wrapped = wrap(url)
    if wrapped == url:
        return tag
    return f'{before}"{htmllib.escape(wrapped, quote=True)}"{after}'


def rewrite_links(html: str, wrap: Callable[[str], str]) -> str:
    """Pass every tracked `<a href>` through `wrap` (one regex pass, no HTML parse).

    Only absolute http(s) links are offered to `wrap`; mailto:, tel:, #anchors and relative
    links are left alone, as are links carrying `data-otklik-notrack` (the attribute itself
    is removed). `wrap` receives the unescaped URL and returns it unchanged for links it
    must not track (the unsubscribe and preferences URLs).
    """
    # finditer and one join: re.sub with a callback was three times slower on a newsletter.
    pieces: list[str] = []
    last = 0
    for m in _A_TAG.finditer(html):
        tag = m.group(0)
        rewritten = _rewrite_tag(tag, wrap)
        if rewritten != tag:
            pieces.append(html[last : m.start()])
            pieces.append(rewritten)
            last = m.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


def rewrite_text_links(text: str, wrap: Callable[[str], str]) -> str:
    """The same for a plain-text part: every bare http(s) URL goes through `wrap`."""
    return _TEXT_URL.sub(lambda m: wrap(m.group(0)), text)


def add_open_pixel(html: str, url: str) -> str:
    """A 1×1 image just before `</body>` (or at the end of a fragment)."""
    pixel = (
        f'<img src="{htmllib.escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;" />'
    )
    at = html.rfind("</body>")
    if at < 0:
        closings = list(re.finditer(r"</body\s*>", html, re.IGNORECASE))
        at = closings[-1].start() if closings else len(html)
    return html[:at] + pixel + html[at:]
