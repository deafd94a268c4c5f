"""Server-rendered pages: sign in and out here; the embeddable account widget (widget token) and the pages behind
the login cookie (portfolio, account review, post-mortems) have their own modules, gathered here."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from health_engine.access import end_session, open_session, principal_for_key
from schemas.i18n import translate
from services.api import queries as q
from services.api.auth import SESSION_COOKIE, FailedAuthLimit, client_address, well_formed_key
from services.api.pages import losses, portfolio, review
from services.api.pages.render import render
from services.api.pages.review import to_login
from services.api.problems import Problem
from services.api.v1 import reject_nul
from services.api.views import pick_locale
from services.platform.settings import Settings

router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_nul)])
router.include_router(portfolio.router)
router.include_router(review.router)
router.include_router(losses.router)


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
        principal = await principal_for_key(conn, candidate, now=now) if well_formed_key(candidate) else None
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
