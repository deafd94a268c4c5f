"""The account widget: what a notification's links and a CRM iframe open (``/widget/accounts/{id}?token=…``).

It shows the account as its alerts describe it (the same words as the messages, in the reader's language and
time zone), its next steps from the playbook, and its open alerts with their actions: Acknowledge, Snooze,
Useful, False alarm. A token bound to a KAM acts as that KAM, and only the account's owner, a manager above
them or a KAM with an admin key may act (anyone else sees the account and is told why the actions are not
theirs; nothing changes). A feedback link in an email leads to a confirmation first: a GET never records
anything (mail scanners follow links).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.phrasing import (
    Reader,
    ago,
    day,
    first_seen,
    level_word,
    moment,
    number,
    severity_reason,
    severity_word,
    step_text,
)
from alerts.repository import lifecycle
from health_engine.access import InvalidToken, WidgetGrant, grant_holds, kam_may_act, verify
from schemas.i18n import format_number, translate
from schemas.vocabulary import SEVERITY_RANK, Locale
from services.api import queries as q
from services.api.guidance import alert_headlines, is_lost, next_steps, snapshot_of_row, strongest_drivers
from services.api.pages.charts import gauge_arc, line_chart
from services.api.pages.render import render
from services.api.pages.review import page_principal
from services.api.problems import Problem
from services.api.v1 import AlertId, reject_nul, widget_secret
from services.api.views import pick_locale
from services.flows.links import widget_path

router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_nul)])

Verdict = Literal["useful", "false_alarm"]


def _gettext(locale: Locale) -> Callable[..., str]:
    def gettext(message: str, **fields: Any) -> str:
        return translate(locale, message, **fields)

    return gettext


def _render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    return render(request, template, context, status=status, framed=True)


def _refused(request: Request, locale: Locale) -> HTMLResponse:
    _ = _gettext(locale)
    context = {
        "locale": locale,
        "heading": _("Access refused"),
        "message": _("This link has expired or is not valid for this account. Open the account again from kamwatch."),
    }
    return _render(request, "message.html", context, status=403)


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


async def _reader_of(request: Request, grant: WidgetGrant, requested: str | None) -> Reader:
    """The reader: ``?locale=``, else the token's KAM's language, else the browser's; their time zone."""
    kam = None
    if grant.kam_id is not None:
        async with q.request_db(request).transaction() as conn:
            kam = await conn.fetchrow("SELECT locale, timezone FROM kams WHERE kam_id = $1", grant.kam_id)
    if requested in ("en", "fr"):
        locale = pick_locale(requested, None)
    elif kam is not None and kam["locale"] in ("en", "fr"):
        locale = kam["locale"]
    else:
        locale = pick_locale(None, request.headers.get("accept-language"))
    timezone = kam["timezone"] if kam is not None else "UTC"
    return Reader(locale, timezone, q.request_now(request))


async def _may_act(request: Request, grant: WidgetGrant, owner_kam_id: str | None) -> bool:
    """A token bound to a KAM acts for that KAM, if they may; a token minted for a CRM without a KAM (by a key
    that may read the account) acts as the widget."""
    if grant.kam_id is None:
        return True
    async with q.request_db(request).unit_of_work() as conn:
        return await kam_may_act(conn, grant.kam_id, owner_kam_id, now=q.request_now(request))


def _widget_href(account_id: str, token: str, locale: Locale, **extra: str) -> str:
    return f"{widget_path(account_id)}?{urlencode({'token': token, 'locale': locale, **extra})}"


def _done_text(done: str | None, locale: Locale) -> str | None:
    words = {
        "ack": translate(locale, "Acknowledged."),
        "snooze": translate(locale, "Snoozed."),
        "useful": translate(locale, "Thank you: marked as useful."),
        "false_alarm": translate(locale, "Thank you: marked as a false alarm."),
    }
    return words.get(done or "")


def _page(row: Mapping[str, Any], reader: Reader, request: Request) -> dict[str, Any]:
    """What the widget shows, in the reader's words."""
    locale = reader.locale
    _ = _gettext(locale)
    account = snapshot_of_row(row, reader.now)
    headlines = alert_headlines(row, reader)
    steps = next_steps(row, request.app.state.playbook)
    alerts = []
    ranked = sorted(row.get("open_alerts") or (), key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0), -int(a["id"])))
    for a in ranked:
        severity = a["severity"]
        alerts.append(
            {
                "id": a["id"],
                "state": a["state"],
                "sev": severity,
                "severity": severity_word(severity, locale),
                "headline": headlines.get(int(a["id"]), a.get("rule", "")),
                "reason": severity_reason(severity, account, reader) if account is not None else None,
                "since": first_seen(datetime.fromisoformat(str(a["fired_at"])), reader),
                "state_word": _("acknowledged") if a["state"] == "acknowledged" else _("open"),
                "snoozed": moment(datetime.fromisoformat(str(a["snoozed_until"])), reader)
                if a.get("snoozed_until")
                else None,
            }
        )
    components = {
        "usage": _("Usage"),
        "support": _("Support"),
        "payment": _("Payment"),
        "relationship": _("Relationship"),
        "engagement": _("Engagement"),
    }
    lost = None
    if is_lost(row):
        at = row["outcome_at"]
        lost = {"day": day(at.date() if isinstance(at, datetime) else at, reader), "reason": row["outcome_reason"]}
    change = None
    if row.get("risk") is not None and row.get("risk_7d") is not None:
        change = format_number(round(float(row["risk"]) - float(row["risk_7d"]), 1), locale, signed=True)
    return {
        "name": row["name"],
        "account_id": row["account_id"],
        "risk": row.get("risk"),
        "risk_text": number(float(row["risk"]), reader) if row.get("risk") is not None else None,
        "level": row.get("level"),
        "level_word": level_word(row["level"], locale).capitalize() if account is not None else _("Not scored"),
        "change_7d": change,
        "lost": lost,
        "next_steps": [
            {"text": step_text(step, reader), "alert_id": alert_id}
            for step, alert_id in sorted(steps, key=lambda s: (s[0].due_at is None, s[0].due_at or reader.now))
        ],
        "drivers": [text for _, text in strongest_drivers(row, reader, limit=5)],
        "components": [
            {"name": components.get(str(c.get("name")), str(c.get("name"))), "risk": float(c.get("risk") or 0)}
            for c in row.get("components") or ()
        ],
        "alerts": alerts,
        "updated": ago(row["as_of"], reader) + " · " + moment(row["as_of"], reader) if row.get("as_of") else "—",
    }


@router.get("/widget/accounts/{account_id}", response_class=HTMLResponse)
async def widget_page(
    request: Request,
    account_id: str,
    token: str = "",
    locale: Annotated[str | None, Query()] = None,
    done: str | None = None,
) -> Response:
    if not token:
        # A link without a widget token (an old notification, a copied URL): a person, sent to the account page,
        # through sign-in if need be.
        language = pick_locale(locale, request.headers.get("accept-language"))
        review = f"/accounts/{quote(account_id, safe='')}?{urlencode({'locale': language})}"
        if await page_principal(request) is not None:
            return RedirectResponse(review, status_code=303)
        return RedirectResponse(f"/login?{urlencode({'locale': language, 'next': review})}", status_code=303)
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _refused(request, pick_locale(locale, request.headers.get("accept-language")))
    reader = await _reader_of(request, grant, locale)
    row = await q.account_health_row(request.app.state.read_pool, account_id, reader.now)
    if row is None:
        heading, detail = translate(reader.locale, "Not found"), translate(reader.locale, "No such account.")
        missing = {"locale": reader.locale, "heading": heading, "message": detail}
        return _render(request, "message.html", missing, status=404)
    page = _page(row, reader, request)
    context: dict[str, Any] = {
        "locale": reader.locale,
        "p": page,
        "gauge": gauge_arc(float(row["risk"] or 0.0)),
        "chart": line_chart(await _risk_series(request, account_id, 90), 240, 44),
        "token": token,
        "actions": not page["lost"] and await _may_act(request, grant, row["owner_kam_id"]),
        "base": widget_path(account_id),
        "done": _done_text(done, reader.locale),
    }
    return _render(request, "widget.html", context)


async def _act(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    token: str,
    locale: str | None,
    act: Callable[[Any, str, datetime], Any],
    done: str,
) -> Response:
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _refused(request, pick_locale(locale, request.headers.get("accept-language")))
    reader = await _reader_of(request, grant, locale)
    db = q.request_db(request)
    async with db.transaction() as conn:
        try:
            alert = await lifecycle.get_alert(conn, alert_id)
            owner = await conn.fetchval("SELECT owner_kam_id FROM accounts WHERE account_id = $1", account_id)
        except lifecycle.AlertNotFound:
            raise Problem(404, "Not Found", "no such alert") from None
        if alert["account_id"] != account_id:
            raise Problem(404, "Not Found", "no such alert")
    if not await _may_act(request, grant, owner):
        _ = _gettext(reader.locale)
        context = {
            "locale": reader.locale,
            "heading": _("Not yours to act on"),
            "message": _(
                "Only the account's owner, their managers or an admin can act on its alerts. Nothing changed."
            ),
        }
        return _render(request, "message.html", context, status=403)
    async with db.transaction() as conn:
        # Resolved meanwhile: nothing to do, the reloaded widget shows it gone.
        with contextlib.suppress(lifecycle.InvalidTransition):
            await act(conn, grant.kam_id or "widget", reader.now)
    return RedirectResponse(_widget_href(account_id, token, reader.locale, done=done), status_code=303)


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/ack")
async def widget_ack(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
) -> Response:
    async def act(conn: Any, actor: str, now: datetime) -> None:
        await lifecycle.transition(conn, alert_id, "acknowledged", actor=actor, via="widget", at=now)

    return await _act(request, account_id, alert_id, token, locale, act, "ack")


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/snooze")
async def widget_snooze(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
    minutes: Annotated[int, Form(ge=1, le=90 * 24 * 60)] = 1440,
) -> Response:
    async def act(conn: Any, actor: str, now: datetime) -> None:
        until = now + timedelta(minutes=minutes)
        await lifecycle.transition(
            conn, alert_id, "acknowledged", actor=actor, via="widget", at=now, snoozed_until=until
        )

    return await _act(request, account_id, alert_id, token, locale, act, "snooze")


@router.post("/widget/accounts/{account_id}/alerts/{alert_id}/feedback")
async def widget_feedback(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    verdict: Annotated[Verdict, Form()],
    token: Annotated[str, Form()] = "",
    locale: Annotated[str | None, Form()] = None,
    via: Annotated[Literal["widget", "email"], Form()] = "widget",
) -> Response:
    async def act(conn: Any, actor: str, now: datetime) -> None:
        await lifecycle.record_feedback(conn, alert_id, verdict, actor=actor, at=now, via=via)

    return await _act(request, account_id, alert_id, token, locale, act, verdict)


@router.get("/widget/accounts/{account_id}/alerts/{alert_id}/feedback", response_class=HTMLResponse)
async def confirm_feedback(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    verdict: Verdict,
    token: str = "",
    locale: Annotated[str | None, Query()] = None,
    via: Literal["widget", "email"] = "email",
) -> HTMLResponse:
    """The one-click feedback link of an email: asks to confirm, records nothing."""
    grant = await _grant(request, account_id, token)
    if grant is None:
        return _refused(request, pick_locale(locale, request.headers.get("accept-language")))
    reader = await _reader_of(request, grant, locale)
    row = await q.account_health_row(request.app.state.read_pool, account_id, reader.now)
    alert = next((a for a in (row or {}).get("open_alerts") or () if int(a["id"]) == alert_id), None)
    _ = _gettext(reader.locale)
    if row is None or alert is None:
        context = {
            "locale": reader.locale,
            "heading": _("This alert is closed"),
            "message": _("It was resolved since the message was sent; there is nothing left to rate."),
        }
        return _render(request, "message.html", context, status=404)
    question = {
        "useful": _("Mark this alert as useful?"),
        "false_alarm": _("Mark this alert as a false alarm?"),
    }[verdict]
    context = {
        "locale": reader.locale,
        "question": question,
        "name": row["name"],
        "headline": alert_headlines(row, reader).get(alert_id, ""),
        "action": f"{widget_path(account_id)}/alerts/{alert_id}/feedback",
        "token": token,
        "verdict": verdict,
        "via": via,
        "back": _widget_href(account_id, token, reader.locale),
    }
    return _render(request, "widget_feedback.html", context)
