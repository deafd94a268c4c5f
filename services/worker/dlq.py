"""Publishing Kafka dead letters to the DLQ topic, from the ``dead_letters`` table, beside consumption.

The batch's transaction records its rejected records; this relay publishes them afterwards, so that nothing
about the DLQ topic (missing, unreachable, a record too large for it) can fail, rewind or slow a batch. Each goes
out once. A relay claims letters for a lease, in a transaction committed before it sends them; from then on they
may be on the topic (``publishing_since``) until the relay says which are (published), which certainly are not
(its producer never took them) and which it cannot tell (taken, never confirmed). The next relay to claim one of
those reads the topic back from that time and sends only what it does not find there. A relay that dies holds
its letters until the lease ends; one that stops lets them go once its producer has stopped.

Every DLQ message names its dead letter (``kamwatch-dead-letter-id``); one too large for the topic goes out
truncated with its full size (``kamwatch-dlq-truncated-from``): ``kamwatch dlq show ID`` has the whole record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from ingestion.dead_letters import (
    ClaimedLetter,
    DeadLetter,
    claim_unpublished,
    settle_claims,
    unpublished_count,
)
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)

CLAIM_LIMIT = 200
POLL_S = 5.0
"""Besides being woken by the consumer, look this often (other workers' leftovers, expired claims)."""
CLOCK_MARGIN = timedelta(minutes=1)
"""Read the topic back from this long before a claim (database and worker clocks may differ)."""
_HEADROOM = 64 * 1024  # above the DLQ size limit, for the record's framing

DEAD_LETTER_ID = "kamwatch-dead-letter-id"
TRUNCATED_FROM = "kamwatch-dlq-truncated-from"
_ORIGIN = re.compile(r"^kafka:(?P<topic>.*)/(?P<partition>\d+)@(?P<offset>\d+)$")


def dlq_message(letter: DeadLetter, max_bytes: int, *, whole: bool = True) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The DLQ record of a dead letter: its value and headers as received, plus why and where from. Over
    ``max_bytes`` (or when not ``whole``: the topic refused it), the value is truncated to what fits (nothing,
    without ``whole``, and without the original headers) and the full size is given."""
    ours: list[tuple[str, bytes]] = [("kamwatch-dlq-reason", letter.reason.encode())]
    if letter.field:
        ours.append(("kamwatch-dlq-field", letter.field.encode()))
    if letter.origin and (match := _ORIGIN.match(letter.origin)):
        ours += [
            ("kamwatch-source-topic", match["topic"].encode()),
            ("kamwatch-source-partition", match["partition"].encode()),
            ("kamwatch-source-offset", match["offset"].encode()),
        ]
    ours.append((DEAD_LETTER_ID, str(letter.id).encode()))
    truncated = [(TRUNCATED_FROM, str(len(letter.raw)).encode())]
    if not whole:
        return b"", ours + truncated
    headers = [*letter.headers, *ours]
    size = len(letter.raw) + len(letter.record_key or b"") + sum(len(n) + len(v) + 8 for n, v in headers)
    if size <= max_bytes:
        return letter.raw, headers
    room = max_bytes - (size - len(letter.raw)) - 64
    if room <= 0:
        return b"", ours + truncated
    return letter.raw[:room], headers + truncated


@dataclass
class _Attempt:
    """What became of the letters of one round."""

    claimed: set[int]
    checked: set[int] = field(default_factory=set)
    """Known not to be on the topic unless published: looked for there, or never handed to a producer."""
    published: set[int] = field(default_factory=set)
    taken: set[int] = field(default_factory=set)
    """Handed to the producer: maybe written, even if not confirmed."""
    done: set[int] = field(default_factory=set)
    """Taken, and the producer is done with them (written or failed): nothing of them is in flight."""


# Errors after which an idempotent producer cannot send again: only a new one can.
PRODUCER_FATAL = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
    ProducerClosed,
)


@dataclass
class DeadLetterRelay:
    """Publishes the Kafka dead letters recorded by ingestion to the DLQ topic (see the module's docstring)."""

    db: Database
    settings: Settings
    metrics: Metrics | None = None
    _producer: AIOKafkaProducer | None = field(default=None, repr=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _in_flight: set[int] = field(default_factory=set, repr=False)
    """Letters handed to the producer and not heard of since: settled once it has stopped."""

    @property
    def topic(self) -> str:
        return self.settings.kafka_dlq_topic

    @property
    def send_timeout_s(self) -> float:
        """Half the lease: what the producer was handed is written or given up well before the lease ends."""
        return self.settings.kafka_dlq_lease_s / 2

    def wake(self) -> None:
        """New dead letters were committed: publish them without waiting for the next look."""
        self._wakeup.set()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_idempotence=True,  # a retried send is not written twice
            max_request_size=self.settings.kafka_dlq_max_bytes + _HEADROOM,
            request_timeout_ms=int(self.send_timeout_s * 1000 / 2),
        )
        await self._producer.start()

    async def _renew_producer(self) -> None:
        """A new producer (a new producer id): an idempotent producer whose sequence the broker no longer
        follows (after a broker restart) fails every send until it is replaced."""
        await self.stop()
        try:
            await self.start()
        except Exception as error:
            log.warning("starting a producer for %s failed (%s); retrying", self.topic, type(error).__name__)
            await self.stop()

    async def stop(self) -> None:
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=2.0)
        # nothing of ours is in flight any more: what was, the next relay looks for on the topic
        if self._in_flight:
            with contextlib.suppress(Exception):
                async with self.db.transaction() as conn:
                    await settle_claims(conn, unknown=sorted(self._in_flight), at=utc_now())

    async def run_forever(self) -> None:
        backoff = 1.0
        while True:
            self._wakeup.clear()
            try:
                while await self.publish_pending():
                    pass
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                kind = type(error).__name__
                log.warning("publishing dead letters to %s failed (%s: %s); retrying", self.topic, kind, error)
                await asyncio.sleep(backoff)
                if isinstance(error, PRODUCER_FATAL) or self._producer is None:
                    await self._renew_producer()
                backoff = min(backoff * 2, POLL_S * 2)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_S)

    async def publish_pending(self) -> int:
        """One round: claim, look on the topic for those maybe there already, send the others, say which are
        published, which were not sent and which may be; returns how many were claimed."""
        async with self.db.transaction() as conn:
            claimed = await claim_unpublished(conn, limit=CLAIM_LIMIT, lease_s=self.settings.kafka_dlq_lease_s)
        if not claimed:
            await self._count_unpublished()
            return 0
        attempt = _Attempt(
            claimed={c.letter.id for c in claimed},
            checked={c.letter.id for c in claimed if c.maybe_published_since is None},
        )
        try:
            attempt.published |= await self._found_on_topic(claimed)
            attempt.checked = set(attempt.claimed)  # looked for: what was not found is not on the topic
            if attempt.published:
                log.info("%d dead letters were on %s already", len(attempt.published), self.topic)
            unsent = [c.letter for c in claimed if c.letter.id not in attempt.published]
            await asyncio.wait_for(self._send(unsent, attempt), self.send_timeout_s)
        finally:
            await self._settle(attempt)
        return len(claimed)

    async def _settle(self, attempt: _Attempt) -> None:
        taken = attempt.taken - attempt.published
        in_flight = taken - attempt.done
        self._in_flight |= in_flight
        async with self.db.transaction() as conn:
            await settle_claims(
                conn,
                published=sorted(attempt.published),
                not_sent=sorted(attempt.checked - attempt.published - attempt.taken),
                # not reconciled, or handed to the producer that has since failed them: look on the topic first
                unknown=sorted((attempt.claimed - attempt.checked) | (taken - in_flight)),
                at=utc_now(),
            )
        self._in_flight -= attempt.published
        await self._count_unpublished()

    async def _send(self, letters: Sequence[DeadLetter], attempt: _Attempt) -> None:
        """Send every letter (one whose size the topic refused once more, without its value), noting in
        ``attempt`` which the producer took, which it is done with and which were written; the first failure is
        raised at the end."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("the relay is not started")
        max_bytes = self.settings.kafka_dlq_max_bytes

        async def send(letter: DeadLetter, *, whole: bool = True) -> None:
            value, headers = dlq_message(letter, max_bytes, whole=whole)
            written = await producer.send(self.topic, value, key=letter.record_key, headers=headers)
            attempt.taken.add(letter.id)
            try:
                await written
            finally:
                if written.done():
                    attempt.done.add(letter.id)

        async def publish(letter: DeadLetter) -> None:
            try:
                await send(letter)
            except MessageSizeTooLargeError:  # the topic's own limit is lower than ours
                await send(letter, whole=False)
            attempt.published.add(letter.id)

        outcomes = await asyncio.gather(*(publish(letter) for letter in letters), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _found_on_topic(self, claimed: Sequence[ClaimedLetter]) -> set[int]:
        """Of the letters that may be on the topic, those that are: read back from the earliest such time."""
        maybe = {c.letter.id: c.maybe_published_since for c in claimed if c.maybe_published_since is not None}
        if not maybe:
            return set()
        since = min(moment for moment in maybe.values() if moment is not None) - CLOCK_MARGIN
        wanted = {str(letter_id).encode(): letter_id for letter_id in maybe}
        return await asyncio.wait_for(self._read_back(since, wanted), self.send_timeout_s)

    async def _read_back(self, since: datetime, wanted: dict[bytes, int]) -> set[int]:
        if self._producer is None:
            raise RuntimeError("the relay is not started")
        numbers = sorted(await self._producer.partitions_for(self.topic))
        partitions = [TopicPartition(self.topic, number) for number in numbers]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            first = {tp: starts[tp].offset for tp in partitions if starts.get(tp) is not None}
            pending = {tp for tp, offset in first.items() if offset < ends[tp]}
            if not pending:
                return set()
            consumer.assign(list(pending))  # only these: aiokafka's getmany with a filter may wait for the others
            for tp in pending:
                consumer.seek(tp, first[tp])
            found: set[int] = set()
            while pending:
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    for record in records:
                        for name, value in record.headers or ():
                            if name == DEAD_LETTER_ID and value in wanted:
                                found.add(wanted[value])
                        if record.offset + 1 >= ends[tp]:
                            pending.discard(tp)
            return found
        finally:
            await consumer.stop()

    async def _count_unpublished(self) -> None:
        if self.metrics is None:
            return
        try:
            async with self.db.transaction() as conn:
                self.metrics.dead_letters_unpublished.set(await unpublished_count(conn))
        except Exception:
            log.exception("counting unpublished dead letters failed")
