"""Message templates: sandboxed Jinja rendering, locale filters, MJML/HTML email compilation."""

from __future__ import annotations

from otklik.templates.email import (
    CompiledEmail,
    RenderedEmail,
    add_open_pixel,
    compile_email,
    rewrite_links,
)
from otklik.templates.rendering import (
    CompiledText,
    TemplateError,
    check_variables,
    compile_html,
    compile_text,
)
from otklik.templates.text import html_to_text

__all__ = [
    "CompiledEmail",
    "CompiledText",
    "RenderedEmail",
    "TemplateError",
    "add_open_pixel",
    "check_variables",
    "compile_email",
    "compile_html",
    "compile_text",
    "html_to_text",
    "rewrite_links",
]
