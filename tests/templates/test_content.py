"""A template version's content per channel: required fields, and the email preheader."""

from __future__ import annotations

import pytest

from otklik.templates.content import compile_content
from otklik.templates.rendering import TemplateError

CTX = {"profile": {"first_name": "Ира"}, "workspace": {"name": "Shop"}}
MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)


def test_the_preheader_is_the_hidden_preview_text_of_mjml_and_html_emails() -> None:
    for body, fmt in ((MJML, "mjml"), ("<html><body><p>Hi</p></body></html>", "html")):
        out = compile_content(
            "email",
            {
                "subject": "s",
                "body": body,
                "body_format": fmt,
                "preheader": "Скидки для {{ profile.first_name }}",
            },
        ).render(CTX)
        assert out.html is not None and "Скидки для Ира" in out.html
        assert "Скидки" not in out.text  # people reading the text part do not see it twice


@pytest.mark.parametrize(
    ("channel", "content", "code", "field"),
    [
        ("sms", {}, "missing_field", "text"),
        ("email", {"subject": "s"}, "missing_field", "body"),
        ("sms", {"text": "x", "subject": "y"}, "unknown_field", "subject"),
        (
            "email",
            {"subject": "s", "body": "b", "body_format": "pdf"},
            "invalid_field",
            "body_format",
        ),
        ("telegram", {"text": "x", "buttons": [{"text": "no row"}]}, "invalid_field", "buttons"),
    ],
)
def test_content_errors_name_the_field(channel: str, content: dict, code: str, field: str) -> None:
    with pytest.raises(TemplateError) as raised:
        compile_content(channel, content)
    assert raised.value.code == code
    assert raised.value.details["field"] == field
