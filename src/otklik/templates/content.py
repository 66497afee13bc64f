"""A template version's content per channel, compiled once and rendered per recipient.

Content keys by channel:
- email: subject, body, body_format ("mjml" | "html"), text (optional; made from the HTML)
- sms: text
- telegram: text, photo (URL, optional), buttons ([[{"text", "url"}]], optional)
- webpush / mobile_push: title, text, url (optional), icon (optional)
- webhook: text (sent as the payload's "text"), subject (optional)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from otklik.templates.email import CompiledEmail, compile_email
from otklik.templates.rendering import CompiledText, TemplateError, compile_text

CHANNELS = ("email", "sms", "telegram", "webpush", "mobile_push", "webhook")
REQUIRED = {
    "email": ("subject", "body"),
    "sms": ("text",),
    "telegram": ("text",),
    "webpush": ("title", "text"),
    "mobile_push": ("title", "text"),
    "webhook": ("text",),
}
ALLOWED = {
    "email": {"subject", "body", "body_format", "text", "preheader"},
    "sms": {"text"},
    "telegram": {"text", "photo", "buttons"},
    "webpush": {"title", "text", "url", "icon"},
    "mobile_push": {"title", "text", "url", "icon"},
    "webhook": {"text", "subject"},
}


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    channel: str
    email: CompiledEmail | None = None
    texts: dict[str, CompiledText] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)

    def render(self, context: Mapping[str, Any]) -> Rendered:
        if self.email is not None:
            out = self.email.render(context)
            return Rendered(text=out.text, subject=out.subject, html=out.html)
        values = {name: t.render(context) for name, t in self.texts.items()}
        data = dict(self.static)
        for key in ("url", "icon", "photo"):
            if key in values:
                data[key] = values.pop(key)
        return Rendered(
            text=values.get("text", ""),
            subject=values.get("title") or values.get("subject"),
            data=data,
        )


def check_content(channel: str, content: Mapping[str, Any]) -> None:
    if channel not in CHANNELS:
        raise TemplateError(f"channel must be one of {', '.join(CHANNELS)}", code="invalid_channel")
    unknown = set(content) - ALLOWED[channel]
    if unknown:
        raise TemplateError(
            f"{channel} templates have no field {', '.join(sorted(unknown))}",
            code="unknown_field",
            details={"field": sorted(unknown)[0]},
        )
    for name in REQUIRED[channel]:
        value = content.get(name)
        if not isinstance(value, str) or not value.strip():
            raise TemplateError(
                f"{name} is required for {channel} templates",
                code="missing_field",
                details={"field": name},
            )
    if channel == "email" and content.get("body_format", "html") not in ("mjml", "html"):
        raise TemplateError(
            "body_format must be mjml or html",
            code="invalid_field",
            details={"field": "body_format"},
        )
    if channel == "telegram" and "buttons" in content:
        _check_buttons(content["buttons"])


def _check_buttons(buttons: Any) -> None:
    ok = isinstance(buttons, list) and all(
        isinstance(row, list)
        and all(
            isinstance(b, dict)
            and isinstance(b.get("text"), str)
            and isinstance(b.get("url"), str)
            and set(b) <= {"text", "url"}
            for b in row
        )
        for row in buttons
    )
    if not ok:
        raise TemplateError(
            'buttons must be rows of {"text": ..., "url": ...}',
            code="invalid_field",
            details={"field": "buttons"},
        )


# Mail apps show the first text of a message next to its subject; a preheader chooses it.
HIDDEN = (
    '<div style="display:none;max-height:0;max-width:0;overflow:hidden;opacity:0;'
    'mso-hide:all">{}</div>'
)


def with_preheader(body: str, body_format: str, preheader: str) -> str:
    """The body with the preheader put where mail apps read the preview text from."""
    if not preheader.strip():
        return body
    if body_format == "mjml":
        tag = f"<mj-preview>{preheader}</mj-preview>"
        if "<mj-head>" in body:
            return body.replace("<mj-head>", "<mj-head>" + tag, 1)
        return re.sub(
            r"(<mjml[^>]*>)", lambda m: m.group(1) + f"<mj-head>{tag}</mj-head>", body, count=1
        )
    hidden = HIDDEN.format(preheader)
    found = re.search(r"<body[^>]*>", body, re.IGNORECASE)
    if found:
        return body[: found.end()] + hidden + body[found.end() :]
    return hidden + body


def compile_content(channel: str, content: Mapping[str, Any]) -> Compiled:
    """Check and compile; TemplateError names the field and line of the first problem."""
    check_content(channel, content)
    if channel == "email":
        body_format = content.get("body_format", "html")
        body = with_preheader(content["body"], body_format, content.get("preheader") or "")
        return Compiled(
            channel,
            email=compile_email(content["subject"], body, body_format, content.get("text") or None),
        )
    texts = {
        name: compile_text(value, name)
        for name, value in content.items()
        if name in ("text", "title", "subject", "url", "icon", "photo") and isinstance(value, str)
    }
    static = {"buttons": content["buttons"]} if content.get("buttons") else {}
    return Compiled(channel, texts=texts, static=static)


@lru_cache(maxsize=512)
def _compiled_cached(channel: str, content_json: bytes) -> Compiled:
    return compile_content(channel, orjson.loads(content_json))


def compiled(channel: str, content: Mapping[str, Any]) -> Compiled:
    """Compiled content, cached by its exact text: versions never change once saved."""
    return _compiled_cached(channel, orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
