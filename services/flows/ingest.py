"""The one ingestion pipeline every ingress calls (Kafka worker, HTTP, file replay)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from ingestion.parsing import EventRejected, InboundRecord
from ingestion.pipeline import (
    BatchResult,
    Ingress,
    ParsedBatch,
    TimeWindow,
    assemble_batch,
    parse_record,
    write_batch,
)
from schemas.events import Event
from services.flows.evaluation import HealthEngine
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.observability import record_batch
from services.platform.settings import Settings

log = logging.getLogger(__name__)

_PARSE_SLICE = 50

# What PostgreSQL (or the driver encoding for it) refuses in the data itself: class 22 (data exception) and 54
# (program limit, e.g. an index row too large). Anything else (connection lost, deadlock) fails the batch.
_REFUSED_DATA = (asyncpg.DataError, asyncpg.ProgramLimitExceededError, UnicodeError, OverflowError)


def time_window(settings: Settings) -> TimeWindow:
    return TimeWindow(
        earliest=datetime.combine(settings.event_time_earliest, datetime.min.time(), tzinfo=UTC),
        max_future=timedelta(seconds=settings.event_time_max_future_s),
    )


class _Probe(Exception):
    """Rolls back the transaction that looked for the records the database refuses."""


@dataclass
class Pipeline:
    """``clock`` is, live, the time accounts are rescored at; ``engine`` (when set) rescores the accounts a
    batch touched once the batch is stored. Arrival times (``received_at``) are the database's."""

    db: Database
    clock: Callable[[], datetime] = field(default=utc_now)
    engine: HealthEngine | None = None
    metrics: Metrics | None = None
    window: TimeWindow = field(default_factory=TimeWindow)

    async def ingest(
        self, records: Sequence[InboundRecord], *, ingress: Ingress, as_of: datetime | None = None
    ) -> BatchResult:
        """Parse, dedup and store one batch in one transaction, then rescore what it touched (at ``as_of``,
        default now); returns a result per record, in order."""
        result = await self.store(await self.parse(records), ingress=ingress)
        if self.engine is not None and result.touched_accounts:
            try:
                await self.engine.rescore_touched(result.touched_accounts, as_of or self.clock())
            except Exception:
                # The events are stored and their accounts still queued (the scoring rolled back): the
                # evaluator's drain takes them; the caller gets the results of what was committed.
                log.exception("rescoring %d touched accounts failed", len(result.touched_accounts))
        return result

    async def parse(self, records: Sequence[InboundRecord]) -> ParsedBatch:
        """Validate and encode a batch (see ``parse_each``)."""
        return assemble_batch(records, await self.parse_each(records))

    async def parse_each(self, records: Sequence[InboundRecord]) -> list[Event | EventRejected]:
        """The one parse loop of every ingress: each record's event or rejection (the time window is the
        clock's now), in slices, yielding in between so that a write already in flight keeps going."""
        outcomes: list[Event | EventRejected] = []
        admission = self.window.at(self.clock())
        for start in range(0, len(records), _PARSE_SLICE):
            outcomes.extend(parse_record(record, admission) for record in records[start : start + _PARSE_SLICE])
            await asyncio.sleep(0)
        return outcomes

    async def store(self, batch: ParsedBatch, *, ingress: Ingress, dead_letter: bool = True) -> BatchResult:
        started = time.perf_counter()
        await self.db.ensure_partitions(batch.months())
        try:
            async with self.db.transaction() as conn:
                result = await write_batch(conn, batch, ingress=ingress, dead_letter=dead_letter)
        except _REFUSED_DATA as error:
            # A record the contract let through and the database refuses must not sink its batch (nor stop a
            # partition or a replay): find it, store the others, dead-letter it with the database's reason.
            log.warning("the database refused part of a batch (%s); storing the rest", type(error).__name__)
            batch = await self._without_refused(batch)
            async with self.db.transaction() as conn:
                result = await write_batch(conn, batch, ingress=ingress, dead_letter=dead_letter)
        if self.metrics is not None:
            seconds = time.perf_counter() - started
            try:  # the batch is stored: counting it must not fail it (a Kafka batch would be read again)
                record_batch(
                    self.metrics, batch.records, result, ingress=ingress, seconds=seconds, committed_at=self.clock()
                )
            except Exception:
                log.exception("recording the metrics of a stored batch failed")
        return result

    async def _without_refused(self, batch: ParsedBatch) -> ParsedBatch:
        """The batch with each event the database refuses on its own turned into a rejection: every event is
        tried alone under a savepoint of a transaction rolled back at the end."""
        outcomes: list[Event | EventRejected] = [EventRejected("unparsed")] * len(batch.records)
        for index, rejection in batch.rejected:
            outcomes[index] = rejection
        refused: dict[tuple[str, str], EventRejected] = {}
        try:
            async with self.db.transaction() as conn:
                for index, event in batch.events:
                    outcomes[index] = event
                    try:
                        async with conn.transaction():
                            single = assemble_batch([batch.records[index]], [event])
                            await write_batch(conn, single, ingress="replay", dead_letter=False)
                    except _REFUSED_DATA as error:
                        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
                        refused[(event.source, event.id)] = outcomes[index] = EventRejected(
                            f"refused by the database: {reason}"
                        )
                raise _Probe
        except _Probe:
            pass
        for index, event in batch.in_batch_duplicates:
            outcomes[index] = refused.get((event.source, event.id), event)
        return assemble_batch(batch.records, outcomes)
