"""The portfolio page (``/``): for a KAM their accounts, for a manager their team's; sums in the reporting
currency, the period's outcomes (net revenue retention, lost ARR) per KAM and tier, the accounts by risk."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from schemas.vocabulary import LEVELS, TIERS
from services.api import queries as q
from services.api.pages.render import render
from services.api.pages.review import converted_arr, page_principal, to_login
from services.api.problems import Problem
from services.api.views import account_summary, pick_locale, portfolio_document
from services.platform.currency import ExchangeRates

router = APIRouter(include_in_schema=False)

SORTS: tuple[q.AccountSort, ...] = ("risk", "arr_at_risk", "change")


def _day(value: str | None) -> date | None:
    if value and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


@router.get("/", response_class=HTMLResponse)
async def portfolio_page(
    request: Request,
    level: str | None = None,
    tier: str | None = None,
    owner: str | None = None,
    sort: str = "risk",
    cursor: str | None = None,
    locale: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    principal = await page_principal(request)
    if principal is None:
        return to_login(locale)
    language = pick_locale(locale, request.headers.get("accept-language"))
    # `from` and `to` are Python keywords: read them from the query itself.
    start, end = request.query_params.get("from"), request.query_params.get("to")
    chosen_sort: q.AccountSort = next((s for s in SORTS if s == sort), "risk")
    now = q.request_now(request)
    stop = _day(end) or now.date()
    begin = _day(start) or stop - timedelta(days=365)
    if begin > stop:
        begin, stop = stop, begin
    rates: ExchangeRates = request.app.state.rates
    try:
        async with q.request_db(request).unit_of_work() as conn:
            rows, next_cursor = await q.list_accounts(
                conn,
                principal,
                owner=owner or None,
                levels=[level] if level in LEVELS else [],
                tiers=[tier] if tier in TIERS else [],
                segment=None,
                renewal_from=None,
                renewal_to=None,
                sort=chosen_sort,
                limit=50,
                cursor=cursor or None,
            )
            groups = await q.portfolio_groups(conn, principal)
            outcomes = await q.retention(
                conn,
                principal,
                datetime.combine(begin, time.min, now.tzinfo),
                datetime.combine(stop + timedelta(days=1), time.min, now.tzinfo),
            )
    except Problem:
        rows, next_cursor = [], None  # a cursor from elsewhere: the first page again
        async with q.request_db(request).unit_of_work() as conn:
            groups = await q.portfolio_groups(conn, principal)
            outcomes = []
    accounts = []
    for row in rows:
        found = account_summary(row)
        found["converted"] = converted_arr(rates, Decimal(found["arr"]), found["currency"])
        accounts.append(found)
    filters = {
        "level": level if level in LEVELS else "",
        "tier": tier if tier in TIERS else "",
        "owner": owner or "",
        "sort": chosen_sort,
        "from": start or "",
        "to": end or "",
    }
    context = {
        "locale": language,
        "params": {k: v for k, v in filters.items() if v},
        "summary": portfolio_document(groups, outcomes, begin, stop, rates),
        "period": {"start": begin, "end": stop},
        "accounts": accounts,
        "filters": filters,
        "next_cursor": next_cursor,
    }
    return render(request, "portfolio.html", context)
