"""Idempotent batch ingestion: parse, dedup by (source, id), store raw events and fold per-account state.

``parse_record`` and ``assemble_batch`` (validate, dedup within the batch, encode what storing it writes) are
pure and run before the transaction; ``write_batch`` runs inside the caller's transaction (it never commits),
so the caller decides what else shares the unit of work and when offsets may be committed.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast

import asyncpg

from ingestion.dead_letters import headers_json
from ingestion.parsing import EventRejected, InboundRecord, event_document, parse_event
from ingestion.projections import (
    ENGAGEMENTS_SQL,
    ENTITY_PROJECTIONS,
    OUTCOMES_SQL,
    USAGE_SQL,
    engagement_rows,
    json_rows,
    outcome_rows,
    usage_rows,
)
from schemas.events import EngagementEvent, Event, KamEvent, OutcomeEvent, PaymentEvent, UsageEvent
from schemas.tables import account_shard_sql

Ingress = Literal["kafka", "http", "replay"]
Status = Literal["accepted", "duplicate", "conflict", "rejected"]
CONFLICT_REASON = "conflict: an event with this source and id was stored before with other content (kept)"

_EVENT_KEY_COLUMNS = ("source", "event_id")
# received_at is the database's (the storing transaction's start): one value per batch, not encoded per row.
_RAW_EVENT_COLUMNS = ("event_time", "source", "event_id", "type", "subject", "payload")


class EventResult(NamedTuple):
    status: Status
    source: str | None = None
    id: str | None = None
    type: str | None = None
    reason: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class BatchWrites:
    """What storing some fresh events writes, encoded ahead of the transaction (pure, no I/O): the
    transaction then only sends it, so the next batch's encoding overlaps this one's database time."""

    keys: list[tuple[str, str]]
    """(source, id) of each event, sorted: concurrent writers with overlapping keys then lock them in
    the same order (no deadlock)."""
    raw_events: Sequence[tuple[datetime, str, str, str, str, str]]
    statements: tuple[tuple[str, tuple[Any, ...]], ...]
    """The projections, then the mark of the touched accounts for rescoring: (statement, arguments)."""
    touched: dict[str, datetime]
    """Accounts whose state changed, with their newest event time."""
    months: frozenset[date]
    """First day of each month (UTC) of the events: the raw-event partitions they need. Only those: one
    event with a wild time (1970, 2099) must not create every month in between."""


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    records: Sequence[InboundRecord]
    events: list[tuple[int, Event]]
    """Valid events, first occurrence of each (source, id) in the batch, with their record index."""
    rejected: list[tuple[int, EventRejected]]
    in_batch_duplicates: list[tuple[int, Event]]
    writes: BatchWrites
    """The writes of every event in ``events``: what is stored unless some were already (duplicates)."""

    def months(self) -> frozenset[date]:
        """The raw-event partitions the batch needs (see ``BatchWrites.months``)."""
        return self.writes.months


@dataclass(frozen=True)
class BatchResult:
    """What storing a batch did. The per-record results and the fresh events are built on first use: a
    replay only counts them, and building them was a tenth of the store's Python time (measured)."""

    batch: ParsedBatch
    already_stored: frozenset[tuple[str, str]]
    """(source, id) of the batch's events that an earlier batch had stored (duplicates or conflicts)."""
    conflicting: frozenset[int]
    """Records carrying another version of a key already stored, or stored by the batch: the first version is
    kept, those are reported as conflicts (and recorded as dead letters)."""
    touched_accounts: frozenset[str]
    counts: dict[Status, int]

    @property
    def record_count(self) -> int:
        return len(self.batch.records)

    def count(self, status: Status) -> int:
        return self.counts[status]

    @functools.cached_property
    def results(self) -> tuple[EventResult, ...]:
        """One result per record, in order."""
        results: list[EventResult | None] = [None] * len(self.batch.records)
        for index, rejection in self.batch.rejected:
            results[index] = EventResult("rejected", reason=rejection.reason, field=rejection.field)
        for index, event in self.batch.in_batch_duplicates:
            results[index] = self._known(index, event)
        for index, event in self.batch.events:
            known = (event.source, event.id) in self.already_stored
            results[index] = (
                self._known(index, event) if known else EventResult("accepted", event.source, event.id, event.type)
            )
        # every record has its result: rejected, a duplicate within the batch, or one of the batch's events
        return cast(tuple[EventResult, ...], tuple(results))

    def _known(self, index: int, event: Event) -> EventResult:
        if index in self.conflicting:
            return EventResult("conflict", event.source, event.id, event.type, CONFLICT_REASON, "id")
        return EventResult("duplicate", event.source, event.id, event.type)

    @functools.cached_property
    def fresh_events(self) -> tuple[Event, ...]:
        """The events stored by this batch, in record order."""
        return tuple(e for _, e in self.batch.events if (e.source, e.id) not in self.already_stored)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The event times ingestion admits: from ``earliest`` to ``max_future`` past the ingesting clock's now.
    An event from far ahead would have the time-driven evaluation live every day until then (replays run a
    sweep per midnight); the contract's own range (``schemas.events``) bounds every other date."""

    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(days=1)

    def at(self, now: datetime) -> Admission:
        """The window as it stands at ``now`` (computed once per batch)."""
        return Admission(self.earliest, now + self.max_future, self.max_future)


@dataclass(frozen=True, slots=True)
class Admission:
    earliest: datetime
    latest: datetime
    max_future: timedelta

    def refusal(self, event: Event) -> EventRejected | None:
        moment = event.time
        if self.earliest <= moment <= self.latest and type(event) is not PaymentEvent:
            return None  # the common case, in two comparisons
        if moment < self.earliest:
            return EventRejected(f"before {self.earliest.isoformat()}, the earliest event time accepted", "time")
        if moment > self.latest:
            return EventRejected(
                f"more than {_span(self.max_future)} in the future (after {self.latest.isoformat(timespec='seconds')})",
                "time",
            )
        paid_at = event.data.paid_at if isinstance(event, PaymentEvent) else None
        if paid_at is not None and not self.earliest <= paid_at <= self.latest:
            return EventRejected(
                f"outside the accepted window ({self.earliest.date()} to {_span(self.max_future)} from now)",
                "data.paid_at",
            )
        return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    return f"{seconds} s"


def parse_record(record: InboundRecord, admission: Admission | None = None) -> Event | EventRejected:
    """One record's event, or why it is refused. With ``admission`` (a ``TimeWindow`` at the ingesting clock's
    now), an event outside the accepted time window is refused too."""
    try:
        document = event_document(record)
        if not document or document.isspace():  # isspace: no copy, unlike strip
            raise EventRejected("empty message")
        _refuse_unstorable(document)
        event = parse_event(document, binary_mode=document is not record.payload)
        if _unreadable_extension(event):
            _refuse_unstorable(document, checked=True)
            raise EventRejected(_NUMBER_REASON)
    except EventRejected as rejection:
        return rejection
    if admission is not None and (refusal := admission.refusal(event)) is not None:
        return refusal
    return event


# PostgreSQL text and jsonb cannot hold NUL, and numeric (so a jsonb number) holds at most 131072 digits before
# the point and 16383 after: such a record is refused here rather than fail the whole batch. The checks are a
# cheap superset of the candidates (an escaped NUL, an exponent of 4 digits or more, a run of 4000 digits), run
# on every record; only a match costs a decoding of the document to check it. Numbers are found in a copy of
# the payload reduced to their alphabet (digits as 0, e/E as e, signs as +, anything else a space): one C pass
# and plain substring searches, half a regular expression's cost (measured). What reads an event back (Python,
# orjson) also needs integers of 64 bits and finite doubles: the parser decodes NaN, Infinity, 1e400 and 2**64
# into the extension attributes, which are checked after parsing (almost always empty: no cost).
_NUMBER_SHAPES = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("e") if b in b"eE" else ord("+") if b in b"+-" else ord(" ")
    for b in range(256)
)
_LONG_DIGIT_RUN = b"0" * 4000
_NUL_REASON = "contains a NUL character (\\u0000), which cannot be stored"
_NUMBER_REASON = "a number out of range (integers within 64 bits, other numbers finite doubles)"
_INT64 = 2**63


def _maybe_unstorable(payload: bytes) -> bool:
    # ``find`` rather than ``in``: a third cheaper on bytes (measured)
    if payload.find(b"\\u0000") >= 0:
        return True
    shapes = payload.translate(_NUMBER_SHAPES)
    return (
        shapes.find(b"e0000") >= 0
        or shapes.find(b"e+0000") >= 0
        or (len(payload) >= 4000 and shapes.find(_LONG_DIGIT_RUN) >= 0)
    )


def _unreadable_extension(event: Event) -> bool:
    """Whether an extension attribute (of the envelope or of data) holds a number Python or orjson cannot
    carry back: NaN, an infinity, an integer beyond 64 bits."""
    extras = event.model_extra
    data_extras = event.data.model_extra
    return bool((extras and _unreadable(extras)) or (data_extras and _unreadable(data_extras)))


def _unreadable(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return not -_INT64 <= value < _INT64
    if isinstance(value, dict):
        return any(_unreadable(item) for item in value.values())
    if isinstance(value, list):
        return any(_unreadable(item) for item in value)
    return False


class _Integer(Decimal):
    """A JSON number written without a fraction or an exponent (an integer to whoever reads it back)."""


_NON_FINITE = object()
"""What NaN, Infinity and -Infinity decode to (JSON has no such numbers; some parsers take them)."""


def _non_finite(_: str) -> object:
    return _NON_FINITE


def _refuse_unstorable(payload: bytes, *, checked: bool = False) -> None:
    """Refuse a payload holding what cannot be stored or read back, naming where (``checked``: it is known to,
    look for where)."""
    if not checked and not _maybe_unstorable(payload):
        return
    try:
        document = json.loads(payload, parse_float=Decimal, parse_int=_Integer, parse_constant=_non_finite)
    except (ValueError, RecursionError):
        return  # not JSON: the parser says why
    pending: list[tuple[str, object]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if "\0" in value:
                raise EventRejected(_NUL_REASON, _field(path))
            continue
        if value is _NON_FINITE:
            raise EventRejected("NaN and Infinity are not JSON numbers", _field(path))
        if isinstance(value, _Integer):
            if not -_INT64 <= value < _INT64:
                raise EventRejected(_NUMBER_REASON, _field(path))
            continue
        if isinstance(value, Decimal):
            if not _fits_double(value):
                raise EventRejected(_NUMBER_REASON, _field(path))
            continue
        if isinstance(value, dict):
            children = [(f"{path}.{key}" if path else key, item) for key, item in value.items()]
            for child, _ in children:
                if "\0" in child:
                    raise EventRejected(_NUL_REASON, _field(child))
        elif isinstance(value, list):
            children = [(f"{path}.{index}" if path else str(index), item) for index, item in enumerate(value)]
        else:
            continue
        pending.extend(reversed(children))


def _fits_double(number: Decimal) -> bool:
    """Finite as a double and within PostgreSQL numeric's digits."""
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int) or -exponent > 16_383:
        return False
    return not number or abs(float(number)) <= sys.float_info.max


def _field(path: str) -> str | None:
    """A dotted path, printable and storable."""
    return path.replace("\0", "\\u0000").encode("utf-8", "backslashreplace").decode() or None


def assemble_batch(records: Sequence[InboundRecord], parsed: Sequence[Event | EventRejected]) -> ParsedBatch:
    """Group parse outcomes and encode the writes; a (source, id) seen twice in the batch is a duplicate from
    its second time."""
    events: list[tuple[int, Event]] = []
    rejected: list[tuple[int, EventRejected]] = []
    duplicates: list[tuple[int, Event]] = []
    seen: set[tuple[str, str]] = set()
    for index, outcome in enumerate(parsed):
        if isinstance(outcome, EventRejected):
            rejected.append((index, outcome))
            continue
        key = (outcome.source, outcome.id)
        if key in seen:
            duplicates.append((index, outcome))
        else:
            seen.add(key)
            events.append((index, outcome))
    return ParsedBatch(records, events, rejected, duplicates, encode_writes(records, events))


def encode_writes(records: Sequence[InboundRecord], fresh: Sequence[tuple[int, Event]]) -> BatchWrites:
    """One pass over the events (times are UTC, see ``schemas.events.EventTime``): the hot path of ingestion."""
    raw = []
    keys = []
    months = set()
    touched: dict[str, datetime] = {}
    by_type: dict[type[Any], list[Any]] = defaultdict(list)
    for index, event in fresh:
        moment, source, event_id, subject, kind = event.time, event.source, event.id, event.subject, type(event)
        raw.append((moment, source, event_id, event.type, subject, event_document(records[index]).decode()))
        keys.append((source, event_id))
        months.add((moment.year, moment.month))
        by_type[kind].append(event)
        if kind is not KamEvent:  # a KAM event's subject is a KAM, not an account
            newest = touched.get(subject)
            if newest is None or moment > newest:
                touched[subject] = moment
    keys.sort()
    statements: list[tuple[str, tuple[Any, ...]]] = [(sql, (rows,)) for sql, rows in _projection_statements(by_type)]
    if touched:
        statements.append((_MARK_TOUCHED_SQL, (list(touched), max(touched.values()))))
    return BatchWrites(keys, raw, tuple(statements), touched, frozenset(date(year, month, 1) for year, month in months))


@functools.lru_cache(maxsize=256)
def _combined(statements: tuple[str, ...]) -> str:
    """Several independent writes as one statement (data-modifying CTEs), so a batch costs one round trip
    to the database instead of one per table; parameters are renumbered in order."""
    parts, offset = [], 0
    for n, sql in enumerate(statements):

        def shifted(match: re.Match[str], by: int = offset) -> str:
            return f"${int(match.group(1)) + by}"

        parts.append(f"w{n} AS ({_PARAMETER.sub(shifted, sql.strip())})")
        offset += len(set(_PARAMETER.findall(sql)))
    return "WITH " + ",\n".join(parts) + "\nSELECT 1"


_PARAMETER = re.compile(r"\$(\d+)")


# Returns the keys that were already there: none in the common case, so nothing to decode.
_INSERT_KEYS_SQL = """
WITH batch AS (
    SELECT * FROM json_to_recordset($1::json) AS k(source text, event_id text)
), inserted AS (
    INSERT INTO event_keys (source, event_id) SELECT * FROM batch
    ON CONFLICT DO NOTHING
    RETURNING source, event_id
)
SELECT b.source, b.event_id FROM batch b
WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.source = b.source AND i.event_id = b.event_id)
"""

_DEAD_LETTERS_SQL = """
INSERT INTO dead_letters (ingress, origin, reason, field, raw, headers, record_key)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::jsonb[], $7::bytea[])
ON CONFLICT (ingress, origin, md5(raw)) DO NOTHING
"""

# Rescoring is shared by shards of accounts (see health_engine.repository.drain_rescore_queue): a batch queues
# one row per shard it touched. More shards than evaluator processes, so each finds one free. The ids are
# not sorted here (their reader makes a set of them): sorting 3,948 of them was half the statement (measured).
RESCORE_SHARDS = 16

_MARK_TOUCHED_SQL = f"""
INSERT INTO rescore_queue (shard, account_ids, latest_event_time, queued_at)
SELECT {account_shard_sql("account_id", str(RESCORE_SHARDS))},
       array_agg(account_id), $2, clock_timestamp()
FROM unnest($1::text[]) AS touched(account_id)
GROUP BY 1
"""


async def write_batch(
    conn: asyncpg.Connection, batch: ParsedBatch, *, ingress: Ingress, dead_letter: bool = True
) -> BatchResult:
    """Store a parsed batch inside the caller's open transaction; duplicates are acknowledged, not applied.

    Rejected records become dead letters unless ``dead_letter`` is false (re-trying existing letters)."""
    fresh: Sequence[tuple[int, Event]] = batch.events
    writes = batch.writes
    already_stored: set[tuple[str, str]] = set()
    if fresh:
        already_stored = await _claim_keys(conn, writes.keys)
        if already_stored:
            fresh = [(i, e) for i, e in batch.events if (e.source, e.id) not in already_stored]
            writes = encode_writes(batch.records, fresh)

    if fresh:
        await conn.copy_records_to_table("raw_events", records=writes.raw_events, columns=_RAW_EVENT_COLUMNS)
        await conn.execute(
            _combined(tuple(sql for sql, _ in writes.statements)),
            *(argument for _, arguments in writes.statements for argument in arguments),
        )

    conflicting: list[int] = []
    if already_stored or batch.in_batch_duplicates:
        conflicting = await _conflicting(conn, batch, already_stored)

    letters = [(batch.records[i], r.reason, r.field) for i, r in batch.rejected] if dead_letter else []
    letters += [(batch.records[i], CONFLICT_REASON, "id") for i in conflicting]
    if letters:
        await conn.execute(
            _DEAD_LETTERS_SQL,
            ingress,
            [record.origin for record, _, _ in letters],
            [reason for _, reason, _ in letters],
            [field for _, _, field in letters],
            [record.payload for record, _, _ in letters],
            [headers_json(record.headers) for record, _, _ in letters],
            [record.key for record, _, _ in letters],
        )

    touched = writes.touched if fresh else {}
    rejected = len(batch.rejected)
    return BatchResult(
        batch=batch,
        already_stored=frozenset(already_stored),
        conflicting=frozenset(conflicting),
        touched_accounts=frozenset(touched),
        counts={
            "accepted": len(fresh),
            "duplicate": len(batch.records) - len(fresh) - rejected - len(conflicting),
            "conflict": len(conflicting),
            "rejected": rejected,
        },
    )


# The stored version of known keys, found through the (subject, event_time) index by the new version's subject
# and time: a stored version with another subject or time is not found, and so differs.
_STORED_VERSIONS_SQL = """
SELECT r.source, r.event_id, r.payload::text AS payload
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) AS k(subject, event_time, source, event_id)
JOIN raw_events r USING (subject, event_time, source, event_id)
"""


async def _conflicting(conn: asyncpg.Connection, batch: ParsedBatch, already_stored: set[tuple[str, str]]) -> list[int]:
    """The records carrying another version of a known key (the stored one, or the batch's first, is kept).
    Only on the path of known keys (redeliveries): the common batch of new events pays nothing. Same content
    means the same JSON value, however it is spelled (a binary-mode record's is the document it stands for)."""
    first: dict[tuple[str, str], int] = {(e.source, e.id): i for i, e in batch.events}
    stored: dict[tuple[str, str], Any] = {}
    if already_stored:
        known = [e for _, e in batch.events if (e.source, e.id) in already_stored]
        rows = await conn.fetch(
            _STORED_VERSIONS_SQL,
            [e.subject for e in known],
            [e.time for e in known],
            [e.source for e in known],
            [e.id for e in known],
        )
        stored = {(row["source"], row["event_id"]): _document(row["payload"].encode()) for row in rows}
    conflicting: list[int] = []
    for index, event in (*batch.events, *batch.in_batch_duplicates):
        key = (event.source, event.id)
        if key in already_stored:
            differs = key not in stored or stored[key] != _document(event_document(batch.records[index]))
        else:
            differs = index != first[key] and _document(event_document(batch.records[index])) != _document(
                event_document(batch.records[first[key]])
            )
        if differs:
            conflicting.append(index)
    return sorted(conflicting)


def _document(payload: bytes) -> Any:
    return json.loads(payload, parse_float=Decimal)


async def _claim_keys(conn: asyncpg.Connection, ordered: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Record the batch's (source, id) keys; returns those already stored (duplicates).

    Optimistic: a plain COPY costs half an INSERT ... ON CONFLICT (measured) and almost every batch is all
    new; a batch holding a known key fails its COPY (rolled back to a savepoint) and takes the slow path."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("event_keys", records=ordered, columns=_EVENT_KEY_COLUMNS)
        return set()
    except asyncpg.UniqueViolationError:
        keys = [{"source": s, "event_id": i} for s, i in ordered]
        return {(row["source"], row["event_id"]) for row in await conn.fetch(_INSERT_KEYS_SQL, json_rows(keys))}


def _projection_statements(by_type: dict[type[Any], list[Any]]) -> list[tuple[str, str]]:
    statements = []
    if usage := by_type.get(UsageEvent):
        statements.append((USAGE_SQL, json_rows(usage_rows(usage))))
    if engagements := by_type.get(EngagementEvent):
        statements.append((ENGAGEMENTS_SQL, json_rows(engagement_rows(engagements))))
    if outcomes := by_type.get(OutcomeEvent):
        statements.append((OUTCOMES_SQL, json_rows(outcome_rows(outcomes))))
    for event_type, projection in ENTITY_PROJECTIONS.items():
        if of_type := by_type.get(event_type):
            statements.append((projection.sql, json_rows(projection.fold(of_type))))
    return statements
