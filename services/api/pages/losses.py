"""Losses and their post-mortems: ``/losses`` lists the period's lost accounts with their lead times (the
learning loop), ``/accounts/{id}/postmortem`` tells one loss in full."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from alerts.phrasing import rule_name
from schemas.i18n import translate
from services.api import queries as q
from services.api.pages import words
from services.api.pages.charts import TimeChart, risk_chart
from services.api.pages.render import message, render
from services.api.pages.review import level_cut_offs, page_principal, short_day, to_login
from services.api.v1 import losses_with_lead_times
from services.api.views import pick_locale
from services.flows import postmortem as pm

router = APIRouter(include_in_schema=False)


def _day(value: str | None) -> date | None:
    if value and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


@router.get("/losses", response_class=HTMLResponse)
async def losses_page(request: Request, locale: str | None = None) -> Response:
    principal = await page_principal(request)
    if principal is None:
        return to_login(locale)
    language = pick_locale(locale, request.headers.get("accept-language"))
    stop = _day(request.query_params.get("to")) or q.request_now(request).date()
    begin = _day(request.query_params.get("from")) or stop - timedelta(days=180)
    if begin > stop:
        begin, stop = stop, begin
    items = await losses_with_lead_times(request, principal, begin, stop)
    for item in items:
        account = item["account"]
        before, after = account["arr_before"], account["arr_after"]
        item["lost_arr"] = None if before is None else max(Decimal(before) - Decimal(after or 0), Decimal(0))
    told = [item["lead_days"] for item in items if item["first_told_at"] is not None]
    context = {
        "locale": language,
        "params": {"from": begin.isoformat(), "to": stop.isoformat()},
        "period": {"start": begin, "end": stop},
        "items": items,
        "warned": len(told),
        "median_lead": sorted(told)[len(told) // 2] if told else None,
    }
    return render(request, "losses.html", context)


def replay_chart(found: pm.AccountPostMortem, levels: Any, locale: Any) -> TimeChart | None:
    story = found.story
    markers = [(r.fired_at, "alert", rule_name(r.rule, locale)) for r in story.rules if r.fired_at is not None]
    markers += [(n.sent_at, "level", words.channel_word(n.channel, locale)) for n in story.notifications]
    markers.append((found.loss.outcome_at, "outcome", words.outcome_word(found.loss.outcome, locale)))
    start = found.loss.outcome_at - timedelta(days=pm.WINDOW_DAYS)
    return risk_chart(
        [(at, risk) for at, risk, _ in found.risk],
        level_cut_offs(levels, locale),
        start=start,
        end=found.loss.outcome_at,
        day_label=lambda day: short_day(day, locale),
        markers=markers,
    )


@router.get("/accounts/{account_id}/postmortem", response_class=HTMLResponse)
async def post_mortem_page(request: Request, account_id: str, locale: str | None = None) -> Response:
    principal = await page_principal(request)
    if principal is None:
        return to_login(locale)
    language = pick_locale(locale, request.headers.get("accept-language"))
    not_found = message(
        request,
        language,
        404,
        translate(language, "Not found"),
        translate(language, "No loss is recorded for this account."),
        framed=False,
    )
    async with q.request_db(request).transaction() as conn:
        loss = await pm.last_loss(conn, account_id)
        if loss is None or not principal.sees_owner(loss.owner_kam_id):
            return not_found
        found = await pm.account_post_mortem(conn, loss, request.app.state.scoring, request.app.state.alert_rules)
        names = {row["kam_id"]: row["name"] for row in await conn.fetch("SELECT kam_id, name FROM kams")}
    story = found.story
    signals = [
        {
            "at": s["at"],
            "kind": words.signal_kind(s["type"], language),
            "text": words.event_sentence(s["type"], pm.event_data(s["payload"]), language),
        }
        for s in found.signals
    ]
    context: dict[str, Any] = {
        "locale": language,
        "params": {},
        "loss": loss,
        "lost_arr": None
        if loss.arr_before is None
        else max(Decimal(loss.arr_before) - Decimal(loss.arr_after or 0), Decimal(0)),
        "story": story,
        "rules": [{"label": rule_name(r.rule, language), "r": r} for r in story.rules],
        "names": names,
        "first_fired": min((r.fired_at for r in story.rules if r.fired_at is not None), default=None),
        "silent": [rule_name(rule, language) for rule in story.silent],
        "signals": signals,
        "chart": replay_chart(found, request.app.state.levels, language),
        "window_days": pm.WINDOW_DAYS,
    }
    return render(request, "postmortem.html", context)
