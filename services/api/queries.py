"""Read queries behind the API and the pages: each endpoint is one or two statements."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import asyncpg
import orjson
from fastapi import Request
from sqlalchemy import (
    ColumnElement,
    Numeric,
    RowMapping,
    and_,
    case,
    cast,
    desc,
    func,
    literal,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from health_engine.access import Principal
from schemas.tables import account_health, account_health_history, account_state, accounts, alerts, kams
from schemas.vocabulary import AT_RISK_LEVELS
from services.api.problems import Problem
from services.platform.database import Database

AccountSort = Literal["risk", "arr_at_risk", "change"]

# The health of one account in a single round trip: profile (ARR and renewal as its outcomes leave them, and
# whether it is lost), score, trend points, active override, open alerts.
# The hottest query: run straight on the driver (prepared once per connection, no BEGIN/COMMIT round trips).
HEALTH_SQL = """
    SELECT a.account_id, a.name, a.owner_kam_id, k.name AS owner_name, a.tier, a.segment,
           st.arr::text AS arr, a.currency, st.renewal_date,
           st.status AS lifecycle, st.outcome, st.outcome_at, st.outcome_reason,
           h.as_of, h.risk::float8 AS risk, h.level, h.level_since, h.components, h.drivers, h.config_version,
           (SELECT x.risk::float8 FROM account_health_history x
             WHERE x.account_id = a.account_id AND x.as_of <= h.as_of - interval '7 days'
             ORDER BY x.as_of DESC LIMIT 1) AS risk_7d,
           (SELECT x.risk::float8 FROM account_health_history x
             WHERE x.account_id = a.account_id AND x.as_of <= h.as_of - interval '30 days'
             ORDER BY x.as_of DESC LIMIT 1) AS risk_30d,
           (SELECT json_build_object('id', o.id, 'level', o.level, 'reason', o.reason, 'created_by', o.created_by,
                                     'created_at', o.created_at, 'expires_at', o.expires_at)
              FROM health_overrides o
             WHERE o.account_id = a.account_id AND o.revoked_at IS NULL
               AND o.created_at <= $2 AND o.expires_at > $2
             ORDER BY o.created_at DESC, o.id DESC LIMIT 1) AS override,
           (SELECT coalesce(json_agg(json_build_object(
                       'id', al.id, 'account_id', al.account_id, 'rule', al.rule, 'subject', al.subject,
                       'severity', al.severity, 'state', al.state, 'title_en', al.title_en, 'title_fr', al.title_fr,
                       'fired_at', al.fired_at, 'updated_at', al.updated_at, 'acknowledged_at', al.acknowledged_at,
                       'snoozed_until', al.snoozed_until, 'resolved_at', al.resolved_at,
                       'clearing_since', al.clearing_since, 'resolves_at', al.resolves_at,
                       'drivers', al.drivers)
                     ORDER BY al.fired_at DESC, al.id DESC), '[]'::json)
              FROM alerts al WHERE al.account_id = a.account_id AND al.state <> 'resolved') AS open_alerts,
           (SELECT json_agg(json_build_object(
                       'account_id', s.account_id, 'name', s.name, 'owner_kam_id', s.owner_kam_id,
                       'arr', s.arr::text, 'risk', sh.risk::float8, 'level', sh.level)
                     ORDER BY s.account_id)
              FROM accounts s JOIN account_health sh ON sh.account_id = s.account_id
             WHERE s.parent_account_id = a.account_id AND s.account_id <> a.account_id) AS subsidiaries
      FROM accounts a
      JOIN account_state st ON st.account_id = a.account_id
      LEFT JOIN account_health h ON h.account_id = a.account_id
      LEFT JOIN kams k ON k.kam_id = a.owner_kam_id
     WHERE a.account_id = $1
"""


def request_db(request: Request) -> Database:
    """The app's database (opened by its lifespan)."""
    db: Database = request.app.state.db
    return db


def request_now(request: Request) -> datetime:
    """Now, by the app's clock (the service edge)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def not_found(what: str = "account") -> Problem:
    return Problem(404, "Not Found", f"no such {what}")


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def bad_cursor() -> Problem:
    return Problem(422, "Unprocessable Content", "cursor: not a cursor from this API", field="cursor")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    """The values of a cursor this API made; anything forged is a 422 (never a value the database refuses)."""
    if len(cursor) > _CURSOR_MAX_CHARS:
        raise bad_cursor()
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise bad_cursor() from None
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, str) and "\0" not in v and _encodable(v) for v in values)
    ):
        raise bad_cursor()
    return values


_CURSOR_MAX_CHARS = 2048


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _decimal(value: str) -> Decimal:
    """A sort key: finite, and of a size sort keys have (risks, amounts), so that numeric takes it."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise bad_cursor() from None
    if not number.is_finite() or (number and not -30 < number.adjusted() < 30):
        raise bad_cursor()
    return number


def cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_cursor() from None
    if moment.tzinfo is None or not 1900 <= moment.year < 2200:
        raise bad_cursor()
    return moment


def cursor_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 2**63):
        raise bad_cursor()
    return int(value)


async def open_read_pool(db: Database, size: int) -> asyncpg.Pool:
    """Plain asyncpg connections for the hottest read: no BEGIN/ROLLBACK nor pre-ping around one statement."""

    async def init(conn: asyncpg.Connection) -> None:
        for type_name in ("json", "jsonb"):
            await conn.set_type_codec(type_name, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog")

    async def reset(conn: asyncpg.Connection) -> None:
        # These connections only ever run the read-only health statement: no session state to undo, so skip
        # asyncpg's default reset (a round trip on every release).
        return None

    dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, init=init, reset=reset)
    return pool


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def account_health_row(pool: asyncpg.Pool, account_id: str, now: datetime) -> Mapping[str, Any] | None:
    """The health row of one account: one prepared statement, outside any transaction (it is consistent alone)."""
    async with pool.acquire() as conn:
        row: Mapping[str, Any] | None = await conn.fetchrow(HEALTH_SQL, account_id, now)
        return row


async def visible_account(conn: AsyncConnection, principal: Principal, account_id: str) -> RowMapping:
    """The account row if it exists and the caller may see it; 404 alike otherwise."""
    row = (await conn.execute(select(accounts).where(accounts.c.account_id == account_id))).mappings().one_or_none()
    if row is None or not principal.sees_owner(row["owner_kam_id"]):
        raise not_found()
    return row


def _risk_days_ago(days: int) -> ColumnElement[Any]:
    past = account_health_history.alias("past")
    return (
        select(past.c.risk)
        .where(
            past.c.account_id == accounts.c.account_id, past.c.as_of <= account_health.c.as_of - timedelta(days=days)
        )
        .order_by(past.c.as_of.desc())
        .limit(1)
        .scalar_subquery()
    )


def _closed() -> ColumnElement[bool]:
    return account_state.c.status == "closed"


def _arr_at_risk() -> ColumnElement[Decimal]:
    # A lost account's ARR is lost, not at risk, whatever its last score.
    return case(
        (and_(~_closed(), account_health.c.level.in_(AT_RISK_LEVELS)), account_state.c.arr),
        else_=literal(Decimal(0), Numeric(20, 4)),
    )


async def list_accounts(
    conn: AsyncConnection,
    principal: Principal,
    *,
    owner: str | None,
    levels: Sequence[str],
    tiers: Sequence[str],
    segment: str | None,
    renewal_from: date | None,
    renewal_to: date | None,
    sort: AccountSort,
    limit: int,
    cursor: str | None,
) -> tuple[list[RowMapping], str | None]:
    change = account_health.c.risk - _risk_days_ago(7)
    # Lost accounts last, as unscored ones: their last score is history, not risk.
    keys: dict[AccountSort, ColumnElement[Any]] = {
        "risk": case((_closed(), -1), else_=func.coalesce(account_health.c.risk, -1)),
        "arr_at_risk": _arr_at_risk(),
        "change": case((_closed(), -1000), else_=func.coalesce(change, -1000)),
    }
    key = keys[sort].label("sort_key")
    conditions: list[ColumnElement[bool]] = [principal.visible(accounts.c.owner_kam_id)]
    if owner:
        conditions.append(accounts.c.owner_kam_id == owner)
    if levels:
        conditions.append(and_(~_closed(), account_health.c.level.in_(levels)))
    if tiers:
        conditions.append(accounts.c.tier.in_(tiers))
    if segment:
        conditions.append(accounts.c.segment == segment)
    if renewal_from:
        conditions.append(account_state.c.renewal_date >= renewal_from)
    if renewal_to:
        conditions.append(account_state.c.renewal_date <= renewal_to)
    if cursor:
        value, after_id = decode_cursor(cursor, 2)
        bound = cast(literal(_decimal(value)), Numeric)
        conditions.append(or_(keys[sort] < bound, and_(keys[sort] == bound, accounts.c.account_id > after_id)))
    query = (
        select(
            accounts.c.account_id,
            accounts.c.name,
            accounts.c.owner_kam_id,
            kams.c.name.label("owner_name"),
            accounts.c.tier,
            accounts.c.segment,
            cast(account_state.c.arr, Numeric).label("arr"),
            accounts.c.currency,
            account_state.c.renewal_date,
            account_state.c.status.label("lifecycle"),
            account_state.c.outcome,
            account_state.c.outcome_at,
            account_state.c.outcome_reason,
            account_health.c.risk,
            account_health.c.level,
            account_health.c.as_of,
            _arr_at_risk().label("arr_at_risk"),
            change.label("change_7d"),
            key,
        )
        .select_from(
            accounts.join(account_state, account_state.c.account_id == accounts.c.account_id)
            .outerjoin(account_health, account_health.c.account_id == accounts.c.account_id)
            .outerjoin(kams, kams.c.kam_id == accounts.c.owner_kam_id)
        )
        .where(*conditions)
        .order_by(desc(key), accounts.c.account_id)
        .limit(limit + 1)
    )
    rows = list((await conn.execute(query)).mappings())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(str(rows[-1]["sort_key"]), rows[-1]["account_id"])
    return rows, next_cursor


async def history(conn: AsyncConnection, account_id: str, start: datetime, end: datetime) -> list[RowMapping]:
    day = func.date(func.timezone("UTC", account_health_history.c.as_of))
    query = (
        select(account_health_history)
        .ext(distinct_on(day))
        .where(
            account_health_history.c.account_id == account_id,
            account_health_history.c.as_of >= start,
            account_health_history.c.as_of <= end,
        )
        .order_by(day, account_health_history.c.as_of.desc())
    )
    return list((await conn.execute(query)).mappings())


# Events, alerts, alert transitions and level changes of one account, newest first, keyset-paginated on
# (at, item id): item ids are unique and sort the same way on every call.
TIMELINE_SQL = text(
    """
    SELECT * FROM (
        SELECT e.event_time AS at, 'event' AS kind, e.type AS type, 'e:' || e.source || ':' || e.event_id AS item_id,
               e.payload::jsonb AS data
          FROM raw_events e WHERE e.subject = :account_id
        UNION ALL
        SELECT al.fired_at, 'alert', 'alert.fired', 'a:' || al.id,
               json_build_object('alert_id', al.id, 'rule', al.rule, 'severity', al.severity, 'state', al.state,
                                 'title_en', al.title_en, 'title_fr', al.title_fr)::jsonb
          FROM alerts al WHERE al.account_id = :account_id
        UNION ALL
        SELECT t.at, 'alert_transition', 'alert.' || t.to_state, 't:' || t.id,
               json_build_object('alert_id', t.alert_id, 'from_state', t.from_state, 'to_state', t.to_state,
                                 'actor', t.actor, 'via', t.via, 'note', t.note, 'rule', al.rule)::jsonb
          FROM alert_transitions t JOIN alerts al ON al.id = t.alert_id
         WHERE al.account_id = :account_id AND t.from_state IS NOT NULL
        UNION ALL
        SELECT l.as_of, 'level_change', 'level.' || l.level, 'l:' || to_char(l.as_of AT TIME ZONE 'UTC',
                                                                             'YYYYMMDDHH24MISSUS'),
               json_build_object('level', l.level, 'previous', l.previous, 'risk', l.risk)::jsonb
          FROM (SELECT as_of, level, risk, lag(level) OVER (ORDER BY as_of) AS previous
                  FROM account_health_history WHERE account_id = :account_id) l
         WHERE l.previous IS DISTINCT FROM l.level
    ) items
    WHERE CAST(:before_at AS timestamptz) IS NULL
       OR (items.at, items.item_id) < (CAST(:before_at AS timestamptz), CAST(:before_id AS text))
    ORDER BY items.at DESC, items.item_id DESC
    LIMIT :limit
    """
)


async def timeline(
    conn: AsyncConnection, account_id: str, *, limit: int, cursor: str | None
) -> tuple[list[RowMapping], str | None]:
    before_at: datetime | None = None
    before_id: str | None = None
    if cursor:
        at_text, before_id = decode_cursor(cursor, 2)
        before_at = cursor_time(at_text)
    params = {"account_id": account_id, "before_at": before_at, "before_id": before_id, "limit": limit + 1}
    rows = list((await conn.execute(TIMELINE_SQL, params)).mappings())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["at"].isoformat(), rows[-1]["item_id"])
    return rows, next_cursor


async def portfolio_groups(conn: AsyncConnection, principal: Principal) -> list[RowMapping]:
    # A closed (churned) account counts as lost, whatever its last score; ARR as its outcomes leave it.
    level = case(
        (account_state.c.status == "closed", literal("lost")), else_=func.coalesce(account_health.c.level, "unscored")
    ).label("level")
    query = (
        select(
            accounts.c.owner_kam_id,
            kams.c.name.label("kam_name"),
            accounts.c.tier,
            level,
            accounts.c.currency,
            func.count().label("accounts"),
            func.sum(account_state.c.arr).label("arr"),
        )
        .select_from(
            accounts.join(account_state, account_state.c.account_id == accounts.c.account_id)
            .outerjoin(account_health, account_health.c.account_id == accounts.c.account_id)
            .outerjoin(kams, kams.c.kam_id == accounts.c.owner_kam_id)
        )
        .where(principal.visible(accounts.c.owner_kam_id))
        .group_by(accounts.c.owner_kam_id, kams.c.name, accounts.c.tier, level, accounts.c.currency)
    )
    return list((await conn.execute(query)).mappings())


RETENTION_SQL = text(
    """
    SELECT o.outcome, a.currency, a.owner_kam_id, k.name AS kam_name, a.tier, count(*) AS n,
           sum(o.arr_before) FILTER (WHERE o.arr_before IS NOT NULL) AS arr_before,
           sum(coalesce(o.arr_after, CASE WHEN o.outcome = 'churned' THEN 0 END))
               FILTER (WHERE o.arr_before IS NOT NULL) AS arr_after
      FROM outcomes o JOIN accounts a ON a.account_id = o.account_id
      LEFT JOIN kams k ON k.kam_id = a.owner_kam_id
     WHERE o.event_time >= :start AND o.event_time < :end
       AND (CAST(:all_kams AS boolean) OR a.owner_kam_id = ANY(CAST(:kam_ids AS text[])))
     GROUP BY o.outcome, a.currency, a.owner_kam_id, k.name, a.tier
    """
)


async def retention(conn: AsyncConnection, principal: Principal, start: datetime, end: datetime) -> list[RowMapping]:
    params = {
        "start": start,
        "end": end,
        "all_kams": principal.kam_ids is None,
        "kam_ids": sorted(principal.kam_ids or ()),
    }
    return list((await conn.execute(RETENTION_SQL, params)).mappings())


async def list_alerts(
    conn: AsyncConnection,
    principal: Principal,
    *,
    states: Sequence[str],
    severities: Sequence[str],
    account_id: str | None,
    rule: str | None,
    owner: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RowMapping], str | None]:
    conditions: list[ColumnElement[bool]] = [principal.visible(accounts.c.owner_kam_id)]
    if states:
        conditions.append(alerts.c.state.in_(states))
    if severities:
        conditions.append(alerts.c.severity.in_(severities))
    if account_id:
        conditions.append(alerts.c.account_id == account_id)
    if rule:
        conditions.append(alerts.c.rule == rule)
    if owner:
        conditions.append(accounts.c.owner_kam_id == owner)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        conditions.append(alerts.c.id < cursor_id(before))
    join = alerts.outerjoin(accounts, accounts.c.account_id == alerts.c.account_id)
    query = select(alerts).select_from(join).where(*conditions).order_by(alerts.c.id.desc()).limit(limit + 1)
    rows = list((await conn.execute(query)).mappings())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(str(rows[-1]["id"]))
    return rows, next_cursor


async def alert_owner(conn: asyncpg.Connection, alert_id: int) -> tuple[bool, str | None]:
    """Whether the alert exists, and the owner of its account (None if the account is unknown)."""
    row = await conn.fetchrow(
        "SELECT al.id, ac.owner_kam_id FROM alerts al LEFT JOIN accounts ac ON ac.account_id = al.account_id"
        " WHERE al.id = $1",
        alert_id,
    )
    return (False, None) if row is None else (True, row["owner_kam_id"])


# --- the account review page ---------------------------------------------------------------------------------

USAGE_SQL = text(
    """
    SELECT day, sum(quantity)::float8 AS quantity, max(active_users) AS users
      FROM usage_daily WHERE account_id = :account_id AND day BETWEEN :first AND :last
     GROUP BY day ORDER BY day
    """
)


async def usage_days(conn: AsyncConnection, account_id: str, first: date, last: date) -> list[RowMapping]:
    """Usage per UTC day (every metric summed) and the most distinct active users of a metric that day."""
    return list((await conn.execute(USAGE_SQL, {"account_id": account_id, "first": first, "last": last})).mappings())


# Contacts with when the account last attended a meeting or review after they arrived (engagement events do not
# name people: "met since they joined" is what the data can say).
CONTACTS_SQL = text(
    """
    SELECT c.contact_id, c.name, c.title, c.role, c.previous_role, c.active, c.added_at, c.left_at,
           (SELECT max(e.event_time) FROM engagements e
             WHERE e.account_id = c.account_id AND e.event_time >= coalesce(c.added_at, '-infinity')
               AND e.kind IN ('meeting', 'business_review') AND e.outcome = 'attended') AS last_met_at
      FROM contacts c WHERE c.account_id = :account_id
     ORDER BY c.active DESC, c.role, c.name NULLS LAST, c.contact_id
    """
)


async def contacts(conn: AsyncConnection, account_id: str) -> list[RowMapping]:
    return list((await conn.execute(CONTACTS_SQL, {"account_id": account_id})).mappings())


# What happened to an account besides product usage (summarised apart): events, alerts and their lifecycle,
# level changes and overrides since a moment, newest first.
SIGNALS_SQL = text(
    """
    SELECT * FROM (
        SELECT e.event_time AS at, 'event' AS kind, e.type AS type, 'e:' || e.source || ':' || e.event_id AS item_id,
               e.payload::jsonb AS data
          FROM raw_events e
         WHERE e.subject = :account_id AND e.type <> 'kamwatch.usage.v1' AND e.event_time >= :since
           AND e.event_time <= :until
        UNION ALL
        SELECT al.fired_at, 'alert', 'alert.fired', 'a:' || al.id,
               json_build_object('alert_id', al.id, 'rule', al.rule, 'severity', al.severity, 'state', al.state,
                                 'title_en', al.title_en, 'title_fr', al.title_fr)::jsonb
          FROM alerts al WHERE al.account_id = :account_id AND al.fired_at >= :since AND al.fired_at <= :until
        UNION ALL
        SELECT t.at, 'alert_transition', 'alert.' || t.to_state, 't:' || t.id,
               json_build_object('alert_id', t.alert_id, 'from_state', t.from_state, 'to_state', t.to_state,
                                 'actor', t.actor, 'via', t.via, 'note', t.note, 'rule', al.rule,
                                 'title_en', al.title_en, 'title_fr', al.title_fr)::jsonb
          FROM alert_transitions t JOIN alerts al ON al.id = t.alert_id
         WHERE al.account_id = :account_id AND t.from_state IS NOT NULL AND t.at >= :since AND t.at <= :until
        UNION ALL
        SELECT l.as_of, 'level_change', 'level.' || l.level, 'l:' || to_char(l.as_of AT TIME ZONE 'UTC',
                                                                             'YYYYMMDDHH24MISSUS'),
               json_build_object('level', l.level, 'previous', l.previous, 'risk', l.risk)::jsonb
          FROM (SELECT as_of, level, risk, lag(level) OVER (ORDER BY as_of) AS previous
                  FROM account_health_history WHERE account_id = :account_id) l
         WHERE l.previous IS DISTINCT FROM l.level AND l.previous IS NOT NULL AND l.as_of >= :since
           AND l.as_of <= :until
        UNION ALL
        SELECT o.created_at, 'override', 'override', 'o:' || o.id,
               json_build_object('level', o.level, 'reason', o.reason, 'created_by', o.created_by,
                                 'expires_at', o.expires_at, 'revoked_at', o.revoked_at)::jsonb
          FROM health_overrides o WHERE o.account_id = :account_id AND o.created_at >= :since
           AND o.created_at <= :until
    ) items
    ORDER BY items.at DESC, items.item_id DESC
    LIMIT :limit
    """
)


async def signals(
    conn: AsyncConnection, account_id: str, since: datetime, until: datetime, *, limit: int = 300
) -> list[RowMapping]:
    params = {"account_id": account_id, "since": since, "until": until, "limit": limit}
    return list((await conn.execute(SIGNALS_SQL, params)).mappings())


async def kam_names(conn: AsyncConnection) -> dict[str, str]:
    """Every KAM's name by id (to show people, not ids)."""
    return {row.kam_id: row.name for row in await conn.execute(select(kams.c.kam_id, kams.c.name))}
