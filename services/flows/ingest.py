"""The one ingestion pipeline every ingress calls (Kafka worker, HTTP, file replay)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingestion.parsing import EventRejected, InboundRecord
from ingestion.pipeline import BatchResult, Ingress, ParsedBatch, assemble_batch, parse_record, write_batch
from schemas.events import Event
from services.flows.evaluation import HealthEngine
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.observability import record_batch

log = logging.getLogger(__name__)

_PARSE_SLICE = 50


@dataclass
class Pipeline:
    """``clock`` is, live, the time accounts are rescored at; ``engine`` (when set) rescores the accounts a
    batch touched once the batch is stored. Arrival times (``received_at``) are the database's."""

    db: Database
    clock: Callable[[], datetime] = field(default=utc_now)
    engine: HealthEngine | None = None
    metrics: Metrics | None = None

    async def ingest(
        self, records: Sequence[InboundRecord], *, ingress: Ingress, as_of: datetime | None = None
    ) -> BatchResult:
        """Parse, dedup and store one batch in one transaction, then rescore what it touched (at ``as_of``,
        default now); returns a result per record, in order."""
        result = await self.store(await self.parse(records), ingress=ingress)
        if self.engine is not None and result.touched_accounts:
            await self.engine.rescore_touched(result.touched_accounts, as_of or self.clock())
        return result

    async def parse(self, records: Sequence[InboundRecord]) -> ParsedBatch:
        """Validate and encode a batch (see ``parse_each``)."""
        return assemble_batch(records, await self.parse_each(records))

    async def parse_each(self, records: Sequence[InboundRecord]) -> list[Event | EventRejected]:
        """The one parse loop of every ingress: each record's event or rejection, in slices, yielding in
        between so that a write already in flight keeps going."""
        outcomes: list[Event | EventRejected] = []
        for start in range(0, len(records), _PARSE_SLICE):
            outcomes.extend(parse_record(record) for record in records[start : start + _PARSE_SLICE])
            await asyncio.sleep(0)
        return outcomes

    async def store(self, batch: ParsedBatch, *, ingress: Ingress, dead_letter: bool = True) -> BatchResult:
        started = time.perf_counter()
        await self.db.ensure_partitions(batch.months())
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
