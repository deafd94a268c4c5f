"""The /v1 read and action endpoints for CRMs, widgets and pages (ingestion stays in services/api/app.py)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BeforeValidator

from alerts.phrasing import rule_name
from alerts.repository import lifecycle, reports
from alerts.repository import queue as outbox
from health_engine import overrides
from health_engine.access import Principal, mint, signing_secret
from schemas.vocabulary import Level, Locale, Severity
from services.api import queries as q
from services.api.auth import may_act, reader, require
from services.api.guidance import lifecycle_document, next_steps_document
from services.api.models import (
    AccountHealthOut,
    AccountPage,
    AlertOut,
    AlertPage,
    FeedbackIn,
    FeedbackOut,
    HistoryOut,
    LossesOut,
    NoteIn,
    NotificationRetryIn,
    NotificationRetryOut,
    OverrideIn,
    OverrideOut,
    PortfolioSummary,
    PostMortemOut,
    PrecisionOut,
    SnoozeIn,
    TimelinePage,
    UnsentNotificationPage,
    UnsentStatus,
    WidgetTokenIn,
    WidgetTokenOut,
)
from services.api.problems import Problem
from services.api.views import (
    account_summary,
    alert_document,
    encode,
    etag,
    etag_matches,
    group_document,
    health_document,
    history_point,
    pick_locale,
    portfolio_document,
    timeline_item,
)
from services.flows import postmortem as pm
from services.platform.database import Database


async def reject_nul(request: Request) -> None:
    """PostgreSQL text cannot hold NUL: refuse it in the path and query up front (422), not as a 500."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in str(value):
            raise Problem(422, "Unprocessable Content", f"{name}: must not contain NUL characters", field=name)


router = APIRouter(prefix="/v1", dependencies=[Depends(reject_nul)])


def problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: problem_doc("The body is not JSON (or not UTF-8)"),
    401: problem_doc("Missing, unknown, revoked or expired API key"),
    403: problem_doc("The key lacks the scope"),
    422: problem_doc("Invalid parameter or body; `field` names it"),
    429: {
        **problem_doc("Too many failed authentications from this address (KAMWATCH_AUTH_FAILURE_LIMIT)"),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    403: problem_doc(
        "The key lacks the scope, or may read but not act on this account (acting needs write:all, or a key "
        "bound to the account's owner KAM or one of their managers)"
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem_doc("Unknown, or not visible to this key")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: problem_doc("The alert is resolved")}

Reader = Annotated[Principal, Depends(reader())]
LocaleParam = Annotated[Locale | None, Query(description="Language of messages (else Accept-Language, else en).")]


def _iso_date(value: object) -> object:
    # Only YYYY-MM-DD: pydantic would also take a number as a Unix time, which the schema does not allow.
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id.")]


def _locale(request: Request, locale: str | None) -> Locale:
    return pick_locale(locale, request.headers.get("accept-language"))


HEALTH_PATH = "/v1/accounts/{account_id}/health"


@router.get(
    HEALTH_PATH.removeprefix("/v1"),
    response_model=AccountHealthOut,
    tags=["accounts"],
    summary="Health of one account (risk, level, drivers, trend, open alerts)",
    responses={**AUTH_ERRORS, **NOT_FOUND, 304: {"description": "Not modified (If-None-Match matched the ETag)"}},
)
async def get_health(request: Request, account_id: str, principal: Reader, locale: LocaleParam = None) -> Response:
    """The account's risk (0-100) and level, its components and drivers (worded in the caller's language), the 7-
    and 30-day trend, renewal, ARR, tier, owner, active override and open alerts; for a parent account its group
    roll-up. Revalidate with If-None-Match: 304 while nothing changed."""
    return await health_response(request, account_id, principal, locale)


async def health_response(request: Request, account_id: str, principal: Principal, locale: Locale | None) -> Response:
    """The health document of a visible account (or its 304), else the 404 problem. Shared by the route and
    its fast path (services/api/fastpath.py), which answers the plain polling requests without the framework."""
    row = await q.account_health_row(request.app.state.read_pool, account_id, q.request_now(request))
    if row is None or not principal.sees_owner(row["owner_kam_id"]):
        raise q.not_found()
    language = _locale(request, locale)
    document = health_document(row, language)
    document["group"] = group_document(row, request.app.state.levels, principal.sees_owner)
    document["lifecycle"] = lifecycle_document(row)
    document["next_steps"] = next_steps_document(row, request.app.state.playbook, language)
    body = encode(document)
    tag = etag(body)
    # Polling widgets revalidate every time and get a body-less 304 until the health changes.
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Authorization, X-API-Key, Accept-Language"}
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/accounts",
    response_model=AccountPage,
    tags=["accounts"],
    summary="Accounts visible to the caller, filtered and sorted, by pages",
    responses=AUTH_ERRORS,
)
async def get_accounts(
    request: Request,
    principal: Reader,
    owner: Annotated[str | None, Query(description="Owner KAM id.")] = None,
    level: Annotated[list[Level] | None, Query(description="Repeat for several.")] = None,
    tier: Annotated[list[str] | None, Query()] = None,
    segment: str | None = None,
    renewal_from: Annotated[IsoDate | None, Query(description="Renewal on or after this day.")] = None,
    renewal_to: Annotated[IsoDate | None, Query(description="Renewal on or before this day.")] = None,
    sort: Annotated[q.AccountSort, Query(description="Descending: highest first.")] = "risk",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The accounts the key may see, filtered by owner, level, tier, segment and renewal window, sorted highest
    first (risk, ARR at risk or 7-day change), 50 a page by default: pass `next_cursor` back as `cursor`."""
    async with q.request_db(request).unit_of_work() as conn:
        rows, next_cursor = await q.list_accounts(
            conn,
            principal,
            owner=owner,
            levels=level or [],
            tiers=tier or [],
            segment=segment,
            renewal_from=renewal_from,
            renewal_to=renewal_to,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    return {"items": [account_summary(r) for r in rows], "next_cursor": next_cursor}


def _bound(value: date | datetime | None, default: datetime, *, end: bool) -> datetime:
    if value is None:
        return default
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise Problem(422, "Unprocessable Content", "give a time zone offset", field="to" if end else "from")
        return value
    return datetime.combine(value, time.max if end else time.min, tzinfo=default.tzinfo)


@router.get(
    "/accounts/{account_id}/history",
    response_model=HistoryOut,
    tags=["accounts"],
    summary="Daily series of score, level and components",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
async def get_history(
    request: Request,
    account_id: str,
    principal: Reader,
    start: Annotated[IsoDate | None, Query(alias="from", description="First day (default: `to` - 90 days).")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Last day, included (default: today).")] = None,
) -> dict[str, Any]:
    """The last score of each UTC day between `from` and `to` (90 days by default): risk, level, each component's
    risk and the driver codes."""
    now = q.request_now(request)
    stop = _bound(end, now, end=True)
    begin = _bound(start, stop - timedelta(days=90), end=False)
    async with q.request_db(request).unit_of_work() as conn:
        await q.visible_account(conn, principal, account_id)
        rows = await q.history(conn, account_id, begin, stop)
    return {"account_id": account_id, "points": [history_point(r) for r in rows]}


@router.get(
    "/accounts/{account_id}/timeline",
    response_model=TimelinePage,
    tags=["accounts"],
    summary="Events, alerts and level changes of an account, newest first",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
async def get_timeline(
    request: Request,
    account_id: str,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    locale: LocaleParam = None,
) -> dict[str, Any]:
    """Everything that happened to the account, newest first: raw events, alerts fired, their transitions (who, how)
    and level changes, by pages."""
    language = _locale(request, locale)
    async with q.request_db(request).unit_of_work() as conn:
        await q.visible_account(conn, principal, account_id)
        rows, next_cursor = await q.timeline(conn, account_id, limit=limit, cursor=cursor)
    return {
        "account_id": account_id,
        "items": [timeline_item(r, language) for r in rows],
        "next_cursor": next_cursor,
    }


@router.get(
    "/portfolio/summary",
    response_model=PortfolioSummary,
    response_model_by_alias=True,
    tags=["portfolio"],
    summary="Accounts and ARR by level, KAM and tier; ARR at risk; net revenue retention",
    responses=AUTH_ERRORS,
)
async def get_portfolio(
    request: Request,
    principal: Reader,
    start: Annotated[
        IsoDate | None, Query(alias="from", description="Retention period start (default: a year ago).")
    ] = None,
    end: Annotated[
        IsoDate | None, Query(alias="to", description="Retention period end, excluded (default: tomorrow).")
    ] = None,
) -> dict[str, Any]:
    """Accounts and ARR by level, KAM and tier, in each original currency and in the reporting currency
    (KAMWATCH_REPORTING_CURRENCY, with the operator's exchange rates; what no rate converts is kept apart, never
    added); the outcomes of the period: net revenue retention and lost ARR, in all, per KAM and per tier."""
    now = q.request_now(request)
    stop = end or (now.date() + timedelta(days=1))
    begin = start or (stop - timedelta(days=365))
    if begin > stop:
        raise Problem(422, "Unprocessable Content", "from: must not be after to", field="from")
    tz = now.tzinfo
    async with q.request_db(request).unit_of_work() as conn:
        groups = await q.portfolio_groups(conn, principal)
        outcomes = await q.retention(
            conn, principal, datetime.combine(begin, time.min, tz), datetime.combine(stop, time.min, tz)
        )
    return portfolio_document(groups, outcomes, begin, stop, request.app.state.rates)


@router.get("/alerts", response_model=AlertPage, tags=["alerts"], summary="Alerts, newest first", responses=AUTH_ERRORS)
async def get_alerts(
    request: Request,
    principal: Reader,
    state: Annotated[
        list[lifecycle.StoredState] | None, Query(description="Default: the open ones (firing, acknowledged).")
    ] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    account_id: str | None = None,
    rule: str | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    locale: LocaleParam = None,
) -> dict[str, Any]:
    """Alerts on the accounts the key may see, newest first (by default the open ones: firing and acknowledged),
    filtered by state, severity, account, rule and owner."""
    language = _locale(request, locale)
    async with q.request_db(request).unit_of_work() as conn:
        rows, next_cursor = await q.list_alerts(
            conn,
            principal,
            states=state or ["firing", "acknowledged"],
            severities=severity or [],
            account_id=account_id,
            rule=rule,
            owner=owner,
            limit=limit,
            cursor=cursor,
        )
    return {"items": [alert_document(r, language) for r in rows], "next_cursor": next_cursor}


async def _visible_alert(conn: asyncpg.Connection, principal: Principal, alert_id: int, *, act: bool) -> None:
    """404 when the caller may not see the alert; 403 when ``act`` and it may see but not change it."""
    exists, owner = await q.alert_owner(conn, alert_id)
    if not exists or not principal.sees_owner(owner):
        raise q.not_found("alert")
    if act:
        may_act(principal, owner)


async def act_on_alert(
    db: Database,
    principal: Principal,
    alert_id: AlertId,
    to_state: lifecycle.StoredState,
    *,
    at: datetime,
    via: str = "api",
    actor: str | None = None,
    snoozed_until: datetime | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Check visibility, then change the alert's state in one transaction (shared with the widget)."""
    async with db.transaction() as conn:
        await _visible_alert(conn, principal, alert_id, act=True)
        try:
            row = await lifecycle.transition(
                conn,
                alert_id,
                to_state,
                actor=actor or principal.actor,
                via=via,
                at=at,
                snoozed_until=snoozed_until,
                note=note,
            )
        except lifecycle.InvalidTransition as error:
            raise Problem(409, "Conflict", str(error)) from None
    return row


_ALERT_ACTION = {"response_model": AlertOut, "tags": ["alerts"], "responses": {**WRITE_ERRORS, **NOT_FOUND, **CONFLICT}}


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert", **_ALERT_ACTION)  # type: ignore[arg-type]
async def ack_alert(
    request: Request, alert_id: AlertId, principal: Reader, body: NoteIn | None = None, locale: LocaleParam = None
) -> dict[str, Any]:
    """Mark an alert acknowledged (someone is on it): no reminder and no escalation follow. Recorded with who and
    how; an optional note."""
    row = await act_on_alert(
        q.request_db(request),
        principal,
        alert_id,
        "acknowledged",
        at=q.request_now(request),
        note=body.note if body else None,
    )
    return alert_document(row, _locale(request, locale))


@router.post("/alerts/{alert_id}/snooze", summary="Acknowledge an alert until a time", **_ALERT_ACTION)  # type: ignore[arg-type]
async def snooze_alert(
    request: Request, alert_id: AlertId, principal: Reader, body: SnoozeIn, locale: LocaleParam = None
) -> dict[str, Any]:
    """Acknowledge an alert until a time (`until`, or `minutes` from now); it comes back if its condition still
    holds then."""
    now = q.request_now(request)
    if body.until is None and body.minutes is None:
        raise Problem(422, "Unprocessable Content", "until: give `until` or `minutes`", field="until")
    until = body.until or now + timedelta(minutes=body.minutes or 0)
    if until <= now:
        raise Problem(422, "Unprocessable Content", "until: must be in the future", field="until")
    row = await act_on_alert(
        q.request_db(request), principal, alert_id, "acknowledged", at=now, snoozed_until=until, note=body.note
    )
    return alert_document(row, _locale(request, locale))


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert by hand", **_ALERT_ACTION)  # type: ignore[arg-type]
async def resolve_alert(
    request: Request, alert_id: AlertId, principal: Reader, body: NoteIn | None = None, locale: LocaleParam = None
) -> dict[str, Any]:
    """Close an alert by hand; if its condition still holds, the next evaluation opens a new one."""
    row = await act_on_alert(
        q.request_db(request),
        principal,
        alert_id,
        "resolved",
        at=q.request_now(request),
        note=body.note if body else None,
    )
    return alert_document(row, _locale(request, locale))


@router.post(
    "/alerts/{alert_id}/feedback",
    response_model=FeedbackOut,
    status_code=201,
    tags=["alerts"],
    summary="Say whether an alert was useful",
    responses={**WRITE_ERRORS, **NOT_FOUND},
)
async def alert_feedback(request: Request, alert_id: AlertId, principal: Reader, body: FeedbackIn) -> dict[str, Any]:
    """Say whether an alert was useful or a false alarm; the per-rule precision (`kamwatch alerts stats`, metric
    kamwatch_alert_feedback_precision) comes from these."""
    feedback_id = await rate_alert(
        q.request_db(request), principal, alert_id, body.verdict, at=q.request_now(request), comment=body.comment
    )
    return {"id": feedback_id, "alert_id": alert_id, "verdict": body.verdict}


async def rate_alert(
    db: Database,
    principal: Principal,
    alert_id: int,
    verdict: lifecycle.Verdict,
    *,
    at: datetime,
    via: lifecycle.Via = "api",
    comment: str | None = None,
) -> int:
    """Check the caller may act on the alert, then record their feedback (shared with the account page)."""
    async with db.transaction() as conn:
        await _visible_alert(conn, principal, alert_id, act=True)
        return await lifecycle.record_feedback(
            conn, alert_id, verdict, actor=principal.actor, at=at, comment=comment, via=via
        )


@router.get(
    "/alerts/precision",
    response_model=PrecisionOut,
    tags=["alerts"],
    summary="Per-rule precision from the KAMs' feedback (Slack, email, widget, API, CLI)",
    responses=AUTH_ERRORS,
)
async def alert_precision(request: Request, principal: Reader) -> dict[str, Any]:
    """For each rule, over the caller's accounts: the alerts it opened, how many a KAM judged (useful or false
    alarm, each alert counted once by its newest verdict) and the share judged useful."""
    async with q.request_db(request).transaction() as conn:
        rules = await reports.feedback_by_rule(conn, principal.kam_ids)
    return {"rules": [r.document() for r in rules]}


@router.post(
    "/accounts/{account_id}/override",
    response_model=OverrideOut,
    status_code=201,
    tags=["accounts"],
    summary="Pin an account's level for a while (replaces the active pin)",
    responses={**WRITE_ERRORS, **NOT_FOUND},
)
async def set_override(request: Request, account_id: str, principal: Reader, body: OverrideIn) -> dict[str, Any]:
    """Pin the account's level with a reason until a time (`expires_at`, or `hours`, 72 by default): the pinned
    level is shown with who, why and until when; every override is kept."""
    now = q.request_now(request)
    expires = body.expires_at or now + timedelta(hours=body.hours or 72)
    if expires <= now:
        raise Problem(422, "Unprocessable Content", "expires_at: must be in the future", field="expires_at")
    async with q.request_db(request).unit_of_work() as conn:
        account = await q.visible_account(conn, principal, account_id)
        may_act(principal, account["owner_kam_id"])
        row = await overrides.set_override(
            conn, account_id, level=body.level, reason=body.reason, actor=principal.actor, now=now, expires_at=expires
        )
    return dict(row)


@router.delete(
    "/accounts/{account_id}/override",
    status_code=204,
    tags=["accounts"],
    summary="Lift the active level pin",
    responses={**WRITE_ERRORS, 404: problem_doc("Unknown account, not visible, or no active override")},
)
async def clear_override(request: Request, account_id: str, principal: Reader) -> Response:
    """Lift the account's active level pin before it expires."""
    async with q.request_db(request).unit_of_work() as conn:
        account = await q.visible_account(conn, principal, account_id)
        may_act(principal, account["owner_kam_id"])
        if not await overrides.clear_override(conn, account_id, actor=principal.actor, now=q.request_now(request)):
            raise q.not_found("active override")
    return Response(status_code=204)


async def widget_secret(request: Request) -> bytes:
    """The signing key, read once per process (settings, or the one generated in the database)."""
    cached: bytes | None = getattr(request.app.state, "widget_secret", None)
    if cached is None:
        async with q.request_db(request).unit_of_work() as conn:
            cached = await signing_secret(
                conn, request.app.state.settings.configured_widget_secret, now=q.request_now(request)
            )
        request.app.state.widget_secret = cached
    return cached


@router.post(
    "/widget-tokens",
    response_model=WidgetTokenOut,
    status_code=201,
    tags=["widget"],
    summary="Mint a short-lived token for embedding one account's widget",
    description="The token ends at its expiry, when the key that minted it is revoked, or when the account "
    "changes owner. Its holder can acknowledge and snooze the account's alerts: minting needs the right to act on "
    "the account.",
    responses={**WRITE_ERRORS, **NOT_FOUND},
)
async def create_widget_token(request: Request, principal: Reader, body: WidgetTokenIn) -> dict[str, Any]:
    """A signed token bound to one account (and optionally to the KAM acting through it), valid `ttl_seconds`, and
    the widget URL to embed in a CRM iframe."""
    if body.kam_id and principal.kam_ids is not None and body.kam_id not in principal.kam_ids:
        raise Problem(403, "Forbidden", "kam_id: this key cannot act for that KAM", field="kam_id")
    async with q.request_db(request).unit_of_work() as conn:
        account = await q.visible_account(conn, principal, body.account_id)
    may_act(principal, account["owner_kam_id"])
    kam_id = body.kam_id or principal.kam_id
    expires = (q.request_now(request) + timedelta(seconds=body.ttl_seconds)).replace(microsecond=0)
    token = mint(
        await widget_secret(request),
        body.account_id,
        kam_id,
        expires,
        key_id=principal.key_id,
        owner_kam_id=account["owner_kam_id"],
    )
    base = request.app.state.settings.public_url.rstrip("/")
    url = f"{base}/widget/accounts/{quote(body.account_id, safe='')}?token={token}"
    return {"token": token, "account_id": body.account_id, "kam_id": kam_id, "expires_at": expires, "url": url}


@router.get(
    "/accounts/{account_id}/postmortem",
    response_model=PostMortemOut,
    tags=["accounts"],
    summary="Post-mortem of a lost account",
    description="For the account's latest churn (else downgrade), over the 180 days before it: the signals in "
    "order, when each rule would have fired (the stored signals replayed at every midnight through the scoring "
    "and today's rules) and when it did, when the KAM was told, acknowledged and acted, the lead time kept or "
    "lost, and the rules of its tier that stayed silent.",
    responses={**AUTH_ERRORS, 404: problem_doc("Unknown, not visible to this key, or never lost")},
)
async def get_postmortem(
    request: Request, account_id: str, principal: Reader, locale: LocaleParam = None
) -> dict[str, Any]:
    language = _locale(request, locale)
    async with q.request_db(request).unit_of_work() as conn:
        await q.visible_account(conn, principal, account_id)
    async with q.request_db(request).transaction() as driver:
        loss = await pm.last_loss(driver, account_id)
        if loss is None:
            raise q.not_found("loss of this account")
        found = await pm.account_post_mortem(driver, loss, request.app.state.scoring, request.app.state.alert_rules)
    return pm.post_mortem_document(found, lambda rule: rule_name(rule, language))


@router.get(
    "/portfolio/losses",
    response_model=LossesOut,
    response_model_by_alias=True,
    tags=["portfolio"],
    summary="Accounts lost in a period, with their lead times",
    description="Churned and downgraded accounts visible to the caller, newest first, each with when its first "
    "alert of the 180 days before fired and when its KAM was first told: the learning loop of post-mortems.",
    responses=AUTH_ERRORS,
)
async def get_losses(
    request: Request,
    principal: Reader,
    start: Annotated[IsoDate | None, Query(alias="from", description="First day (default: 90 days ago).")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Last day, included (default: today).")] = None,
) -> dict[str, Any]:
    now = q.request_now(request)
    stop = end or now.date()
    begin = start or stop - timedelta(days=90)
    if begin > stop:
        raise Problem(422, "Unprocessable Content", "from: must not be after to", field="from")
    return {"from": begin, "to": stop, "items": await losses_with_lead_times(request, principal, begin, stop)}


async def losses_with_lead_times(
    request: Request, principal: Principal, begin: date, stop: date
) -> list[dict[str, Any]]:
    """The losses of the period the caller may see, with when the first alert fired and the KAM was told."""
    tz = q.request_now(request).tzinfo
    kam_ids = None if principal.kam_ids is None else sorted(principal.kam_ids)
    async with q.request_db(request).transaction() as conn:
        found = await pm.losses(
            conn,
            datetime.combine(begin, time.min, tz),
            datetime.combine(stop + timedelta(days=1), time.min, tz),
            kam_ids=kam_ids,
        )
        leads = await pm.lead_times(conn, found)
    items = []
    for loss in found:
        fired, told = leads[f"{loss.account_id}@{loss.outcome_at.isoformat()}"]
        first = told or fired
        lead = None if first is None else round((loss.outcome_at - first).total_seconds() / 86400, 1)
        items.append(
            {"account": pm.loss_document(loss), "first_alert_at": fired, "first_told_at": told, "lead_days": lead}
        )
    return items


Admin = Annotated[Principal, Depends(require("admin"))]


@router.get(
    "/notifications",
    response_model=UnsentNotificationPage,
    tags=["operations"],
    summary="Notifications given up on: failed after the outage window, or undeliverable (admin)",
    responses=AUTH_ERRORS,
)
async def list_unsent_notifications(
    request: Request,
    _: Admin,
    status: Annotated[UnsentStatus | None, Query(description="Only this status (default: both).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Notifications the alerter stopped trying: `failed` when the channel stayed down past the retry window,
    `undeliverable` when the recipient cannot be reached (no address, an address the server refuses). Each
    `kamwatch_notifications_unsent` rise is one of these; retry them once the cause is fixed."""
    async with q.request_db(request).transaction() as conn:
        rows = await outbox.unsent(conn, statuses=(status,) if status else outbox.UNSENT_STATUSES, limit=limit)
    return {"items": [_unsent(r) for r in rows]}


def _unsent(n: outbox.UnsentNotification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "channel": n.channel,
        "recipient": n.recipient,
        "kam_id": n.kam_id,
        "alert_ids": list(n.alert_ids),
        "status": n.status,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "created_at": n.created_at,
        "failing_since": n.failing_since,
    }


@router.post(
    "/notifications/retry",
    response_model=NotificationRetryOut,
    tags=["operations"],
    summary="Send failed or undeliverable notifications again (admin)",
    responses=AUTH_ERRORS,
)
async def retry_notifications(request: Request, _: Admin, body: NotificationRetryIn) -> dict[str, Any]:
    """Queues the given notifications (or every one given up on, optionally of one status) again, due now, with a
    fresh retry window. Answers the ids queued; ids that were not given up on are left as they are."""
    statuses = (body.status,) if body.status else outbox.UNSENT_STATUSES
    async with q.request_db(request).transaction() as conn:
        retried = await outbox.retry(conn, q.request_now(request), ids=body.ids, statuses=statuses)
    return {"retried": retried}
