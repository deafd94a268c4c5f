"""The account review page (``/accounts/{id}``): what a KAM brings to an account review or prints for a QBR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from babel.dates import format_skeleton
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.phrasing import Reader, rule_name, step_text
from alerts.repository import lifecycle
from health_engine.access import Principal, principal_for_session
from health_engine.config import Levels
from schemas.i18n import format_number, translate
from schemas.vocabulary import COMPONENTS, Locale
from services.api import queries as q
from services.api.auth import SESSION_COOKIE
from services.api.guidance import alert_headlines, is_lost, next_steps, strongest_drivers
from services.api.pages import words
from services.api.pages.charts import TimeChart, risk_chart, usage_chart
from services.api.pages.render import message, render
from services.api.problems import Problem
from services.api.v1 import AlertId, act_on_alert, rate_alert
from services.api.views import health_document, pick_locale
from services.platform.currency import ExchangeRates

router = APIRouter(include_in_schema=False)


HISTORY_DAYS = 180
SIGNAL_DAYS = 180
USAGE_DAYS = 90
BASELINE_DAYS = 56  # the scorer's 8-week baseline
NEW_CONTACT_DAYS = 90


async def page_principal(request: Request) -> Principal | None:
    """The reader signed in by the session cookie, if any and allowed to read."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or "\x00" in token:
        return None
    async with q.request_db(request).unit_of_work() as conn:
        principal = await principal_for_session(conn, token, now=q.request_now(request))
    return principal if principal is not None and principal.can_read() else None


def to_login(locale: str | None = None) -> RedirectResponse:
    return RedirectResponse("/login" + (f"?locale={locale}" if locale in ("en", "fr") else ""), status_code=303)


def alert_view(alert: Mapping[Any, Any], headline: str | None, steps: Sequence[str], locale: Locale) -> dict[str, Any]:
    """An alert document with what the pages add: its headline in words of now (as its notifications word it),
    the rule's name and the playbook's next steps."""
    title = headline or alert["title"]
    return {**alert, "title": title, "rule_label": rule_name(str(alert["rule"]), locale), "next_steps": list(steps)}


def converted_arr(rates: ExchangeRates, arr: Any, currency: str) -> Decimal | None:
    """The ARR in the reporting currency when it is in another one and a rate converts it, else None."""
    if currency == rates.reporting:
        return None
    return rates.convert(Decimal(arr), currency)


def level_cut_offs(levels: Levels, locale: Locale) -> list[tuple[str, float, str]]:
    return [
        ("low", 0.0, words.level_word("low", locale)),
        ("medium", levels.medium, words.level_word("medium", locale)),
        ("high", levels.high, words.level_word("high", locale)),
        ("critical", levels.critical, words.level_word("critical", locale)),
    ]


def history_chart(
    rows: Sequence[Mapping[Any, Any]],
    markers: Sequence[tuple[datetime, str, str]],
    levels: Levels,
    locale: Locale,
    start: datetime,
    end: datetime,
) -> TimeChart | None:
    components = [
        (name, [(r["as_of"], float((r["components"] or {}).get(name, 0.0))) for r in rows], f"component c-{name}")
        for name in COMPONENTS
    ]
    return risk_chart(
        [(r["as_of"], float(r["risk"])) for r in rows],
        level_cut_offs(levels, locale),
        start=start,
        end=end,
        day_label=lambda day: short_day(day, locale),
        markers=markers,
        components=components,
    )


def short_day(day: date, locale: Locale) -> str:
    """``Nov 3`` / ``3 nov.``: a tick label."""
    return format_skeleton("MMMd", day, locale=locale)


def usage_view(rows: Sequence[Mapping[Any, Any]], first: date, last: date, locale: Locale) -> dict[str, Any]:
    """Daily usage (missing days are 0) against its trailing 8-week average, and weekly totals for the timeline."""
    by_day = {r["day"]: float(r["quantity"]) for r in rows}
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    series = [(day, by_day.get(day, 0.0)) for day in days]
    shown_from = last - timedelta(days=USAGE_DAYS - 1)
    baseline = []
    for day in days:
        if day < shown_from:
            continue
        window = [by_day.get(day - timedelta(days=n), 0.0) for n in range(1, BASELINE_DAYS + 1)]
        baseline.append((day, sum(window) / BASELINE_DAYS))
    shown = [(day, value) for day, value in series if day >= shown_from]
    chart = usage_chart(
        shown,
        baseline,
        day_label=lambda day: short_day(day, locale),
        value_label=lambda value: format_number(value, locale, digits=0),
    )
    last_week = sum(value for day, value in series if day > last - timedelta(days=7))
    before = [by_day.get(last - timedelta(days=n), 0.0) for n in range(7, 7 + BASELINE_DAYS)]
    weekly_baseline = sum(before) / BASELINE_DAYS * 7
    change = (last_week / weekly_baseline - 1) if weekly_baseline else None
    return {"chart": chart, "last_week": last_week, "weekly_baseline": weekly_baseline, "change": change}


def weekly_usage_lines(
    rows: Sequence[Mapping[Any, Any]], since: date, last: date, locale: Locale
) -> list[dict[str, Any]]:
    """A timeline line for the weeks of usage (Monday to Sunday) worth reading: the last one, and those that moved
    by a quarter or more on the week before (steady weeks say nothing)."""
    by_week: dict[date, float] = {}
    for r in rows:
        monday = r["day"] - timedelta(days=r["day"].weekday())
        by_week[monday] = by_week.get(monday, 0.0) + float(r["quantity"])
    lines: list[dict[str, Any]] = []
    if not by_week:
        return lines
    monday = max(since - timedelta(days=since.weekday()), min(by_week))
    while monday <= last:
        total = by_week.get(monday, 0.0)
        previous = by_week.get(monday - timedelta(days=7))
        moved = previous is not None and abs(total - previous) >= 0.25 * max(previous, 1.0)
        if not moved and monday + timedelta(days=7) <= last:
            monday += timedelta(days=7)
            continue
        text = translate(locale, "Product usage this week: {total}", total=format_number(total, locale, digits=0))
        if previous:
            change = format_number((total / previous - 1) * 100, locale, digits=0, signed=True)
            text += " " + translate(locale, "({change} % on the week before)", change=change)
        at = datetime.combine(min(monday + timedelta(days=6), last), time(23, 59), tzinfo=UTC)
        lines.append({"at": at, "kind": words.signal_kind("kamwatch.usage.v1", locale), "css": "usage", "text": text})
        monday += timedelta(days=7)
    return lines


def signal_line(row: Mapping[Any, Any], locale: Locale, names: Mapping[str, str]) -> dict[str, Any]:
    """One timeline row of an account's signals, worded in the reader's language (``names``: KAMs by id)."""
    kind, data = row["kind"], dict(row["data"] or {})
    for field in ("actor", "created_by"):
        if data.get(field) in names:
            data[field] = names[data[field]]
    if kind == "event":
        payload = data.get("data") if isinstance(data.get("data"), dict) else {}
        text = words.event_sentence(row["type"], payload or {}, locale)
        return {"at": row["at"], "kind": words.signal_kind(row["type"], locale), "css": "event", "text": text}
    title = data.get("title_fr" if locale == "fr" else "title_en") or rule_name(str(data.get("rule", "")), locale)
    if kind == "alert":
        text = translate(locale, "Alert: {title}", title=title)
        severity = words.severity_word(str(data.get("severity")), locale)
        return {
            "at": row["at"],
            "kind": words.signal_kind("alert", locale),
            "css": "alert",
            "text": f"{text} ({severity})",
        }
    if kind == "alert_transition":
        fields = {"title": title, "who": data.get("actor") or "", "via": words.via_word(str(data.get("via")), locale)}
        note = str(data.get("note") or "")
        if data.get("from_state") == data.get("to_state") and note.startswith("escalated to "):
            # the engine's escalation of an unacknowledged critical alert to the KAM's manager
            manager = note.removeprefix("escalated to ")
            manager = names.get(manager, manager)
            text = translate(locale, "Alert “{title}” escalated to the manager ({who})", title=title, who=manager)
        else:
            sentences = {
                "acknowledged": translate(locale, "{who} acknowledged the alert “{title}” via {via}", **fields),
                "resolved": translate(locale, "Alert “{title}” resolved by {who} via {via}", **fields),
                "firing": translate(locale, "Alert “{title}” open again", **fields),
            }
            text = sentences.get(str(data.get("to_state")), str(data.get("to_state")))
            if note and data.get("via") != "engine":  # a person's own words
                text += f" — {note}"
        return {"at": row["at"], "kind": words.signal_kind("alert_transition", locale), "css": "alert", "text": text}
    if kind == "override":
        text = translate(
            locale,
            "{who} pinned the level at {level}: {reason}",
            who=data.get("created_by") or "",
            level=words.level_word(str(data.get("level")), locale),
            reason=data.get("reason") or "",
        )
        return {"at": row["at"], "kind": words.signal_kind("override", locale), "css": "override", "text": text}
    text = translate(
        locale,
        "Risk level {previous} → {level} ({risk})",
        previous=words.level_word(data.get("previous"), locale),
        level=words.level_word(data.get("level"), locale),
        risk=format_number(float(data.get("risk") or 0), locale),
    )
    return {"at": row["at"], "kind": words.signal_kind("level_change", locale), "css": "level", "text": text}


def power_map(rows: Sequence[Mapping[Any, Any]], now: datetime) -> list[dict[str, Any]]:
    """Contacts with what a KAM asks of each: gone (when), new (joined lately), met since they joined."""
    people = []
    for r in rows:
        people.append(
            {
                **r,
                "gone": not r["active"],
                "new": bool(r["active"] and r["added_at"] and r["added_at"] >= now - timedelta(days=NEW_CONTACT_DAYS)),
                "met": r["last_met_at"] is not None,
            }
        )
    decision = {"executive_sponsor": 0, "decision_maker": 1, "champion": 2}
    return sorted(people, key=lambda p: (p["gone"], decision.get(p["role"], 9), p["name"] or p["contact_id"]))


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(request: Request, account_id: str, locale: str | None = None) -> Response:
    principal = await page_principal(request)
    if principal is None:
        return to_login(locale)
    language = pick_locale(locale, request.headers.get("accept-language"))
    now = q.request_now(request)
    row = await q.account_health_row(request.app.state.read_pool, account_id, now)
    if row is None or not principal.sees_owner(row["owner_kam_id"]):
        return message(
            request,
            language,
            404,
            translate(language, "Not found"),
            translate(language, "No such account."),
            framed=False,
        )
    health = health_document(row, language)
    reader = Reader(language, "UTC", now)
    headlines = alert_headlines(row, reader)
    health["drivers"] = [
        {"severity": d.severity, "message": text, "since": d.since}
        for d, text in strongest_drivers(row, reader, limit=6)
    ]
    steps = next_steps(row, request.app.state.playbook)
    health["open_alerts"] = [
        alert_view(
            a, headlines.get(int(a["id"])), [step_text(st, reader) for st, at in steps if at == a["id"]], language
        )
        for a in health["open_alerts"]
    ]
    end = health["as_of"] or now
    start = end - timedelta(days=HISTORY_DAYS)
    last_day = end.astimezone(UTC).date()
    first_usage_day = last_day - timedelta(days=USAGE_DAYS + BASELINE_DAYS)
    async with q.request_db(request).unit_of_work() as conn:
        history = await q.history(conn, account_id, start, end)
        usage = await q.usage_days(conn, account_id, first_usage_day, last_day)
        people = await q.contacts(conn, account_id)
        found = await q.signals(conn, account_id, end - timedelta(days=SIGNAL_DAYS), end)
        names = await q.kam_names(conn)
    events = [signal_line(r, language, names) for r in found]
    markers = [
        (r["at"], r["kind"].split("_")[0], line["text"])
        for r, line in zip(found, events, strict=True)
        if r["kind"] in ("alert", "level_change")
    ]
    lines = events + weekly_usage_lines(
        [r for r in usage if r["day"] > last_day - timedelta(days=SIGNAL_DAYS)],
        max(last_day - timedelta(days=USAGE_DAYS), first_usage_day),
        last_day,
        language,
    )
    lines.sort(key=lambda line: line["at"], reverse=True)
    outcome = next((r for r in found if r["kind"] == "event" and r["type"] == "kamwatch.outcome.v1"), None)
    rates: ExchangeRates = request.app.state.rates
    renewal = health["renewal_date"]
    context = {
        "locale": language,
        "params": {},
        "h": health,
        "timezone": "UTC",
        "converted_arr": converted_arr(rates, health["arr"], health["currency"]),
        "reporting_currency": rates.reporting,
        "renewal_in": (renewal - last_day).days if renewal else None,
        "history": history_chart(
            history,
            markers,
            request.app.state.levels,
            language,
            max(start, history[0]["as_of"]) if history else start,
            end,
        ),
        "component_trend": component_trend(history),
        "usage": usage_view(usage, first_usage_day, last_day, language),
        "people": power_map(people, end),
        "timeline": lines,
        "lost": is_lost(row)
        or (outcome is not None and ((outcome["data"] or {}).get("data") or {}).get("outcome") == "churned"),
        "account_steps": [step_text(st, reader) for st, at in steps if at is None],
        "base": f"/accounts/{quote(account_id, safe='')}",
    }
    return render(request, "account.html", context)


def component_trend(rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """Each component now, 30 days before, and its last 30 days as a tiny series (0-100)."""
    if not rows:
        return []
    last = rows[-1]
    month_ago = next((r for r in reversed(rows) if r["as_of"] <= last["as_of"] - timedelta(days=30)), rows[0])
    recent = [r for r in rows if r["as_of"] > last["as_of"] - timedelta(days=60)]
    found = []
    for name in COMPONENTS:
        now = float((last["components"] or {}).get(name, 0.0))
        before = float((month_ago["components"] or {}).get(name, 0.0))
        values = [float((r["components"] or {}).get(name, 0.0)) for r in recent]
        step = 100 / max(len(values) - 1, 1)
        path = "M" + " L".join(f"{i * step:.1f},{30 - v * 0.3:.1f}" for i, v in enumerate(values))
        found.append({"name": name, "now": now, "before": before, "change": now - before, "path": path})
    return found


async def _act(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    locale: str | None,
    minutes: int | None,
    verdict: lifecycle.Verdict | None,
) -> Response:
    principal = await page_principal(request)
    if principal is None:
        return to_login(locale)
    now = q.request_now(request)
    row = await q.account_health_row(request.app.state.read_pool, account_id, now)
    if row is None or not principal.sees_owner(row["owner_kam_id"]):
        raise q.not_found()
    if not any(a["id"] == alert_id for a in row["open_alerts"]):
        raise q.not_found("alert")
    until = now + timedelta(minutes=minutes) if minutes else None
    db = q.request_db(request)
    try:
        if verdict is None:
            await act_on_alert(db, principal, alert_id, "acknowledged", at=now, via="page", snoozed_until=until)
        else:
            await rate_alert(db, principal, alert_id, verdict, at=now, via="page")
    except Problem as problem:
        if problem.status != 409:  # resolved meanwhile: the reloaded page shows it gone
            raise
    query = urlencode({"locale": locale} if locale in ("en", "fr") else {})
    return RedirectResponse(f"/accounts/{quote(account_id, safe='')}?{query}#alerts", status_code=303)


@router.post("/accounts/{account_id}/alerts/{alert_id}/ack")
async def page_ack(
    request: Request, account_id: str, alert_id: AlertId, locale: Annotated[str | None, Form()] = None
) -> Response:
    return await _act(request, account_id, alert_id, locale, None, None)


@router.post("/accounts/{account_id}/alerts/{alert_id}/snooze")
async def page_snooze(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    locale: Annotated[str | None, Form()] = None,
    minutes: Annotated[int, Form(ge=1, le=90 * 24 * 60)] = 10080,
) -> Response:
    return await _act(request, account_id, alert_id, locale, minutes, None)


@router.post("/accounts/{account_id}/alerts/{alert_id}/feedback")
async def page_feedback(
    request: Request,
    account_id: str,
    alert_id: AlertId,
    verdict: Annotated[lifecycle.Verdict, Form()],
    locale: Annotated[str | None, Form()] = None,
) -> Response:
    return await _act(request, account_id, alert_id, locale, None, verdict)
