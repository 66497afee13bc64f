"""Jinja2 rendering for the console: autoescaped, translated, with locale-aware filters.

Dates are shown in the workspace's time zone and numbers in the reader's locale; both come
from context variables set for the one render, so filters need no arguments in templates.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from otklik import __version__
from otklik.kit.time import utc_now
from otklik.web import i18n
from otklik.web.notices import NOTICES, ROLE_LABELS

if TYPE_CHECKING:
    from otklik.web.session import Console

TEMPLATES = Path(__file__).parent / "templates"
# No framing (clickjacking of the merge and revoke buttons), no MIME sniffing, and no full
# URLs (which may carry search terms such as an email) leaked to other sites.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
UTC_ZONE = ZoneInfo("UTC")
current_tz: ContextVar[ZoneInfo | None] = ContextVar("current_tz", default=None)
current_currency: ContextVar[str] = ContextVar("current_currency", default="RUB")


def _dt(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    return format_datetime(
        value, fmt, tzinfo=current_tz.get() or UTC_ZONE, locale=i18n.current_locale.get()
    )


def _date(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    local = value.astimezone(current_tz.get() or UTC_ZONE) if value.tzinfo else value
    return format_date(local, fmt, locale=i18n.current_locale.get())


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    delta = value - utc_now()
    return format_timedelta(delta, add_direction=True, locale=i18n.current_locale.get())


def _number(value: int | float | Decimal | None) -> str:
    return "—" if value is None else format_decimal(value, locale=i18n.current_locale.get())


def _money(value: int | float | Decimal | str | None, currency: str | None = None) -> str:
    if value is None:
        return "—"
    return format_currency(
        Decimal(str(value)), currency or current_currency.get(), locale=i18n.current_locale.get()
    )


def _percent(value: float | None) -> str:
    if value is None:
        return "—"
    return format_percent(value, "#,##0.#%", locale=i18n.current_locale.get())


def pretty_json(payload: Any) -> str:
    """A payload as indented JSON; text that is not JSON is shown as it came."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return payload
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.filters.update(
        dt=_dt,
        date=_date,
        ago=_ago,
        number=_number,
        money=_money,
        percent=_percent,
        pretty_json=pretty_json,
    )
    env.globals.update(
        version=__version__,
        languages=i18n.LANGUAGE_NAMES,
        notices=NOTICES,
        role_labels=ROLE_LABELS,
    )
    return env


ENV = _environment()


def request_locale(request: Request, console: Console | None) -> str:
    if console is not None:
        return console.locale
    return i18n.choose(
        None, request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language")
    )


def render_text(
    request: Request, name: str, context: dict[str, Any], console: Console | None = None
) -> str:
    locale = request_locale(request, console)
    tokens = [i18n.current_locale.set(locale)]
    tz_token = current_tz.set(console.tz if console else UTC_ZONE)
    cur_token = current_currency.set(console.workspace.currency if console else "RUB")
    try:
        notice = request.query_params.get("notice")
        page = {
            "request": request,
            "console": console,
            "locale": locale,
            "notice": notice if notice in NOTICES else None,
            "now": datetime.now(UTC),
            **context,
        }
        return ENV.get_template(name).render(page)
    finally:
        current_currency.reset(cur_token)
        current_tz.reset(tz_token)
        for token in tokens:
            i18n.current_locale.reset(token)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    console: Console | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    body = render_text(request, name, context or {}, console)
    response = HTMLResponse(body, status_code=status, headers=headers)
    # Pages carry personal data: never cached by the browser or a proxy.
    response.headers.setdefault("Cache-Control", "no-store")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
