"""Notifications delivered on a simulated portfolio replayed as lived, to real local servers: how many reach KAMs
per week, and how many are dated after the churn of an account they tell about.

Simulates a portfolio (``kamwatch simulate``), replays it as lived (sweep at every midnight) into a scratch
embedded PostgreSQL with the alerting in ``send`` mode, and runs ``kamwatch alerter``'s delivery beside it on
the replay's clock (before every sweep and after every batch): what is due goes to a local SMTP server and a
local Slack stand-in (tests/integration/servers.py), and every delivery is kept with its time. A delivery
"tells about" an account when its rendered content links to it or carries a button of one of its alerts.

    flock /tmp/kamwatch-bench.lock .venv/bin/python bench/notification_replay.py --accounts 300 --days 240

"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
from pydantic import SecretStr

from alerts.outbox import Rendered
from health_engine.config import load_scoring_config
from services.alerter.channel import Sender
from services.alerter.delivery import Alerter
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine, SweepReport
from services.flows.ingest import Pipeline
from services.flows.replay import replay_as_lived
from services.platform.database import Database, start_embedded
from services.platform.settings import Settings
from services.simulator.generator import simulate_to_dir
from tests.integration.servers import SlackStandIn, SmtpServer

_ACCOUNT_LINK = re.compile(r"/widget/accounts/([^/?\"\s&]+)")
_BUTTON_VALUE = re.compile(r"\"value\":\s*\"([^\"]+)\"")


@dataclass
class Delivery:
    at: datetime
    channel: str
    content: str


@dataclass
class Recording:
    """A sender that keeps what it delivers, and when (the alerter's clock), then hands it to the real one."""

    inner: Sender
    clock: Any
    deliveries: list[Delivery]

    @property
    def configured(self) -> bool:
        return self.inner.configured

    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None:
        await self.inner.send(channel, to, rendered, notification_ids)
        content = orjson.dumps(rendered.slack).decode() if rendered.slack is not None else ""
        if rendered.email is not None:
            content += rendered.email.text
        self.deliveries.append(Delivery(self.clock(), channel, content))


@dataclass
class DeliveringEngine(HealthEngine):
    """The engine of the replay, with the alerter delivering what is due at each step of the replay's time."""

    alerter: Alerter | None = None
    now: list[datetime] = field(default_factory=list)

    async def deliver(self, at: datetime) -> None:
        if self.alerter is None:
            return
        self.now[:] = [at]
        await self.alerter.check_escalations()
        await self.alerter.run_until_idle()

    async def sweep(self, as_of: datetime, **kwargs: Any) -> SweepReport:
        await self.deliver(as_of)
        return await super().sweep(as_of, **kwargs)

    async def rescore_pending(self, as_of: datetime, *, up_to_id: int | None = None) -> int:
        scored = await super().rescore_pending(as_of, up_to_id=up_to_id)
        await self.deliver(as_of)
        return scored


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    smtp, slack = SmtpServer().start(), SlackStandIn().start()
    try:
        started = time.perf_counter()
        summary = simulate_to_dir(workdir / "sim", args.accounts, args.kams, args.days, args.seed, args.start)
        url, server = start_embedded(workdir / "pgdata")
        settings = Settings(
            database_url=url,
            data_dir=workdir,
            slack_bot_token=SecretStr("xoxb-bench"),
            slack_api_base_url=slack.api_url,
            slack_signing_secret=SecretStr("bench"),
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            alerter_concurrency=1,
        )
        db = await Database.open(settings)
        deliveries: list[Delivery] = []
        try:
            await db.migrate()
            engine = DeliveringEngine(
                db, load_scoring_config(settings.scoring_config), on_scores=build_alerting(settings, notify="send")
            )
            alerter = Alerter.from_settings(db, settings, clock=lambda: engine.now[0])
            alerter.slack = Recording(alerter.slack, alerter.clock, deliveries)
            alerter.email = Recording(alerter.email, alerter.clock, deliveries)
            engine.alerter = alerter
            stats = await replay_as_lived(Pipeline(db), engine, summary.events_path, batch_size=5000)
            replayed = time.perf_counter()
            async with db.transaction() as conn:
                first, last = await conn.fetchrow("SELECT min(event_time), max(event_time) FROM raw_events")
                await engine.deliver(last)
                kams = await conn.fetchval("SELECT count(*) FROM kams")
                churns = {
                    r["account_id"]: r["at"]
                    for r in await conn.fetch(
                        "SELECT account_id, min(event_time) AS at FROM outcomes WHERE outcome = 'churned' "
                        "GROUP BY account_id"
                    )
                }
                account_of = {r["id"]: r["account_id"] for r in await conn.fetch("SELECT id, account_id FROM alerts")}
        finally:
            await db.close()
            server.cleanup()
    finally:
        smtp.stop()
        slack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def accounts_in(content: str) -> set[str]:
        found = {unquote(a) for a in _ACCOUNT_LINK.findall(content)}
        for value in _BUTTON_VALUE.findall(content):
            found.add(account_of.get(int(value), "") if value.isdigit() else value)
        return found - {""}

    by_channel: Counter[str] = Counter()
    after_churn: Counter[str] = Counter()
    late_accounts: set[str] = set()
    for d in deliveries:
        by_channel[d.channel] += 1
        late = {a for a in accounts_in(d.content) if a in churns and d.at > churns[a]}
        if late:
            after_churn[d.channel] += 1
            late_accounts |= late
    weeks = max((last - first).total_seconds() / (7 * 86400), 1e-9)
    return {
        "events": stats.lines,
        "kams": kams,
        "weeks": round(weeks, 1),
        "churned_accounts": len(churns),
        "replay_s": round(replayed - started, 1),
        "per_kam_week": {channel: n / (kams * weeks) for channel, n in sorted(by_channel.items())},
        "deliveries": dict(by_channel),
        "after_churn": dict(after_churn),
        "accounts_told_about_after_churn": len(late_accounts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=300)
    # The defaults of `kamwatch simulate`, but for the size.
    parser.add_argument("--kams", type=int, default=10)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    args = parser.parse_args()
    r = asyncio.run(run(args))
    print(f"{args.accounts} accounts, {r['kams']} KAMs, {args.days} days ({r['weeks']} weeks), {r['events']} events")
    print(f"simulate and replay with delivery: {r['replay_s']} s; {r['churned_accounts']} accounts churned")
    print("deliveries per KAM per week, by channel:")
    for channel, rate in r["per_kam_week"].items():
        print(f"  {channel:<13} {rate:.2f}  ({r['deliveries'][channel]} in all)")
    late = sum(r["after_churn"].values())
    print(
        f"deliveries dated after the churn of an account they tell about: {late} {r['after_churn']}"
        f" ({r['accounts_told_about_after_churn']} accounts)"
    )


if __name__ == "__main__":
    main()
