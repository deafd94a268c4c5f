"""Rendering of the pages: one Jinja2 environment whose ``_()`` / ``{% trans %}`` read the one catalogue in the
reader's locale (the ``locale`` of each template's context), locale-aware filters, and the security headers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from schemas.i18n import colon, format_day, format_moment, format_money, format_number, relative_days, translations
from schemas.vocabulary import Locale
from services.api.pages import words
from services.platform.settings import Settings

TEMPLATES = Path(__file__).with_name("templates")
# The component lines of the charts and their legend (the same colours as the .c-* classes of base.html).
COMPONENT_COLOURS = {
    "usage": "#00897b",
    "support": "#8e24aa",
    "payment": "#6d4c41",
    "relationship": "#d81b60",
    "engagement": "#1e88e5",
}


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translations(context["locale"]).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(context["locale"]).ngettext(singular, plural, n)


def _num(value: Any, locale: Locale, digits: int = 1) -> str:
    return "—" if value is None else format_number(float(value), locale, digits=digits)


def _signed(value: Any, locale: Locale) -> str:
    return "" if value is None else format_number(float(value), locale, signed=True)


def _money(value: Any, currency: str, locale: Locale) -> str:
    return format_money(Decimal(value), currency, locale)


def _day(value: date | str | None, locale: Locale, style: str = "medium") -> str:
    if value is None or value == "":
        return "—"
    day = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_day(day.date() if isinstance(day, datetime) else day, locale, style=style)


def _moment(value: datetime | str | None, locale: Locale, timezone: str = "UTC", style: str = "medium") -> str:
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_moment(moment, locale, timezone, style=style)


def _percent(value: float | None, locale: Locale) -> str:
    return "—" if value is None else format_number(value * 100, locale, digits=0) + "\u00a0%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        num=_num,
        signed=_signed,
        money=_money,
        day=_day,
        moment=_moment,
        percent=_percent,
        fill=lambda text, **fields: text.format(**fields),
        relative_days=relative_days,
        level_word=words.level_word,
        tier_word=words.tier_word,
        state_word=words.state_word,
        severity_word=words.severity_word,
        component_word=words.component_word,
        role_word=words.role_word,
        outcome_word=words.outcome_word,
        channel_word=words.channel_word,
        via_word=words.via_word,
    )
    env.globals["colours"] = COMPONENT_COLOURS
    env.globals["query"] = lambda **params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return env


ENV = _environment()


def render(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200, framed: bool = False
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    # Widgets may be framed by the configured CRM origins; the cookie pages by nobody (clickjacking).
    ancestors = " ".join(settings.frame_ancestors) if framed else "'none'"
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        f"base-uri 'none'; frame-ancestors {ancestors}"
    )
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        # The widget URL carries its token: never leak it in a Referer.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    html = ENV.get_template(template).render(path=request.url.path, colon=colon(context.get("locale", "en")), **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def message(request: Request, locale: Locale, status: int, heading: str, detail: str, *, framed: bool) -> HTMLResponse:
    context = {"locale": locale, "heading": heading, "message": detail}
    return render(request, "message.html", context, status=status, framed=framed)
