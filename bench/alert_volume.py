"""Alerting on a simulated portfolio: how many notifications KAMs would get, and how early churners are flagged.

Simulates a portfolio, replays it as lived (sweep at every midnight) into a scratch embedded PostgreSQL with
the alerting hook in ``notify="file"`` mode (alerts and their planned delivery are recorded, every message is
rendered and written to a file instead of being sent), then reports from that file, the alerts table and the
outcomes:

- notifications per KAM per week: immediate messages (one per account and instant, whatever the number of
  alerts it carries) and daily digests, and the alerts behind each;
- share of churned accounts alerted at least 30 days before their churn (an alert opened within the lookback
  window before that);
- share of immediate alerts on accounts that later churned or downgraded;
- the acceptance figures of ``alerts.early_warning``: losses (churned or downgraded) alerted at least 30 days
  ahead and the ceiling (losses the simulator announced with no signal at all), median lead time, healthy
  accounts alerted and paged, each rule's precision and share of the recall (digest-only rules say so).

    .venv/bin/python bench/alert_volume.py --accounts 200 --kams 8 --days 240 --seed 7

"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from alerts.config import load_rules_config
from alerts.early_warning import AlertRecord, Messages, Outcome, early_warning, report_lines
from health_engine.config import load_scoring_config
from services.flows.alerting import build_alerting
from services.flows.backtesting import stored_outcomes
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.flows.replay import replay_as_lived
from services.platform.database import Database, start_embedded
from services.platform.settings import Settings
from services.simulator.generator import plan_portfolio, simulate_to_dir

# When each alert was opened: its first transition (fired_at may be earlier, when the condition began).
_OPENED = "(SELECT min(t.at) FROM alert_transitions t WHERE t.alert_id = al.id AND t.from_state IS NULL)"

_VOLUME_SQL = """
SELECT
    count(DISTINCT (ac.owner_kam_id, al.account_id, al.last_notified_at)) FILTER (WHERE al.delivery = 'immediate')
        AS immediate_messages,
    count(*) FILTER (WHERE al.delivery = 'immediate') AS immediate_alerts,
    count(DISTINCT (ac.owner_kam_id, al.last_notified_at)) FILTER (WHERE al.delivery = 'digest') AS digests,
    count(*) FILTER (WHERE al.delivery = 'digest') AS digest_alerts,
    count(*) FILTER (WHERE al.delivery = 'folded') AS folded_alerts,
    count(*) AS alerts,
    count(*) FILTER (WHERE al.cleared_note_at IS NOT NULL) AS cleared_notes_sent,
    count(*) FILTER (WHERE al.cleared_note_since IS NOT NULL AND al.cleared_note_at IS NULL) AS cleared_notes_waiting,
    COALESCE(extract(epoch FROM max(al.cleared_note_at - al.cleared_note_since)) / 86400, 0)::float8
        AS cleared_note_max_wait_days
FROM alerts al JOIN accounts ac USING (account_id)
"""

_CHURN_SQL = f"""
WITH churn AS (
    SELECT account_id, min(event_time) AS at FROM outcomes WHERE outcome = 'churned' GROUP BY account_id
)
SELECT count(*) AS churners,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM alerts al
           WHERE al.account_id = c.account_id AND al.delivery IS NOT NULL
             AND {_OPENED} <= c.at - make_interval(days => $1)
             AND {_OPENED} >= c.at - make_interval(days => $2)
       )) AS alerted_early
FROM churn c
"""

_ALERTS_SQL = f"""
SELECT al.account_id, al.rule, {_OPENED} AS opened_at, al.delivery FROM alerts al ORDER BY al.id
"""

_PRECISION_SQL = f"""
SELECT count(*) AS immediate,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM outcomes o
           WHERE o.account_id = al.account_id AND o.outcome IN ('churned', 'downgraded') AND o.event_time > {_OPENED}
       )) AS on_losses
FROM alerts al WHERE al.delivery = 'immediate'
"""

# Flapping: an alert opened on the same key (account, rule, subject) as one resolved less than $1 days before.
_BY_RULE_SQL = f"""
SELECT rule, count(*) AS alerts, count(*) FILTER (WHERE delivery = 'immediate') AS immediate,
       count(*) FILTER (WHERE delivery = 'digest') AS digest,
       count(*) FILTER (WHERE delivery = 'digest' AND EXISTS (
           SELECT 1 FROM alerts p
           WHERE p.dedup_key = al.dedup_key AND p.id <> al.id AND p.resolved_at <= {_OPENED}
             AND p.resolved_at > {_OPENED} - make_interval(days => $1)
       )) AS digest_reopened
FROM alerts al GROUP BY rule ORDER BY alerts DESC
"""


def count_messages(path: Path) -> Counter[str]:
    """Messages KAMs would have received, by kind, from what the alerting wrote instead of sending: one per
    recipient, time and alerts, whatever the number of channels it goes by; the parts of a digest (new alerts,
    cleared ones) are one message, as the alerter sends them; team-channel posts apart."""
    seen: set[tuple[str, str, str, tuple[int, ...]]] = set()
    counts: Counter[str] = Counter()
    with_news: set[tuple[str, str, str, tuple[int, ...]]] = set()  # digests carrying new alerts, not only cleared
    if not path.exists():
        return counts
    with path.open("rb") as lines:
        for line in lines:
            doc = orjson.loads(line)
            if doc["channel"] == "team_channel":
                counts["team_channel"] += 1
                continue
            kind = "digest" if doc.get("format") == "digest" else doc["kind"]
            alert_ids = () if kind == "digest" else tuple(doc["alert_ids"])
            key = (kind, doc["recipient"], doc["send_after"], alert_ids)
            if key not in seen:
                seen.add(key)
                counts[kind] += 1
            if kind == "digest" and doc["kind"] == "digest":
                with_news.add(key)
    counts["digest with new alerts"] = len(with_news)
    return counts


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    try:
        started = time.perf_counter()
        summary = simulate_to_dir(workdir / "sim", args.accounts, args.kams, args.days, args.seed, args.start)
        url, server = start_embedded(workdir / "pgdata")
        settings = Settings(database_url=url, data_dir=workdir)
        db = await Database.open(settings)
        try:
            await db.migrate()
            messages_file = workdir / "notifications.ndjson"
            hook = build_alerting(settings, notify="file", file=messages_file)
            engine = HealthEngine(db, load_scoring_config(settings.scoring_config), on_scores=hook)
            simulated = time.perf_counter()
            stats = await replay_as_lived(Pipeline(db), engine, summary.events_path, batch_size=5000)
            replayed = time.perf_counter()
            async with db.transaction() as conn:
                first, last = await conn.fetchrow("SELECT min(event_time), max(event_time) FROM raw_events")
                kams = await conn.fetchval("SELECT count(DISTINCT owner_kam_id) FROM accounts")
                volume = dict(await conn.fetchrow(_VOLUME_SQL))
                churn = dict(await conn.fetchrow(_CHURN_SQL, args.lead_days, args.lookback_days))
                precision = dict(await conn.fetchrow(_PRECISION_SQL))
                by_rule = [dict(r) for r in await conn.fetch(_BY_RULE_SQL, args.flap_days)]
                records = [AlertRecord(*r) for r in await conn.fetch(_ALERTS_SQL)]
                outcomes = {a: Outcome(o.time, o.outcome) for a, o in (await stored_outcomes(conn)).items()}
                accounts = [r[0] for r in await conn.fetch("SELECT account_id FROM accounts")]
                end = await conn.fetchval("SELECT max(event_time) FROM raw_events")
            messages = count_messages(messages_file)
            if args.messages is not None and messages_file.exists():
                shutil.copyfile(messages_file, args.messages)
        finally:
            await db.close()
            server.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    weeks = max((last - first).total_seconds() / (7 * 86400), 1e-9)
    per_kam_week = max(kams, 1) * weeks
    rules = load_rules_config(settings.alert_rules)
    plan = plan_portfolio(args.accounts, args.kams, args.days, args.seed, args.start)
    figures = early_warning(
        records,
        outcomes,
        accounts,
        end=end,
        messages=Messages(
            messages.get("immediate", 0), messages.get("digest", 0), per_kam_week, messages["digest with new alerts"]
        ),
        digest_only=rules.digest_only_rules(),
        unannounced=[a.account_id for a in plan.accounts if a.unannounced_loss],
        lead_days=args.lead_days,
        window_days=args.lookback_days,
    )
    return {
        "figures": figures,
        "records": records,
        "events": stats.lines,
        "kams": kams,
        "weeks": round(weeks, 1),
        "simulate_s": round(simulated - started, 1),
        "replay_s": round(replayed - simulated, 1),
        "messages_per_kam_week": {kind: n / per_kam_week for kind, n in messages.items()},
        "immediate_messages_per_kam_week": volume["immediate_messages"] / per_kam_week,
        "immediate_alerts_per_kam_week": volume["immediate_alerts"] / per_kam_week,
        "digests_per_kam_week": volume["digests"] / per_kam_week,
        "digest_alerts_per_kam_week": volume["digest_alerts"] / per_kam_week,
        "folded_alerts": volume["folded_alerts"],
        "cleared_notes_sent": volume["cleared_notes_sent"],
        "cleared_notes_waiting": volume["cleared_notes_waiting"],
        "cleared_note_max_wait_days": volume["cleared_note_max_wait_days"],
        "alerts": volume["alerts"],
        "churners": churn["churners"],
        "churners_alerted_early": churn["alerted_early"],
        "churners_alerted_early_share": churn["alerted_early"] / churn["churners"] if churn["churners"] else None,
        "immediate_alerts": precision["immediate"],
        "immediate_on_later_losses_share": (
            precision["on_losses"] / precision["immediate"] if precision["immediate"] else None
        ),
        "by_rule": by_rule,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--kams", type=int, default=40)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 6))
    parser.add_argument("--lead-days", type=int, default=30, help="How early a churner must be alerted.")
    parser.add_argument("--lookback-days", type=int, default=180, help="Older alerts do not count for a churn.")
    parser.add_argument(
        "--flap-days", type=int, default=14, help="A digest alert re-opened this soon after resolving: a flap."
    )
    parser.add_argument("--messages", type=Path, help="Keep the rendered messages (NDJSON) in this file.")
    parser.add_argument("--alerts-out", type=Path, help="Keep the alerts (account, rule, opened, delivery) as JSON.")
    args = parser.parse_args()
    r = asyncio.run(run(args))
    print(f"{args.accounts} accounts, {r['kams']} KAMs, {args.days} days ({r['weeks']} weeks), {r['events']} events")
    print(f"simulate {r['simulate_s']} s, replay with alerting {r['replay_s']} s")
    print("messages per KAM per week, as the alerting would have sent them:")
    for kind in ("immediate", "digest", "digest with new alerts", "reminder", "escalation", "resolved", "team_channel"):
        print(f"  {kind:<23} {r['messages_per_kam_week'].get(kind, 0.0):.2f}")
    print("per KAM per week, from the alerts' last notification:")
    immediate, immediate_alerts = r["immediate_messages_per_kam_week"], r["immediate_alerts_per_kam_week"]
    print(f"  immediate messages  {immediate:.2f}  ({immediate_alerts:.2f} alerts)")
    print(f"  digests             {r['digests_per_kam_week']:.2f}  ({r['digest_alerts_per_kam_week']:.2f} alerts)")
    print(f"  alerts in all: {r['alerts']}, of which folded into a critical one: {r['folded_alerts']}")
    print(
        f"cleared notes sent: {r['cleared_notes_sent']} (longest wait {r['cleared_note_max_wait_days']:.1f} days), "
        f"still waiting at the end: {r['cleared_notes_waiting']}"
    )
    share = r["churners_alerted_early_share"]
    print(
        f"churners alerted >= {args.lead_days} days ahead (alert within {args.lookback_days} days before the churn): "
        f"{r['churners_alerted_early']}/{r['churners']}" + (f" = {share:.2f}" if share is not None else "")
    )
    losses = r["immediate_on_later_losses_share"]
    print(
        "immediate alerts on accounts that later churned or downgraded: "
        + (f"{losses:.2f} of {r['immediate_alerts']}" if losses is not None else "no immediate alert")
    )
    print(f"alerts by rule (all / immediate / digest, of which re-opened within {args.flap_days} days of resolving):")
    for row in r["by_rule"]:
        print(
            f"  {row['rule']:<24} {row['alerts']:>6} {row['immediate']:>6}"
            f" {row['digest']:>6} {row['digest_reopened']:>6}"
        )
    reopened = sum(row["digest_reopened"] for row in r["by_rule"])
    print(f"digest alerts re-opened within {args.flap_days} days of resolving: {reopened}")
    print("\n".join(report_lines(r["figures"], lead_days=args.lead_days, window_days=args.lookback_days)))
    if args.alerts_out is not None:
        rows = [[a.account_id, a.rule, a.opened_at.isoformat(), a.delivery] for a in r["records"]]
        args.alerts_out.write_bytes(orjson.dumps(rows))


if __name__ == "__main__":
    main()
