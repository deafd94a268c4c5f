"""The health engine at the service edge: rescoring touched accounts and the time-driven sweep.

Every evaluation takes an explicit ``as_of``; only the callers (live services, replay) decide what time it
is. Each unit of work loads the inputs of a chunk of accounts, scores them with the pure core and saves
the scores and history in one transaction; ``on_scores`` (the alerting) runs inside that transaction too.

One account never stops the others: a chunk runs under a savepoint; when it fails, its halves are tried in
turn down to the account that fails alone, which is quarantined (``health_engine.quarantine``) and skipped by
later evaluations until released. Only errors of the data path do that: a lost connection or a deadlock fails
the whole unit of work, which is retried as before.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import asyncpg

from health_engine.config import ScoringConfig, Windows, load_scoring_config
from health_engine.model import HealthScore
from health_engine.quarantine import Stage, list_quarantined, quarantine, quarantined_among, release
from health_engine.repository import (
    QueueState,
    claim_shard,
    closed_accounts,
    drain_rescore_queue,
    finish_shard,
    load_signals,
    rescore_queue_state,
    save_scores,
    shard_accounts,
)
from health_engine.scoring import score_account
from schemas.vocabulary import Closure
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)

ScoresHook = Callable[[asyncpg.Connection, Sequence[HealthScore], datetime], Awaitable[None]]
ClosedHook = Callable[[asyncpg.Connection, Mapping[str, Closure], datetime], Awaitable[None]]


@runtime_checkable
class ClosingHook(Protocol):
    """An ``on_scores`` hook that also wants the accounts found closed (the alerting: it resolves their alerts)."""

    async def on_closed(self, conn: asyncpg.Connection, closed: Mapping[str, Closure], as_of: datetime) -> None: ...


CHUNK = 1000

# Failures of the infrastructure, not of an account's data: never a reason to set an account aside.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,  # shutdown, query cancelled
    asyncpg.CannotConnectNowError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class EvaluationFailed(Exception):
    """An evaluation step failed on the accounts' data; ``stage`` says which (the cause is chained)."""

    def __init__(self, stage: Stage) -> None:
        super().__init__(stage)
        self.stage: Stage = stage


@dataclass(frozen=True, slots=True)
class SweepReport:
    as_of: datetime
    shards: int
    accounts: int
    seconds: float


@dataclass
class HealthEngine:
    db: Database
    config: ScoringConfig
    on_scores: ScoresHook | None = None
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    chunk: int = CHUNK
    metrics: Metrics | None = None
    on_closed: ClosedHook | None = None
    """Called with the accounts of a chunk found closed (default: the ``on_scores`` hook's, if it has one)."""

    def __post_init__(self) -> None:
        if self.on_closed is None and isinstance(self.on_scores, ClosingHook):
            self.on_closed = self.on_scores.on_closed

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        on_scores: ScoresHook | None = None,
        metrics: Metrics | None = None,
    ) -> HealthEngine:
        return cls(db, load_scoring_config(settings.scoring_config), on_scores, metrics=metrics)

    @property
    def windows(self) -> Windows:
        return Windows.of(self.config)

    async def score_chunk(
        self,
        conn: asyncpg.Connection,
        account_ids: Sequence[str],
        as_of: datetime,
        *,
        trigger: str,
        include_quarantined: bool = False,
    ) -> list[HealthScore]:
        """Score and save ``account_ids`` at ``as_of`` inside the caller's transaction, skipping quarantined
        accounts (unless ``include_quarantined``) and quarantining any that fails on its own. An account closed
        by then (lost) is not scored: it goes to ``on_closed`` instead."""
        ids = list(account_ids)
        if ids and not include_quarantined and (set_aside := await quarantined_among(conn, ids)):
            ids = [a for a in ids if a not in set_aside]
        return await self._isolating(conn, ids, as_of, trigger)

    async def _isolating(
        self, conn: asyncpg.Connection, account_ids: list[str], as_of: datetime, trigger: str
    ) -> list[HealthScore]:
        if not account_ids:
            return []
        try:
            async with conn.transaction():  # a savepoint: a failure undoes this part only
                return await self._evaluate(conn, account_ids, as_of, trigger)
        except EvaluationFailed as failure:
            if len(account_ids) > 1:
                half = len(account_ids) // 2
                return [
                    *await self._isolating(conn, account_ids[:half], as_of, trigger),
                    *await self._isolating(conn, account_ids[half:], as_of, trigger),
                ]
            cause = failure.__cause__ or failure
            log.error(
                "account set aside after %s failed (see `kamwatch quarantine list`): %s",
                failure.stage,
                type(cause).__name__,
            )
            await quarantine(conn, account_ids[0], stage=failure.stage, trigger=trigger, as_of=as_of, error=cause)
            if self.metrics is not None:
                self.metrics.quarantines_total.labels(stage=failure.stage).inc()
            return []

    async def _evaluate(
        self, conn: asyncpg.Connection, account_ids: Sequence[str], as_of: datetime, trigger: str
    ) -> list[HealthScore]:
        try:
            closed = await closed_accounts(conn, account_ids, as_of)
            if closed:
                account_ids = [a for a in account_ids if a not in closed]
            signals = await load_signals(conn, account_ids, as_of, self.windows)
            scores = [score_account(signals[a], as_of, self.config) for a in sorted(signals)]
            await save_scores(conn, scores, trigger=trigger)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            raise EvaluationFailed("scoring") from error
        try:
            if self.on_scores is not None and scores:
                await self.on_scores(conn, scores, as_of)
            if self.on_closed is not None and closed:
                await self.on_closed(conn, closed, as_of)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            raise EvaluationFailed("alerting") from error
        return scores

    async def queue_state(self) -> QueueState | None:
        async with self.db.transaction() as conn:
            return await rescore_queue_state(conn)

    async def rescore_pending(self, as_of: datetime, *, up_to_id: int | None = None) -> int:
        """Drain the rescore queue (accounts touched by ingestion) up to batch ``up_to_id`` (default: what is
        queued now), one shard at a time, each shard in one transaction and each of its accounts scored once;
        shards other rescorers hold are theirs. Returns how many accounts were scored."""
        return (await self._drain(as_of, up_to_id))[1]

    async def rescore_touched(self, touched: Collection[str], as_of: datetime) -> None:
        """Rescore the accounts a batch just touched, before answering (HTTP ingestion): drain the queue, then
        score directly those whose shard another rescorer held (it may have claimed it before this batch)."""
        drained, _ = await self._drain(as_of, None)
        if missed := sorted(set(touched) - drained):
            await self.rescore(missed, as_of, trigger="event")

    async def _drain(self, as_of: datetime, up_to_id: int | None) -> tuple[set[str], int]:
        """The accounts taken from the queue, and how many of them were scored (those with a profile)."""
        drained: set[str] = set()
        total = 0
        if up_to_id is None:
            state = await self.queue_state()
            if state is None:
                return drained, total
            up_to_id = state.last_id
        while True:
            started = time.perf_counter()
            async with self.db.transaction() as conn:
                touched = await drain_rescore_queue(conn, up_to_id)
                scored = 0
                for start in range(0, len(touched), self.chunk):
                    chunk = touched[start : start + self.chunk]
                    scored += len(await self.score_chunk(conn, chunk, as_of, trigger="event"))
            if not touched:
                return drained, total
            drained.update(touched)
            total += scored
            if self.metrics is not None:
                self.metrics.rescore_seconds.observe(time.perf_counter() - started)
                self.metrics.rescored_accounts_total.labels(trigger="event").inc(scored)

    async def compute(self, account_ids: Sequence[str], as_of: datetime) -> list[HealthScore]:
        """Score without saving (what-if at another time, shadow configs)."""
        async with self.db.transaction() as conn:
            signals = await load_signals(conn, account_ids, as_of, self.windows)
        return [score_account(signals[a], as_of, self.config) for a in sorted(signals)]

    async def rescore(
        self, account_ids: Sequence[str], as_of: datetime, *, trigger: str = "manual", include_quarantined: bool = False
    ) -> list[HealthScore]:
        async with self.db.transaction() as conn:
            return await self.score_chunk(
                conn, account_ids, as_of, trigger=trigger, include_quarantined=include_quarantined
            )

    async def retry_quarantined(self, account_ids: Sequence[str], as_of: datetime) -> tuple[list[str], list[str]]:
        """Evaluate quarantined accounts again (all when none is named) at ``as_of``: those that now evaluate
        are released, the others stay with the new error. Returns (released, still quarantined)."""
        released: list[str] = []
        still: list[str] = []
        async with self.db.transaction() as conn:
            failures = {q.account_id: q.failures for q in await list_quarantined(conn, account_ids)}
        ids = sorted(failures)
        for start in range(0, len(ids), self.chunk):
            chunk = ids[start : start + self.chunk]
            async with self.db.transaction() as conn:
                await self.score_chunk(conn, chunk, as_of, trigger="manual", include_quarantined=True)
                again = {q.account_id: q.failures for q in await list_quarantined(conn, chunk)}
                failed = [a for a in chunk if again.get(a, failures[a]) != failures[a]]
                released += await release(conn, [a for a in chunk if a not in failed])
                still += failed
        return released, still

    async def sweep(
        self, as_of: datetime, *, shards: int, tick: datetime | None = None, absorb_queue: bool = False
    ) -> SweepReport:
        """Rescore every account at ``as_of``, shard by shard; a shard already taken for ``tick`` (default
        ``as_of``) by another worker is skipped, so workers running the same sweep share it.

        ``absorb_queue`` (single-process replay): the accounts queued for rescoring before the sweep are
        dropped from the queue, since the sweep scores them all anyway."""
        started = time.perf_counter()
        tick = tick or as_of
        if absorb_queue:
            async with self.db.transaction() as conn:
                await conn.execute("DELETE FROM rescore_queue")
        swept = taken = 0
        # First every shard nobody is sweeping, then, waiting this time, those that were busy: done by
        # then, or taken over from a worker that died on them.
        busy: list[int] = []
        for wait, pending in ((False, list(range(shards))), (True, busy)):
            for shard in pending:
                async with self.db.transaction() as conn:
                    claim = await claim_shard(conn, tick, shard, self.worker_name, wait=wait)
                    if claim == "busy":
                        busy.append(shard)
                    if claim != "taken":
                        continue
                    taken += 1
                    count, after = 0, ""
                    while page := await shard_accounts(conn, shards=shards, shard=shard, after=after, limit=self.chunk):
                        await self.score_chunk(conn, page, as_of, trigger="sweep")
                        count += len(page)
                        after = page[-1]
                    await finish_shard(conn, tick, shard, count)
                    swept += count
        report = SweepReport(as_of, taken, swept, time.perf_counter() - started)
        if self.metrics is not None and taken:
            self.metrics.sweep_seconds.observe(report.seconds)
            self.metrics.sweep_accounts_total.inc(swept)
            self.metrics.rescored_accounts_total.labels(trigger="sweep").inc(swept)
            self.metrics.sweep_last_success_timestamp_seconds.set(as_of.timestamp())
        return report


@dataclass(frozen=True, slots=True)
class RescorePacing:
    """When the live rescorer drains the queue: paced by load, not by a fixed delay.

    Idle (its last look found the queue empty), work is drained as soon as it is seen: an isolated event is
    scored at once. Under load (work was waiting at its last look too), it waits for the burst to settle (nothing
    new queued for ``settle_s``) or for the oldest waiting batch to have waited ``max_delay_s``, as a backfill
    should: each account is scored once per drain, whatever number of batches touched it. And after any drain it
    rests ``pace`` times as long as that drain took, so that scoring never takes more than 1/(1+pace) of the
    time, whatever the pattern of arrivals."""

    settle_s: float = 3.0
    max_delay_s: float = 30.0
    pace: float = 9.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RescorePacing:
        return cls(settings.rescore_settle_s, settings.rescore_max_delay_s, settings.rescore_pace)

    def due(self, state: QueueState, *, idle: bool, since_drain_s: float, drain_s: float) -> bool:
        """Whether to drain ``state`` now; ``idle``: the previous look found nothing queued; ``since_drain_s``
        after the end of the last drain, which took ``drain_s``."""
        if state.oldest_s >= self.max_delay_s:
            return True
        if self.resting(since_drain_s=since_drain_s, drain_s=drain_s):
            return False
        return idle or state.newest_s >= self.settle_s

    def resting(self, *, since_drain_s: float, drain_s: float) -> bool:
        return since_drain_s < min(self.max_delay_s, self.pace * drain_s)

    @staticmethod
    def idle_after(state: QueueState | None, *, idle: bool, resting: bool) -> bool:
        """Whether a look at ``state`` that drained nothing leaves the rescorer idle: an empty queue does, and
        work first seen while resting after an empty look is an isolated arrival, not a burst."""
        return state is None or (idle and resting)


async def rescore_forever(
    engine: HealthEngine,
    *,
    clock: Callable[[], datetime],
    idle_s: float = 0.2,
    pacing: RescorePacing = RescorePacing(),
    until: Callable[[], bool] | None = None,
) -> None:
    """The live event-driven rescoring, beside ingestion rather than inside it: look at the queue every
    ``idle_s`` and drain it as ``pacing`` says, so that consuming never waits for scoring; rescorers share the
    queue by shards of accounts. With ``until`` (benchmarks), return once it holds and the queue is empty."""
    drained_at, drain_s, idle = -math.inf, 0.0, True
    while True:
        stopping = until is not None and until()
        try:
            state = await engine.queue_state()
            rescored = 0
            since_drain_s = time.monotonic() - drained_at
            if state is not None and (
                stopping or pacing.due(state, idle=idle, since_drain_s=since_drain_s, drain_s=drain_s)
            ):
                started = time.monotonic()
                rescored = await engine.rescore_pending(clock(), up_to_id=state.last_id)
                drained_at = time.monotonic()
                drain_s = drained_at - started
                idle = False
            else:
                resting = pacing.resting(since_drain_s=since_drain_s, drain_s=drain_s)
                idle = pacing.idle_after(state, idle=idle, resting=resting)
        except Exception:
            log.exception("rescoring failed; the queue keeps the accounts for the next round")
            await asyncio.sleep(idle_s)
            continue
        if not rescored:
            if stopping and state is None:
                return
            await asyncio.sleep(idle_s)


def sweep_tick(now: datetime, interval_s: int) -> datetime:
    """The scheduled sweep ``now`` belongs to: every worker computes the same one."""
    stamp = int(now.timestamp()) // interval_s * interval_s
    return datetime.fromtimestamp(stamp, tz=UTC)


async def sweep_forever(engine: HealthEngine, *, interval_s: int, shards: int, clock: Callable[[], datetime]) -> None:
    """The live time-driven evaluation: at each tick, sweep at the current time; the shards of a tick are
    shared by every worker running this loop (see ``HealthEngine.sweep``)."""
    while True:
        now = clock()
        tick = sweep_tick(now, interval_s)
        try:
            report = await engine.sweep(now, shards=shards, tick=tick)
            if report.shards:
                log.info(
                    "sweep %s: %d accounts in %d shards, %.1f s", tick, report.accounts, report.shards, report.seconds
                )
        except Exception:
            log.exception("sweep %s failed; the next tick retries", tick)
        next_tick = tick.timestamp() + interval_s
        await asyncio.sleep(max(1.0, next_tick - clock().timestamp()))
