"""The health engine on a real PostgreSQL: event-driven rescoring, the time-driven sweep and its sharding,
history rows, replay with the as-of clock against a live run, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from health_engine.config import load_scoring_config
from health_engine.repository import QueueState, claim_shard, drain_rescore_queue
from ingestion.parsing import parse_event
from services.flows.evaluation import HealthEngine, RescorePacing, SweepReport, rescore_forever
from services.flows.ingest import Pipeline
from services.flows.replay import next_midnight, replay_as_lived
from services.platform.database import Database, driver_connection
from services.platform.settings import Settings
from services.simulator.generator import simulate_to_dir
from tests.configs import SCORING_PATH
from tests.dbutil import cloned_database
from tests.events import event, records

CONFIG = load_scoring_config(SCORING_PATH)
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def engine_of(db: Database) -> HealthEngine:
    return HealthEngine(db, CONFIG)


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


def account(subject: str, moment: datetime, tier: str = "strategic") -> dict[str, Any]:
    data = {"name": subject.title(), "owner_kam_id": "kam-1", "arr": "100000", "currency": "EUR", "tier": tier}
    return event("account", subject, moment, data)


def busy_history(subject: str, days: int) -> list[dict[str, Any]]:
    """A regular account: a profile, a champion and a sponsor, 30 units of usage by 3 users every day."""
    history = [
        account(subject, START),
        event("contact_change", subject, START, {"contact_id": "c1", "change": "added", "role": "champion"}),
        event("contact_change", subject, START, {"contact_id": "c2", "change": "added", "role": "executive_sponsor"}),
        event("contact_change", subject, START, {"contact_id": "c3", "change": "added", "role": "decision_maker"}),
    ]
    for day in range(days):
        for user in range(3):
            moment = START + timedelta(days=day, hours=9 + user)
            history.append(event("usage", subject, moment, {"quantity": 10, "user_id": f"u{user}"}))
    return history


async def test_an_ingested_batch_rescores_the_accounts_it_touched(db: Database) -> None:
    pipeline = Pipeline(db, engine=engine_of(db))
    as_of = START + timedelta(days=70)
    await pipeline.ingest(records(*busy_history("acme", 70)), ingress="http", as_of=as_of)
    [(risk, level, stored_as_of)] = await rows(db, "SELECT risk, level, as_of FROM account_health")
    assert (level, stored_as_of) == ("low", as_of)

    departure = {"contact_id": "c1", "change": "left_company", "role": "champion", "name": "Claire Martin"}
    result = await pipeline.ingest(
        records(event("contact_change", "acme", as_of, departure)), ingress="http", as_of=as_of + timedelta(minutes=1)
    )
    assert result.touched_accounts == {"acme"}
    [(new_risk, new_level, drivers)] = await rows(db, "SELECT risk, level, drivers FROM account_health")
    assert new_level in ("high", "critical")
    assert new_risk > risk
    champion = next(d for d in drivers if d["code"] == "relationship.champion_left")
    assert "Claire Martin" in champion["message_en"]
    assert "Claire Martin" in champion["message_fr"]
    history = await rows(db, "SELECT level, trigger FROM account_health_history ORDER BY as_of")
    assert history == [("low", "event"), (new_level, "event")]
    assert await rows(db, "SELECT count(*) FROM rescore_queue") == [(0,)]


async def test_events_for_an_account_without_profile_wait_for_it(db: Database) -> None:
    pipeline = Pipeline(db, engine=engine_of(db))
    usage = event("usage", "newco", START, {"quantity": 1})
    await pipeline.ingest(records(usage), ingress="http", as_of=START)
    assert await rows(db, "SELECT count(*) FROM account_health") == [(0,)]
    await pipeline.ingest(records(account("newco", START)), ingress="http", as_of=START)
    assert await rows(db, "SELECT account_id FROM account_health") == [("newco",)]


async def test_the_sweep_notices_silence_that_no_event_announces(db: Database) -> None:
    engine = engine_of(db)
    last_activity = START + timedelta(days=69)
    await Pipeline(db, engine=engine).ingest(records(*busy_history("acme", 70)), ingress="http", as_of=last_activity)
    assert await rows(db, "SELECT level FROM account_health") == [("low",)]

    report = await engine.sweep(last_activity + timedelta(days=25), shards=4)
    assert (report.accounts, report.shards) == (1, 4)
    [(level, drivers)] = await rows(db, "SELECT level, drivers FROM account_health")
    silent = next(d for d in drivers if d["code"] == "usage.silent")
    assert silent["evidence"]["days_since_activity"] == 25
    assert level != "low"
    assert await rows(db, "SELECT trigger FROM account_health_history ORDER BY as_of") == [("event",), ("sweep",)]


async def test_a_sweep_tick_is_shared_by_workers_without_overlap(db: Database, settings: Settings) -> None:
    history = [e for n in range(40) for e in busy_history(f"acc-{n:02d}", 3)]
    await Pipeline(db).ingest(records(*history), ingress="http")
    other = await Database.open(settings)
    try:
        first, second = engine_of(db), HealthEngine(other, CONFIG, worker_name="second")
        tick = START + timedelta(days=10)
        reports = await asyncio.gather(first.sweep(tick, shards=8), second.sweep(tick, shards=8))
    finally:
        await other.close()
    assert sum(r.accounts for r in reports) == 40
    assert sum(r.shards for r in reports) == 8
    assert await rows(db, "SELECT count(*), count(DISTINCT account_id) FROM account_health_history") == [(40, 40)]
    assert await rows(db, "SELECT count(*), sum(accounts) FROM sweep_runs") == [(8, 40)]
    again = await first.sweep(tick, shards=8)  # the same tick once more: already done
    assert (again.shards, again.accounts) == (0, 0)


class WorkerDied(Exception):
    pass


async def test_a_busy_shard_is_skipped_first_then_taken_over_from_a_worker_that_died(
    db: Database, settings: Settings
) -> None:
    history = [e for n in range(40) for e in busy_history(f"acc-{n:02d}", 3)]
    await Pipeline(db).ingest(records(*history), ingress="http")
    tick = START + timedelta(days=10)
    doomed = await Database.open(settings)
    sweep: asyncio.Task[SweepReport] | None = None

    async def hold_shard_0_then_die() -> None:
        nonlocal sweep
        async with doomed.unit_of_work() as sa_conn:
            holder = await driver_connection(sa_conn)
            assert await claim_shard(holder, tick, 0, "doomed", wait=False) == "taken"
            sweep = asyncio.create_task(engine_of(db).sweep(tick, shards=8))
            # Every other shard is swept while shard 0 is held: nobody queues behind the busy one.
            for _ in range(200):
                if await rows(db, "SELECT count(*) FROM sweep_runs") == [(7,)]:
                    break
                await asyncio.sleep(0.05)
            assert await rows(db, "SELECT count(*) FROM sweep_runs") == [(7,)]
            assert not sweep.done()
            raise WorkerDied  # its transaction rolls back, claim included

    try:
        with pytest.raises(WorkerDied):
            await hold_shard_0_then_die()
    finally:
        await doomed.close()
    assert sweep is not None
    report = await sweep
    assert (report.shards, report.accounts) == (8, 40)
    assert await rows(db, "SELECT count(DISTINCT worker), sum(accounts) FROM sweep_runs") == [(1, 40)]


async def test_rescorers_claim_disjoint_shards_of_the_queue_and_a_failed_one_comes_back(
    db: Database, settings: Settings
) -> None:
    await Pipeline(db).ingest(records(*(account(f"acc-{n:02d}", START) for n in range(40))), ingress="http")
    everyone = {f"acc-{n:02d}" for n in range(40)}
    other = await Database.open(settings)
    try:
        async with db.unit_of_work() as first_sa, other.unit_of_work() as second_sa:
            first, second = await driver_connection(first_sa), await driver_connection(second_sa)
            mine = await drain_rescore_queue(first, up_to_id=2**62)
            theirs = await drain_rescore_queue(second, up_to_id=2**62)  # while the first still holds its shard
            assert mine
            assert theirs
            assert not set(mine) & set(theirs)
            queued = {a for (ids,) in await second.fetch("SELECT account_ids FROM rescore_queue") for a in ids}
            assert queued == everyone - set(theirs)  # the first's removal is not committed yet
            raise WorkerDied  # both roll back
    except WorkerDied:
        pass
    finally:
        await other.close()
    assert await rows(db, "SELECT DISTINCT unnest(account_ids) FROM rescore_queue ORDER BY 1") == [
        (a,) for a in sorted(everyone)
    ]


async def test_ingestion_that_answers_after_rescoring_does_so_even_when_another_rescorer_holds_the_shard(
    db: Database, settings: Settings
) -> None:
    await Pipeline(db).ingest(records(account("acme", START)), ingress="http")
    other = await Database.open(settings)
    try:
        async with other.unit_of_work() as sa_conn:
            holder = await driver_connection(sa_conn)
            assert await drain_rescore_queue(holder, up_to_id=2**62) == ["acme"]  # its shard is held, unscored
            departure = {"contact_id": "c1", "change": "left_company", "role": "champion"}
            result = await Pipeline(db, engine=engine_of(db)).ingest(
                records(event("contact_change", "acme", START + timedelta(hours=1), departure)),
                ingress="http",
                as_of=START + timedelta(days=1),
            )
            assert result.touched_accounts == {"acme"}
            assert await rows(db, "SELECT account_id, as_of FROM account_health") == [
                ("acme", START + timedelta(days=1))
            ]
    finally:
        await other.close()


async def test_two_rescorers_at_once_score_every_queued_account_once(db: Database, settings: Settings) -> None:
    await Pipeline(db).ingest(records(*(account(f"acc-{n:02d}", START) for n in range(40))), ingress="http")
    other = await Database.open(settings)
    try:
        scored = await asyncio.gather(
            engine_of(db).rescore_pending(START + timedelta(days=1)),
            engine_of(other).rescore_pending(START + timedelta(days=1)),
        )
    finally:
        await other.close()
    assert sum(scored) == 40
    assert await rows(db, "SELECT count(*), count(DISTINCT account_id) FROM account_health_history") == [(40, 40)]
    assert await rows(db, "SELECT count(*) FROM rescore_queue") == [(0,)]


@pytest.mark.parametrize(
    ("idle", "oldest_s", "newest_s", "since_drain_s", "drain_s", "due"),
    [
        (True, 0.0, 0.0, 60.0, 0.05, True),  # idle: an isolated event is scored as soon as it is seen
        (False, 2.0, 0.1, 60.0, 0.05, False),  # under load: batches still coming, the burst is left to settle
        (False, 5.0, 3.0, 60.0, 0.05, True),  # settled
        (False, 30.0, 0.1, 60.0, 0.05, True),  # still coming, but the oldest has waited long enough
        (True, 0.0, 0.0, 0.2, 0.05, False),  # resting after a drain: nine times its 50 ms
        (True, 0.0, 0.0, 0.5, 0.05, True),
        (False, 9.0, 4.0, 10.0, 2.0, False),  # settled, but a 2 s drain asks 18 s of rest
        (False, 30.0, 4.0, 10.0, 2.0, True),  # never longer than max_delay_s
    ],
)
def test_the_live_rescorer_is_paced_by_load(
    idle: bool, oldest_s: float, newest_s: float, since_drain_s: float, drain_s: float, due: bool
) -> None:
    state = QueueState(last_id=9, oldest_s=oldest_s, newest_s=newest_s)
    pacing = RescorePacing(settle_s=3.0, max_delay_s=30.0, pace=9.0)
    assert pacing.due(state, idle=idle, since_drain_s=since_drain_s, drain_s=drain_s) is due


@pytest.mark.parametrize(
    ("queued", "idle", "resting", "idle_after"),
    [
        (False, False, False, True),  # an empty queue: idle
        (False, False, True, True),
        (True, True, True, True),  # first seen while resting after an empty look: an isolated arrival
        (True, False, True, False),  # still there from before the rest: a burst
        (True, False, False, False),
    ],
)
def test_work_seen_while_resting_after_an_empty_look_is_no_burst(
    queued: bool, idle: bool, resting: bool, idle_after: bool
) -> None:
    state = QueueState(last_id=9, oldest_s=0.1, newest_s=0.1) if queued else None
    assert RescorePacing.idle_after(state, idle=idle, resting=resting) is idle_after


async def test_an_idle_rescorer_scores_at_once_and_a_resting_one_leaves_the_queue_be(
    db: Database, settings: Settings
) -> None:
    async def scored(account_id: str) -> bool:
        return await rows(db, f"SELECT count(*) FROM account_health WHERE account_id = '{account_id}'") == [(1,)]

    rescorer = asyncio.create_task(
        rescore_forever(
            engine_of(db),
            clock=lambda: START + timedelta(days=1),
            idle_s=0.05,
            # any drain, then a minute of rest
            pacing=RescorePacing.from_settings(
                settings.model_copy(update={"rescore_pace": 1000.0, "rescore_max_delay_s": 60.0})
            ),
        )
    )
    try:
        await Pipeline(db).ingest(records(account("acme", START)), ingress="http")
        # idle: scored at once, well before the 3 s a settle delay would take
        for _ in range(40):
            if await scored("acme"):
                break
            await asyncio.sleep(0.05)
        assert await scored("acme")

        await Pipeline(db).ingest(records(account("globex", START)), ingress="http")
        await asyncio.sleep(0.5)  # resting: the new batch waits in the queue
        assert await rows(db, "SELECT DISTINCT unnest(account_ids) FROM rescore_queue") == [("globex",)]
        assert not await scored("globex")
    finally:
        rescorer.cancel()


async def test_a_drain_takes_what_was_queued_when_it_began_not_what_arrives_meanwhile(db: Database) -> None:
    await Pipeline(db).ingest(records(account("acme", START)), ingress="http")
    state = await engine_of(db).queue_state()
    assert state is not None
    await Pipeline(db).ingest(records(account("globex", START)), ingress="http")
    assert await engine_of(db).rescore_pending(START + timedelta(days=1), up_to_id=state.last_id) == 1
    assert await rows(db, "SELECT account_id FROM account_health") == [("acme",)]
    assert await rows(db, "SELECT DISTINCT unnest(account_ids) FROM rescore_queue") == [("globex",)]


async def test_history_keeps_one_row_per_change_and_one_per_day(db: Database) -> None:
    engine = engine_of(db)
    await Pipeline(db).ingest(records(*busy_history("acme", 70)), ingress="http")
    day = START + timedelta(days=70)
    for hours in (0, 6, 12):  # same day, nothing changes
        await engine.rescore(["acme"], day + timedelta(hours=hours))
    await engine.rescore(["acme"], day + timedelta(days=1))  # a new day: a row even without change
    await engine.rescore(["acme"], day - timedelta(days=3))  # older than the current score: ignored
    history = await rows(db, "SELECT as_of FROM account_health_history ORDER BY as_of")
    assert history == [(day,), (day + timedelta(days=1),)]
    assert await rows(db, "SELECT as_of FROM account_health") == [(day + timedelta(days=1),)]


async def test_an_unchanged_score_only_moves_its_time_and_a_changed_one_is_rewritten(db: Database) -> None:
    engine = engine_of(db)
    await Pipeline(db).ingest(records(*busy_history("acme", 70)), ingress="http")
    day = START + timedelta(days=70)
    current = "SELECT as_of, drivers, fingerprint FROM account_health"
    await engine.rescore(["acme"], day)
    [(_, drivers, fingerprint)] = await rows(db, current)
    assert drivers == []  # a healthy account
    assert fingerprint
    # Mark the stored drivers: an evaluation that rewrote the row would put them back.
    async with db.unit_of_work() as conn:
        await conn.execute(text("UPDATE account_health SET drivers = '[\"untouched\"]'"))

    await engine.rescore(["acme"], day + timedelta(hours=6))  # the same score, later
    assert await rows(db, current) == [(day + timedelta(hours=6), ["untouched"], fingerprint)]

    leaving = {"contact_id": "c1", "change": "left_company", "role": "champion"}
    await Pipeline(db).ingest(
        records(event("contact_change", "acme", day + timedelta(hours=7), leaving)), ingress="http"
    )
    await engine.rescore(["acme"], day + timedelta(hours=8))
    [(as_of, new_drivers, new_fingerprint)] = await rows(db, current)
    assert as_of == day + timedelta(hours=8)
    assert "relationship.champion_left" in {d["code"] for d in new_drivers}
    assert new_fingerprint != fingerprint


def sim_history(tmp_path: Path) -> Path:
    summary = simulate_to_dir(tmp_path / "sim", 12, 2, 75, 11, date(2026, 1, 1))
    return summary.events_path


async def test_replay_as_lived_gives_the_history_of_a_live_run(server_url: str, tmp_path: Path) -> None:
    path = sim_history(tmp_path)
    lines = [line for line in path.read_bytes().splitlines() if line]
    query = (
        "SELECT account_id, as_of, risk, level, components, driver_codes FROM account_health_history "
        "WHERE trigger = 'sweep' ORDER BY 1, 2"
    )
    async with cloned_database(server_url) as url:
        replayed = await Database.open(Settings(database_url=url))
        try:
            engine = engine_of(replayed)
            await replay_as_lived(Pipeline(replayed), engine, path, batch_size=700)
            replay_history = await rows(replayed, query)
            replay_current = await rows(replayed, "SELECT * FROM account_health ORDER BY 1")
            # Replaying the same file again changes nothing: every event is a duplicate.
            again = await replay_as_lived(Pipeline(replayed), engine, path, batch_size=700)
            assert again.accepted == 0
            assert again.duplicates == len(lines)
            assert await rows(replayed, query) == replay_history
        finally:
            await replayed.close()

    async with cloned_database(server_url) as url:
        live = await Database.open(Settings(database_url=url))
        try:
            # Live: events arrive one hour-slice at a time, each rescored at its arrival; the worker's
            # sweep runs at midnight.
            engine = engine_of(live)
            pipeline = Pipeline(live, engine=engine)
            times = [parse_event(line).time for line in lines]
            midnight = next_midnight(times[0])
            pending: list[bytes] = []
            for line, moment in zip(lines, times, strict=True):
                while moment >= midnight:
                    await pipeline.ingest([*records(*pending)], ingress="kafka", as_of=midnight - timedelta(seconds=1))
                    pending = []
                    await engine.sweep(midnight, shards=3)
                    midnight += timedelta(days=1)
                pending.append(line)
            await pipeline.ingest([*records(*pending)], ingress="kafka", as_of=max(times))
            assert await rows(live, query) == replay_history
            live_current = await rows(live, "SELECT * FROM account_health ORDER BY 1")
        finally:
            await live.close()
    assert [r[0] for r in live_current] == [r[0] for r in replay_current]
    assert len(replay_history) >= 12 * 70
    levels = {r[3] for r in replay_history}
    assert "low" in levels
    assert levels & {"medium", "high", "critical"}


def test_next_midnight_is_utc() -> None:
    assert next_midnight(datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == datetime(2026, 3, 2, tzinfo=UTC)
    paris = datetime.fromisoformat("2026-03-02T00:30:00+01:00")  # still March 1st in UTC
    assert next_midnight(paris) == datetime(2026, 3, 2, tzinfo=UTC)


async def test_the_live_rescorer_drains_what_ingestion_queued(db: Database) -> None:
    await Pipeline(db).ingest(records(*busy_history("acme", 10), *busy_history("globex", 10)), ingress="kafka")
    as_of = START + timedelta(days=10)
    rescorer = asyncio.create_task(rescore_forever(engine_of(db), clock=lambda: as_of, idle_s=0.05))
    try:
        for _ in range(200):
            if await rows(db, "SELECT count(*) FROM rescore_queue") == [(0,)]:
                break
            await asyncio.sleep(0.05)
    finally:
        rescorer.cancel()
    assert await rows(db, "SELECT account_id, as_of FROM account_health ORDER BY 1") == [
        ("acme", as_of),
        ("globex", as_of),
    ]
