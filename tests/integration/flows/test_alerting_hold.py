"""The hold before auto-resolving, on real PostgreSQL through the engine's hook and the reconciliation: an alert
whose condition clears stays open; the condition coming back within the hold continues the same alert (no new
alert, no "cleared" note, no new digest item); staying clear past the hold resolves it once, dated the end of
the hold however late the evaluation that finds it. ``kamwatch alerts list`` shows it clearing meanwhile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alerts.repository.reports import AlertFilters
from services.cli.alert_actions import list_alerts
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import records
from tests.integration.scenario import SCORING, START, history, nps, rows, rules_with_hold

T1 = START + timedelta(days=100, hours=10)  # Wednesday 15 April 2026, noon in Paris
HOLD = timedelta(days=7)


async def detractor(db: Database) -> list[tuple[Any, ...]]:
    return await rows(
        db,
        "SELECT id, state, clearing_since, resolves_at, resolved_at, cleared_note_since FROM alerts "
        "WHERE rule = 'nps_detractor' ORDER BY id",
    )


async def news(db: Database) -> list[tuple[Any, ...]]:
    """What the KAM has been or will be sent, by kind (digest items are the alert ids in digests)."""
    return await rows(
        db, "SELECT kind, channel, alert_ids FROM notifications WHERE channel = 'email' ORDER BY kind, id"
    )


async def test_a_condition_back_within_the_hold_continues_the_alert_and_one_clear_past_it_resolves_once(
    db: Database, alert_settings: Settings
) -> None:
    hook = build_alerting(alert_settings, notify="send", config=rules_with_hold(HOLD.days))
    engine = HealthEngine(db, SCORING, on_scores=hook)
    pipeline = Pipeline(db, engine=engine)
    await pipeline.ingest(records(*history("acme", tier="key")), ingress="http", as_of=T1)

    # A detractor: a warning, in Léa's next digest (with the risk level it raises).
    await pipeline.ingest(records(nps(T1, 0)), ingress="http", as_of=T1 + timedelta(minutes=1))
    [(alert_id, state, *_)] = await detractor(db)
    assert state == "firing"
    told = await news(db)
    assert [kind for kind, _, ids in told if alert_id in ids] == ["digest"]
    opened = await rows(db, "SELECT count(*) FROM alerts")

    # Two days later a glowing answer: the condition clears, but the alert is held, unchanged, nothing sent.
    cleared = T1 + timedelta(days=2)
    await pipeline.ingest(records(nps(cleared, 10)), ingress="http", as_of=cleared)
    assert await detractor(db) == [(alert_id, "firing", cleared, cleared + HOLD, None, None)]
    assert await news(db) == told
    listed = {a["rule"]: a for a in await list_alerts(db, AlertFilters(account_id="acme"))}
    assert listed["nps_detractor"]["clearing_since"] == cleared.isoformat()
    assert listed["nps_detractor"]["resolves_at"] == (cleared + HOLD).isoformat()

    # Three days on (within the hold) a detractor again: the same alert simply goes on; no new alert, no
    # "cleared" note, no new digest item.
    back = cleared + timedelta(days=3)
    await pipeline.ingest(records(nps(back, 0)), ingress="http", as_of=back)
    assert await detractor(db) == [(alert_id, "firing", None, None, None, None)]
    assert await news(db) == told
    assert await rows(db, "SELECT count(*) FROM alerts") == opened
    assert await rows(db, "SELECT count(*) FROM alert_transitions WHERE alert_id = :i", i=alert_id) == [(1,)]

    # Clear again; the midnight sweeps keep it open for the whole hold...
    again = back + timedelta(days=1)
    await pipeline.ingest(records(nps(again, 10)), ingress="http", as_of=again)
    midnight = again.replace(hour=0, minute=0) + timedelta(days=1)
    for day in range(6):
        await engine.sweep(midnight + timedelta(days=day), shards=1)
        assert await detractor(db) == [(alert_id, "firing", again, again + HOLD, None, None)]
    assert await news(db) == told

    # ...and the first evaluation past it resolves the alert, dated the end of the hold (not the sweep's time);
    # its "cleared" note is owed from then.
    await engine.sweep(midnight + timedelta(days=7), shards=1)
    end = again + HOLD
    assert midnight + timedelta(days=7) > end
    assert await detractor(db) == [(alert_id, "resolved", again, again + HOLD, end, end)]
    assert await rows(
        db, "SELECT from_state, to_state, at FROM alert_transitions WHERE alert_id = :i ORDER BY id", i=alert_id
    ) == [(None, "firing", T1 + timedelta(minutes=1)), ("firing", "resolved", end)]

    # Resolved once: later evaluations open nothing, resolve nothing again.
    await engine.sweep(midnight + timedelta(days=8), shards=1)
    assert len(await detractor(db)) == 1
    assert await rows(
        db, "SELECT count(*) FROM alert_transitions WHERE to_state = 'resolved' AND alert_id = :i", i=alert_id
    ) == [(1,)]
