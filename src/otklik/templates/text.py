"""HTML → plain text for the text/plain part of an email.

One pass of the standard library's `html.parser`, no DOM: headings and paragraphs become
blocks separated by a blank line, table rows, cells and `<br>` become line breaks, list items
start with "- " (or "1. " in an ordered list), links read "text (url)", and whatever a reader
would not see (`<head>`, `<style>`, `<script>`, elements hidden with `display:none` such as the
MJML preheader, comments including Outlook's conditional ones) is left out. Runs of
whitespace collapse to one space.

`otklik.templates.email` also runs this once per template at compile time on HTML whose Jinja
tags are still placeholders (passed through `comment_text`), so most emails get their text
part from a compiled template instead of parsing every rendered message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

_SKIP = frozenset({"head", "style", "script", "title", "template", "noscript", "svg"})
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "table", "hr", "pre"}
)
_LINE = frozenset(
    {"div", "tr", "td", "th", "li", "section", "article", "header", "footer", "center", "dl"}
    | {"dt", "dd", "address", "form", "tbody", "thead", "tfoot", "caption", "figure", "main"}
)
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"})
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# ASCII whitespace only, as HTML defines it: a no-break space (in prices) must stay.
_SPACE = re.compile(r"[ \t\n\r\f]+")
_HTTP = re.compile(r"https?://", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")


class _Converter(HTMLParser):
    def __init__(
        self,
        comment_text: Callable[[str], tuple[str, bool] | None] | None,
        link: re.Pattern[str],
        escape: Callable[[str], str] | None,
    ) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.pending = 0  # line breaks owed before the next text
        self.at_line_start = True
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.lists: list[int] = []  # -1 for <ul>, else the next number of an <ol>
        self.links: list[tuple[str, int, str]] = []  # href, start in out, image alt
        self.comment_text = comment_text
        self.link = link
        self.escape = escape

    def _break(self, lines: int) -> None:
        if self.out:
            self.pending = max(self.pending, lines)
            # Trim here, once, so a derived text template needs no per-message clean-up.
            if self.out[-1].endswith(" "):
                self.out[-1] = self.out[-1].rstrip(" ")

    def _emit(self, text: str) -> None:
        if self.pending:
            self.out.append("\n" * self.pending)
            self.pending = 0
            self.at_line_start = True
        self.out.append(text)
        self.at_line_start = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag and tag not in _VOID:
                self.skip_depth += 1
            return
        style = next((v for k, v in attrs if k == "style" and v), "")
        if tag in _SKIP or (tag not in _VOID and _HIDDEN.search(style)):
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "br":
            self.pending = min(self.pending + 1, 2) if self.out else 0
        elif tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            self.links.append((href, len(self.out), ""))
        elif tag == "img" and self.links:
            alt = next((v for k, v in attrs if k == "alt" and v), "")
            href, start, _ = self.links[-1]
            self.links[-1] = (href, start, alt)
        elif tag in ("ul", "ol"):
            self._break(2)
            self.lists.append(-1 if tag == "ul" else 1)
        elif tag == "li":
            self._break(1)
            marker = "- "
            if self.lists and self.lists[-1] > 0:
                marker = f"{self.lists[-1]}. "
                self.lists[-1] += 1
            self._emit("  " * max(len(self.lists) - 1, 0) + marker)
            self.at_line_start = True
        elif tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "a" and self.links:
            self._close_link()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break(2)
        elif tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def _close_link(self) -> None:
        href, start, alt = self.links.pop()
        label = "".join(self.out[start:]).strip()
        if not label and alt:
            self._emit(self.escape(alt) if self.escape else alt)
            label = alt
        if href and self.link.match(href) and href != label:
            self._emit(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if self.skip_tag is not None:
            return
        text = _SPACE.sub(" ", data)
        if self.at_line_start or self.pending:
            text = text.lstrip()
        if text:
            self._emit(self.escape(text) if self.escape else text)

    def handle_comment(self, data: str) -> None:
        if self.skip_tag is None and self.comment_text is not None:
            kept = self.comment_text(data)
            if kept is None:
                return
            text, flows = kept
            if flows:
                self._emit(text)
            else:
                # A control tag prints nothing itself: it must not take the line breaks owed
                # to the next text, or each loop pass would add a blank line.
                self.out.append(text)


def tidy(text: str) -> str:
    """Trailing spaces off each line, at most one blank line in a row.

    Runs on every derived text part, so the regexes run only when there is work for them:
    a scan of a few kilobytes of Cyrillic costs more than the rest of the render.
    """
    if " \n" in text or "\t\n" in text:
        text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def html_to_text(
    html: str,
    *,
    comment_text: Callable[[str], tuple[str, bool] | None] | None = None,
    link: re.Pattern[str] = _HTTP,
    escape: Callable[[str], str] | None = None,
) -> str:
    """Readable plain text of an HTML document or fragment.

    `comment_text` maps a comment's content to (text, flows) to keep in place, or None to
    drop it; text that does not flow (a Jinja `{% if %}`) takes no part in line breaking;
    `link` says which hrefs are printed after the link text (http and https by default);
    `escape` is applied to the document's own text (email.py keeps it literal for Jinja).
    """
    converter = _Converter(comment_text, link, escape)
    converter.feed(html)
    converter.close()
    return tidy("".join(converter.out))
