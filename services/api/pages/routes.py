"""Server-rendered pages: the embeddable account widget (widget token), sign in and out; the pages behind the
login cookie (portfolio, account review, post-mortems) have their own modules, gathered here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.repository import lifecycle
from health_engine.access import (
    InvalidToken,
    WidgetGrant,
    end_session,
    grant_holds,
    open_session,
    principal_for_key,
    verify,
)
from schemas.i18n import translate
from schemas.vocabulary import Locale
from services.api import queries as q
from services.api.auth import SESSION_COOKIE, FailedAuthLimit, client_address
from services.api.pages import losses, portfolio, review
from services.api.pages.charts import gauge_arc, line_chart
from services.api.pages.render import message, render
from services.api.pages.review import alert_view, page_principal, to_login
from services.api.problems import Problem
from services.api.v1 import widget_secret
from services.api.views import health_document, pick_locale
from services.platform.settings import Settings

router = APIRouter(include_in_schema=False)
router.include_router(portfolio.router)
router.include_router(review.router)
router.include_router(losses.router)


def _refused(request: Request, language: Locale) -> HTMLResponse:
    heading = translate(language, "Access refused")
    detail = translate(language, "This link has expired or is not valid for this account. Reload the page in your CRM.")
    return message(request, language, 403, heading, detail, framed=True)


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
) -> Response:
    language = pick_locale(locale, request.headers.get("accept-language"))
    if not token:
        # A link without a widget token (the "Open" of a notification): a person, sent to the account page.
        page = f"/accounts/{quote(account_id, safe='')}?{urlencode({'locale': language})}"
        if await page_principal(request) is not None:
            return RedirectResponse(page, status_code=303)
        return RedirectResponse(f"/login?{urlencode({'locale': language, 'next': page})}", status_code=303)
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _refused(request, language)
    row = await q.account_health_row(request.app.state.read_pool, account_id, q.request_now(request))
    if row is None:
        heading, detail = translate(language, "Not found"), translate(language, "No such account.")
        return message(request, language, 404, heading, detail, framed=True)
    health = health_document(row, language)
    health["open_alerts"] = [alert_view(a, language) for a in health["open_alerts"]]
    context = {
        "locale": language,
        "h": health,
        "gauge": gauge_arc(health["risk"] or 0.0),
        "chart": line_chart(await _risk_series(request, account_id, 90), 240, 44),
        "token": token,
        "base": f"/widget/accounts/{quote(account_id, safe='')}",
    }
    return render(request, "widget.html", context, framed=True)


async def _widget_action(
    request: Request, account_id: str, alert_id: int, token: str, locale: str | None, minutes: int | None
) -> Response:
    language = pick_locale(locale, request.headers.get("accept-language"))
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _refused(request, language)
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
    alert_id: int,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
) -> Response:
    return await _widget_action(request, account_id, alert_id, token, locale, None)


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/snooze")
async def widget_snooze(
    request: Request,
    account_id: str,
    alert_id: int,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
    minutes: Annotated[int, Form(ge=1, le=90 * 24 * 60)] = 1440,
) -> Response:
    return await _widget_action(request, account_id, alert_id, token, locale, minutes)


def _next_page(next_page: str | None) -> str | None:
    """Where to go after signing in: a path of this site only (never another host)."""
    if next_page and next_page.startswith("/") and not next_page.startswith(("//", "/\\")):
        return next_page
    return None


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, locale: str | None = None, next: str | None = None) -> HTMLResponse:
    language = pick_locale(locale, request.headers.get("accept-language"))
    return render(request, "login.html", {"locale": language, "error": None, "next": _next_page(next)})


@router.post("/login")
async def login(
    request: Request, key: Annotated[str, Form()] = "", locale: str | None = None, next: str | None = None
) -> Response:
    """Check the key once, then open a session kept in an HttpOnly cookie (neither the key nor the session ever
    appears in a URL, and the cookie is not the key). Failed attempts count against the client's address."""
    language = pick_locale(locale, request.headers.get("accept-language"))
    after = _next_page(next)
    limit: FailedAuthLimit = request.app.state.failed_auth_limit
    client = client_address(request)
    try:
        limit.check(client)
    except Problem as refused:
        error = translate(language, "Too many failed attempts from this address: try again in a few minutes.")
        page = render(request, "login.html", {"locale": language, "error": error, "next": after}, status=429)
        page.headers.update(refused.headers)
        return page
    now = q.request_now(request)
    settings: Settings = request.app.state.settings
    async with q.request_db(request).unit_of_work() as conn:
        candidate = key.strip()
        principal = await principal_for_key(conn, candidate, now=now) if "\x00" not in candidate else None
        session = None
        if principal is not None and principal.can_read() and principal.key_id is not None:
            expires = now + timedelta(seconds=settings.session_ttl_s)
            session = await open_session(conn, principal.key_id, at=now, expires_at=expires)
    if session is None:
        limit.failed(client)
        error = translate(language, "Unknown, revoked or expired key, or a key that cannot read accounts.")
        return render(request, "login.html", {"locale": language, "error": error, "next": after}, status=401)
    response = RedirectResponse(after or (f"/?locale={language}" if locale else "/"), status_code=303)
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
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
