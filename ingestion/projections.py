"""Per-account state folded from events: one multi-row upsert per table per batch.

Entities (tickets, invoices, contacts, account and KAM profiles) are merged so that the stored row is the
same whatever the arrival order: attributes in ``latest`` take the value of the newest event (ordered by
event time, then event id), ``sticky`` ones the newest non-null value (the greatest of those at the
newest time), ``earliest``/``newest`` keep the min/max time seen, ``counters`` add up (each event is
counted once: duplicates never reach this module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.events import (
    AccountEvent,
    ContactChangeEvent,
    EngagementEvent,
    Event,
    KamEvent,
    OutcomeEvent,
    PaymentEvent,
    SupportTicketEvent,
    UsageEvent,
)

OrderKey = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class EntityProjection:
    """How events of one type fold into one row per entity of ``table``."""

    table: str
    key: tuple[str, ...]
    latest: tuple[str, ...]
    types: dict[str, str]
    extract: Callable[[Any], dict[str, Any]]
    sticky: tuple[str, ...] = ()
    earliest: tuple[str, ...] = ()
    newest: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(init=False)
    sql: str = field(init=False)

    def __post_init__(self) -> None:
        sticky_times = tuple(f"{name}_at" for name in self.sticky)
        columns = (
            self.key
            + self.latest
            + self.sticky
            + sticky_times
            + self.earliest
            + self.newest
            + self.counters
            + ("last_event_time", "last_event_id")
        )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "sql", self._build_sql())

    def _type_of(self, column: str) -> str:
        if (column.endswith("_at") and column[:-3] in self.sticky) or column == "last_event_time":
            return "timestamptz"
        return self.types.get(column, "text")

    def _build_sql(self) -> str:
        t = self.table
        # Ids compare byte-wise ("C") as in ``fold``, whatever the database's default collation.
        newer = (
            f'(excluded.last_event_time, excluded.last_event_id COLLATE "C") '
            f'> ({t}.last_event_time, {t}.last_event_id COLLATE "C")'
        )
        sets = [f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {t}.{c} END" for c in self.latest]
        for c in self.sticky:
            collate = ' COLLATE "C"' if self._type_of(c) == "text" else ""
            newest = f"(excluded.{c}_at, excluded.{c}{collate}) > ({t}.{c}_at, {t}.{c}{collate})"
            take = f"excluded.{c}_at IS NOT NULL AND ({t}.{c}_at IS NULL OR {newest})"
            sets.append(f"{c} = CASE WHEN {take} THEN excluded.{c} ELSE {t}.{c} END")
            sets.append(f"{c}_at = greatest({t}.{c}_at, excluded.{c}_at)")
        sets += [f"{c} = least({t}.{c}, excluded.{c})" for c in self.earliest]
        sets += [f"{c} = greatest({t}.{c}, excluded.{c})" for c in self.newest]
        sets += [f"{c} = {t}.{c} + excluded.{c}" for c in self.counters]
        sets += [
            f"last_event_id = CASE WHEN {newer} THEN excluded.last_event_id ELSE {t}.last_event_id END",
            f"last_event_time = greatest({t}.last_event_time, excluded.last_event_time)",
        ]
        record = ", ".join(f"{c} {self._type_of(c)}" for c in self.columns)
        return (
            f"INSERT INTO {t} ({', '.join(self.columns)}) "
            f"SELECT * FROM json_to_recordset($1::json) AS r({record}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {', '.join(sets)}"
        )

    def fold(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        """One merged row per entity, in key order (a stable lock order for concurrent writers)."""
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for event in events:
            values = self.extract(event)
            order: OrderKey = (event.time, event.id)
            key = tuple(values[c] for c in self.key)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {c: values[c] for c in self.key}
                row.update(dict.fromkeys(self.counters, 0))
                row["_order"] = None
            if row["_order"] is None or order > row["_order"]:
                row["_order"] = order
                row.update({c: values[c] for c in self.latest})
            for c in self.sticky:
                at = row.get(f"{c}_at")
                # at equal times the greater value, so that arrival order never matters
                if values[c] is not None and (at is None or (event.time, values[c]) > (at, row[c])):
                    row[c], row[f"{c}_at"] = values[c], event.time
            for c in self.earliest:
                if values[c] is not None and (row.get(c) is None or values[c] < row[c]):
                    row[c] = values[c]
            for c in self.newest:
                if values[c] is not None and (row.get(c) is None or values[c] > row[c]):
                    row[c] = values[c]
            for c in self.counters:
                row[c] += values[c]
        result = []
        for key in sorted(rows):
            row = rows[key]
            row["last_event_time"], row["last_event_id"] = row.pop("_order")
            result.append(row)
        return result


def _ticket(event: SupportTicketEvent) -> dict[str, Any]:
    d = event.data
    return {
        "account_id": event.subject,
        "ticket_id": d.ticket_id,
        "status": d.status,
        "priority": d.priority,
        "category": d.category,
        "csat": d.csat,
        "first_seen_at": event.time,
        "opened_at": event.time if d.status == "opened" else None,
        "resolved_at": event.time if d.status in ("resolved", "closed") else None,
        "escalations": int(d.status == "escalated"),
        "reopenings": int(d.status == "reopened"),
    }


def _invoice(event: PaymentEvent) -> dict[str, Any]:
    d = event.data
    paid_at = d.paid_at or (event.time if d.status == "paid" else None)
    return {
        "account_id": event.subject,
        "invoice_id": d.invoice_id,
        "status": d.status,
        "amount": d.amount,
        "currency": d.currency,
        "due_date": d.due_date,
        "issued_at": event.time if d.status == "issued" else None,
        "paid_at": paid_at,
        "failures": int(d.status == "failed"),
    }


def _contact(event: ContactChangeEvent) -> dict[str, Any]:
    d = event.data
    departed = d.change in ("removed", "left_company")
    return {
        "account_id": event.subject,
        "contact_id": d.contact_id,
        "role": d.role,
        "previous_role": d.previous_role,
        "last_change": d.change,
        "active": not departed,
        "name": d.name,
        "email": d.email,
        "title": d.title,
        "added_at": event.time if d.change == "added" else None,
        "left_at": event.time if departed else None,
    }


def _account(event: AccountEvent) -> dict[str, Any]:
    d = event.data
    return {
        "account_id": event.subject,
        "name": d.name,
        "owner_kam_id": d.owner_kam_id,
        "arr": d.arr,
        "currency": d.currency,
        "tier": d.tier,
        "renewal_date": d.renewal_date,
        "segment": d.segment,
        "industry": d.industry,
        "growth_potential": d.growth_potential,
        "strategic_reference": d.strategic_reference,
        "parent_account_id": d.parent_account_id,
    }


def _kam(event: KamEvent) -> dict[str, Any]:
    d = event.data
    return {
        "kam_id": event.subject,
        "name": d.name,
        "email": d.email,
        "slack_user_id": d.slack_user_id,
        "manager_kam_id": d.manager_kam_id,
        "locale": d.locale,
        "timezone": d.timezone,
    }


TICKETS = EntityProjection(
    table="tickets",
    key=("account_id", "ticket_id"),
    latest=("status", "priority"),
    sticky=("category", "csat"),
    earliest=("first_seen_at", "opened_at"),
    newest=("resolved_at",),
    counters=("escalations", "reopenings"),
    types={
        "csat": "int2",
        "first_seen_at": "timestamptz",
        "opened_at": "timestamptz",
        "resolved_at": "timestamptz",
        "escalations": "int4",
        "reopenings": "int4",
    },
    extract=_ticket,
)

INVOICES = EntityProjection(
    table="invoices",
    key=("account_id", "invoice_id"),
    latest=("status", "amount", "currency", "due_date"),
    earliest=("issued_at",),
    newest=("paid_at",),
    counters=("failures",),
    types={
        "amount": "numeric",
        "due_date": "date",
        "issued_at": "timestamptz",
        "paid_at": "timestamptz",
        "failures": "int4",
    },
    extract=_invoice,
)

CONTACTS = EntityProjection(
    table="contacts",
    key=("account_id", "contact_id"),
    latest=("role", "previous_role", "last_change", "active"),
    sticky=("name", "email", "title"),
    earliest=("added_at",),
    newest=("left_at",),
    types={"active": "bool", "added_at": "timestamptz", "left_at": "timestamptz"},
    extract=_contact,
)

ACCOUNTS = EntityProjection(
    table="accounts",
    key=("account_id",),
    latest=(
        "name",
        "owner_kam_id",
        "arr",
        "currency",
        "tier",
        "renewal_date",
        "segment",
        "industry",
        "growth_potential",
        "strategic_reference",
        "parent_account_id",
    ),
    types={"arr": "numeric", "renewal_date": "date", "strategic_reference": "bool"},
    extract=_account,
)

KAMS = EntityProjection(
    table="kams",
    key=("kam_id",),
    latest=("name", "email", "slack_user_id", "manager_kam_id", "locale", "timezone"),
    types={},
    extract=_kam,
)

ENTITY_PROJECTIONS: dict[type[Any], EntityProjection] = {
    SupportTicketEvent: TICKETS,
    PaymentEvent: INVOICES,
    ContactChangeEvent: CONTACTS,
    AccountEvent: ACCOUNTS,
    KamEvent: KAMS,
}

USAGE_SQL = """
INSERT INTO usage_daily AS u (account_id, day, metric, quantity, events, users)
SELECT account_id, day, metric, sum(quantity), count(*),
       coalesce(array_agg(DISTINCT user_id COLLATE "C" ORDER BY user_id COLLATE "C")
                FILTER (WHERE user_id IS NOT NULL), '{}')
FROM json_to_recordset($1::json) AS e(account_id text, day date, metric text, quantity numeric, user_id text)
GROUP BY account_id, day, metric
ORDER BY account_id, day, metric
ON CONFLICT (account_id, day, metric) DO UPDATE SET
    quantity = u.quantity + excluded.quantity,
    events = u.events + excluded.events,
    users = CASE WHEN cardinality(excluded.users) = 0 THEN u.users
                 ELSE ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest(u.users || excluded.users) AS x
                           ORDER BY x COLLATE "C") END
"""


def usage_rows(events: Sequence[UsageEvent]) -> list[dict[str, Any]]:
    """Rows for USAGE_SQL (usage is summed per account, UTC day and metric; event times are UTC)."""
    return [
        {
            "account_id": e.subject,
            "day": e.time.date(),
            "metric": e.data.metric,
            "quantity": str(e.data.quantity),
            "user_id": e.data.user_id,
        }
        for e in events
    ]


ENGAGEMENTS_SQL = """
INSERT INTO engagements (account_id, event_time, source, event_id, kind, outcome, nps_score)
SELECT * FROM json_to_recordset($1::json) AS r(account_id text, event_time timestamptz, source text,
                                                event_id text, kind text, outcome text, nps_score int2)
ON CONFLICT DO NOTHING
"""


def engagement_rows(events: Sequence[EngagementEvent]) -> list[dict[str, Any]]:
    return [
        {
            "account_id": e.subject,
            "event_time": e.time,
            "source": e.source,
            "event_id": e.id,
            "kind": e.data.kind,
            "outcome": e.data.outcome,
            "nps_score": e.data.nps_score,
        }
        for e in events
    ]


OUTCOMES_SQL = """
INSERT INTO outcomes (account_id, event_time, source, event_id, outcome, arr_before, arr_after, reason)
SELECT * FROM json_to_recordset($1::json) AS r(account_id text, event_time timestamptz, source text,
                                                event_id text, outcome text, arr_before numeric,
                                                arr_after numeric, reason text)
ON CONFLICT DO NOTHING
"""


def outcome_rows(events: Sequence[OutcomeEvent]) -> list[dict[str, Any]]:
    return [
        {
            "account_id": e.subject,
            "event_time": e.time,
            "source": e.source,
            "event_id": e.id,
            "outcome": e.data.outcome,
            "arr_before": e.data.arr_before,
            "arr_after": e.data.arr_after,
            "reason": e.data.reason,
        }
        for e in events
    ]


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON document for ``json_to_recordset``: a single parameter for the whole batch,
    cheaper to encode than one array per column (measured: the per-element cost of array parameters
    dominated the client side of ingestion)."""
    return orjson.dumps(rows, default=_json_default).decode()
