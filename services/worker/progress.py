"""How far the consumer is: lag measured on a timer from the brokers' end offsets, and readiness from progress.

Nothing here runs inside a batch's handling but ``batch_stored``, which cannot fail it: observability never
fails a batch. Lag per assigned partition is its end offset minus the next offset to store: the one after the
last batch this worker stored, or (none yet since the partition was assigned) the group's committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from services.platform.metrics import Metrics

log = logging.getLogger(__name__)


class ConsumerProgress(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """The consumer's lag and progress, and whether it is ready: not when its partitions have had lag and no
    batch was stored for ``stall_s``, nor when the fetcher reported an error since the last batch (within
    ``stall_s``). Also the consumer's rebalance listener (revoked partitions leave the lag gauge)."""

    def __init__(self, metrics: Metrics | None, *, stall_s: float, clock: Callable[[], float] = time.monotonic):
        self.metrics = metrics
        self.stall_s = stall_s
        self.clock = clock
        self.stored: dict[TopicPartition, int] = {}
        """Next offset to store, after the last batch stored since the partition was assigned."""
        self.committed: dict[TopicPartition, int] = {}
        """The group's committed offset when the partition was assigned (or its first offset)."""
        self.lag: dict[TopicPartition, int] = {}
        self.last_progress = clock()
        self.lagging_since: float | None = None
        self.fetch_error_at: float | None = None
        self.fetch_error: str | None = None

    # --- the handler: a batch is stored (never raises) -----------------------------------------------------

    def batch_stored(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        try:
            for record in records:
                partition = TopicPartition(record.topic, record.partition)
                self.stored[partition] = max(self.stored.get(partition, 0), record.offset + 1)
            self.last_progress = self.clock()
        except Exception:
            log.exception("recording a stored batch failed")

    # --- the fetcher -----------------------------------------------------------------------------------------

    def fetch_failed(self, error: BaseException) -> None:
        self.fetch_error_at = self.clock()
        self.fetch_error = f"{type(error).__name__}: {error}"

    # --- rebalances (aiokafka's listener) --------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for partition in revoked:
            self._forget(partition)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        for partition in assigned:  # another member may have moved it on meanwhile
            self._forget(partition)

    def _forget(self, partition: TopicPartition) -> None:
        self.stored.pop(partition, None)
        self.committed.pop(partition, None)
        if self.lag.pop(partition, None) is not None and self.metrics is not None:
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(partition.topic, str(partition.partition))

    # --- the timer -------------------------------------------------------------------------------------------

    async def measure(self, consumer: AIOKafkaConsumer) -> None:
        """Read the end offsets of the assigned partitions and set the lag (and the gauge) of each."""
        assigned = set(consumer.assignment())
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(assigned)) if assigned else {}
        for partition in assigned:
            if partition not in self.stored and partition not in self.committed:
                committed = await consumer.committed(partition)
                if committed is None:  # nothing committed yet: consumption starts at the first offset
                    committed = (await consumer.beginning_offsets([partition]))[partition]
                self.committed[partition] = committed
        for partition in assigned & set(consumer.assignment()):  # not revoked meanwhile
            done = self.stored.get(partition, self.committed.get(partition))
            if done is None or partition not in ends:
                continue
            self.lag[partition] = max(0, ends[partition] - done)
            if self.metrics is not None:
                self.metrics.consumer_lag.labels(topic=partition.topic, partition=str(partition.partition)).set(
                    self.lag[partition]
                )
        lagging = any(self.lag.get(partition, 0) > 0 for partition in assigned)
        if not lagging:
            self.lagging_since = None
        elif self.lagging_since is None:
            self.lagging_since = self.clock()

    async def measure_forever(self, consumer: Callable[[], AIOKafkaConsumer | None], interval_s: float) -> None:
        """Measure every ``interval_s`` while ``consumer()`` is running; a failed reading is logged, not fatal."""
        while True:
            current = consumer()
            if current is not None:
                try:
                    await self.measure(current)
                except Exception as error:
                    log.warning("measuring consumer lag failed: %s: %s", type(error).__name__, error)
            await asyncio.sleep(interval_s)

    # --- readiness -------------------------------------------------------------------------------------------

    def not_ready_because(self) -> str | None:
        now = self.clock()
        error_at = self.fetch_error_at
        if error_at is not None and error_at > self.last_progress and now - error_at < self.stall_s:
            return f"the fetcher failed: {self.fetch_error}"
        if self.lagging_since is not None:
            stalled = now - max(self.lagging_since, self.last_progress)
            if stalled >= self.stall_s:
                return f"{sum(self.lag.values())} records behind and nothing stored for {stalled:.0f} s"
        return None

    def ready(self) -> bool:
        return self.not_ready_because() is None


class FetchErrorLog(logging.Handler):
    """FastStream's consume loop reports a failed fetch (an unsupported codec, a broker error) in its logger
    and retries later: this handler, on that logger, tells ``progress``."""

    def __init__(self, progress: ConsumerProgress) -> None:
        super().__init__(level=logging.ERROR)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        # a commit refused after a rebalance is the rebalance's business, not a fetch failure
        if isinstance(error, KafkaError) and not isinstance(error, CommitFailedError):
            self.progress.fetch_failed(error)
