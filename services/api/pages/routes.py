"""Server-rendered pages: the embeddable account widget (widget token) and the portfolio pages (login cookie)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.repository import lifecycle
from health_engine.access import (
    InvalidToken,
    Principal,
    WidgetGrant,
    end_session,
    grant_holds,
    open_session,
    principal_for_key,
    principal_for_session,
    verify,
)
from schemas.i18n import translate
from schemas.vocabulary import LEVELS, Locale
from schemas.wording import money, number
from services.api import queries as q
from services.api.auth import SESSION_COOKIE, FailedAuthLimit, client_address, well_formed_key
from services.api.pages.charts import gauge_arc, line_chart
from services.api.pages.texts import TEXTS
from services.api.problems import Problem
from services.api.v1 import AlertId, reject_nul, widget_secret
from services.api.views import health_document, pick_locale, portfolio_document, timeline_item
from services.platform.settings import Settings

router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_nul)])

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["num"] = lambda value, locale: number(float(value), locale)
_env.filters["money"] = lambda value, currency, locale: money(Decimal(value), currency, locale)


def _render(
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
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def _message(request: Request, locale: Locale, status: int, heading: str, detail: str, *, framed: bool) -> HTMLResponse:
    context = {"locale": locale, "heading": heading, "message": detail}
    return _render(request, "message.html", context, status=status, framed=framed)


async def _grant(request: Request, account_id: str, token: str) -> WidgetGrant | None:
    """The token's grant if it is valid for the account and still holds (its key live, the owner unchanged)."""
    now = q.request_now(request)
    try:
        grant = verify(await widget_secret(request), token, account_id=account_id, now=now)
    except InvalidToken:
        return None
    async with q.request_db(request).unit_of_work() as conn:
        return grant if await grant_holds(conn, grant, now=now) else None


async def _risk_series(request: Request, account_id: str, days: int) -> list[tuple[datetime, float]]:
    now = q.request_now(request)
    async with q.request_db(request).unit_of_work() as conn:
        rows = await q.history(conn, account_id, now - timedelta(days=days), now)
    return [(r["as_of"], float(r["risk"])) for r in rows]


@router.get("/widget/accounts/{account_id}", response_class=HTMLResponse)
async def widget_page(
    request: Request, account_id: str, token: str = "", locale: Annotated[str | None, Query()] = None
) -> HTMLResponse:
    language = pick_locale(locale, request.headers.get("accept-language"))
    t = TEXTS[language]
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _message(request, language, 403, t["forbidden"], t["forbidden_detail"], framed=True)
    row = await q.account_health_row(request.app.state.read_pool, account_id, q.request_now(request))
    if row is None:
        return _message(request, language, 404, t["not_found"], t["not_found_detail"], framed=True)
    health = health_document(row, language)
    context = {
        "locale": language,
        "t": t,
        "h": health,
        "gauge": gauge_arc(health["risk"] or 0.0),
        "chart": line_chart(await _risk_series(request, account_id, 90), 240, 44),
        "token": token,
        "actions": True,
        "base": f"/widget/accounts/{quote(account_id, safe='')}",
    }
    return _render(request, "widget.html", context, framed=True)


async def _widget_action(
    request: Request, account_id: str, alert_id: int, token: str, locale: str | None, minutes: int | None
) -> Response:
    language = pick_locale(locale, request.headers.get("accept-language"))
    grant = await _grant(request, account_id, token)
    if grant is None:
        t = TEXTS[language]
        return _message(request, language, 403, t["forbidden"], t["forbidden_detail"], framed=True)
    now = q.request_now(request)
    async with q.request_db(request).transaction() as conn:
        try:
            alert = await lifecycle.get_alert(conn, alert_id)
            if alert["account_id"] != account_id:
                raise lifecycle.AlertNotFound(alert_id)
            until = now + timedelta(minutes=minutes) if minutes else None
            await lifecycle.transition(
                conn,
                alert_id,
                "acknowledged",
                actor=grant.kam_id or "widget",
                via="widget",
                at=now,
                snoozed_until=until,
            )
        except lifecycle.AlertNotFound:
            raise Problem(404, "Not Found", "no such alert") from None
        except lifecycle.InvalidTransition:
            pass  # resolved meanwhile: the reloaded widget shows it gone
    query = urlencode({"token": token, "locale": language})
    return RedirectResponse(f"/widget/accounts/{quote(account_id, safe='')}?{query}", status_code=303)


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/ack")
async def widget_ack(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
) -> Response:
    return await _widget_action(request, account_id, alert_id, token, locale, None)


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/snooze")
async def widget_snooze(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
    minutes: Annotated[int, Form(ge=1, le=90 * 24 * 60)] = 1440,
) -> Response:
    return await _widget_action(request, account_id, alert_id, token, locale, minutes)


async def _page_principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or "\x00" in token:
        return None
    async with q.request_db(request).unit_of_work() as conn:
        principal = await principal_for_session(conn, token, now=q.request_now(request))
    return principal if principal is not None and principal.can_read() else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, locale: str | None = None) -> HTMLResponse:
    language = pick_locale(locale, request.headers.get("accept-language"))
    return _render(request, "login.html", {"locale": language, "t": TEXTS[language], "error": None})


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form()] = "", locale: str | None = None) -> Response:
    """Check the key once, then open a session kept in an HttpOnly cookie (neither the key nor the session ever
    appears in a URL, and the cookie is not the key). Failed attempts count against the client's address."""
    language = pick_locale(locale, request.headers.get("accept-language"))
    limit: FailedAuthLimit = request.app.state.failed_auth_limit
    client = client_address(request)
    try:
        limit.check(client)
    except Problem as refused:
        error = translate(language, "Too many failed attempts from this address: try again in a few minutes.")
        context = {"locale": language, "t": TEXTS[language], "error": error}
        page = _render(request, "login.html", context, status=429)
        page.headers.update(refused.headers)
        return page
    now = q.request_now(request)
    settings: Settings = request.app.state.settings
    async with q.request_db(request).unit_of_work() as conn:
        candidate = key.strip()
        principal = await principal_for_key(conn, candidate, now=now) if well_formed_key(candidate) else None
        session = None
        if principal is not None and principal.can_read() and principal.key_id is not None:
            expires = now + timedelta(seconds=settings.session_ttl_s)
            session = await open_session(conn, principal.key_id, at=now, expires_at=expires)
    if session is None:
        limit.failed(client)
        context = {"locale": language, "t": TEXTS[language], "error": TEXTS[language]["bad_key"]}
        return _render(request, "login.html", context, status=401)
    response = RedirectResponse("/", status_code=303)
    secure = settings.public_url.startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        secure=secure,
        samesite="strict",
        max_age=settings.session_ttl_s,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session for good (a copy of the cookie no longer works), then forget the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and "\x00" not in token:
        async with q.request_db(request).unit_of_work() as conn:
            await end_session(conn, token, at=q.request_now(request))
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def portfolio_page(
    request: Request,
    level: str | None = None,
    tier: str | None = None,
    sort: str = "risk",
    cursor: str | None = None,
    locale: str | None = None,
) -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login()
    language = pick_locale(locale, request.headers.get("accept-language"))
    chosen_sort: q.AccountSort = sort if sort in ("risk", "arr_at_risk", "change") else "risk"  # type: ignore[assignment]
    levels = [level] if level in LEVELS else []
    async with q.request_db(request).unit_of_work() as conn:
        rows, next_cursor = await q.list_accounts(
            conn,
            principal,
            owner=None,
            levels=levels,
            tiers=[tier] if tier else [],
            segment=None,
            renewal_from=None,
            renewal_to=None,
            sort=chosen_sort,
            limit=100,
            cursor=cursor,
        )
        groups = await q.portfolio_groups(conn, principal)
    today = q.request_now(request).date()
    summary = portfolio_document(groups, [], today, today)
    filters = {"level": level or "", "tier": tier or "", "sort": chosen_sort}
    next_query = urlencode({**filters, "cursor": next_cursor or ""})
    context = {
        "locale": language,
        "t": TEXTS[language],
        "summary": summary,
        "accounts": rows,
        "filters": filters,
        "next_cursor": next_cursor,
        "next_query": next_query,
    }
    return _render(request, "portfolio.html", context)


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(request: Request, account_id: str, locale: str | None = None) -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login()
    language = pick_locale(locale, request.headers.get("accept-language"))
    t = TEXTS[language]
    row = await q.account_health_row(request.app.state.read_pool, account_id, q.request_now(request))
    if row is None or not principal.sees_owner(row["owner_kam_id"]):
        return _message(request, language, 404, t["not_found"], t["not_found_detail"], framed=False)
    async with q.request_db(request).unit_of_work() as conn:
        events, _ = await q.timeline(conn, account_id, limit=100, cursor=None)
    context = {
        "locale": language,
        "t": t,
        "h": health_document(row, language),
        "chart": line_chart(await _risk_series(request, account_id, 180), 720, 160),
        "timeline": [timeline_item(e, language) for e in events],
    }
    return _render(request, "account.html", context)
