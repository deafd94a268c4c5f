"""The demo's live stream: background usage across the portfolio, and accounts going downhill in real time."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import orjson
from sqlalchemy import text

from ingestion.parsing import InboundRecord
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database

LIVE_SOURCE: Final = "kamwatch/demo"
_BACKGROUND_EVENTS_PER_TICK: Final = 4
_DECLINE_TICKS: Final = 20
TICK_SECONDS: Final = 0.5


def say(message: str) -> None:
    print(message, flush=True)


def today(clock: Callable[[], datetime]) -> date:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the demo clock must return aware datetimes")
    return now.date()


@dataclass
class LiveStream:
    """Background usage across the portfolio, and three accounts going downhill for everyone to see."""

    pipeline: Pipeline
    clock: Callable[[], datetime]
    rng: random.Random
    pool: list[str]
    victims: list[str]
    champions: dict[str, str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    sent: int = 0
    accepted: int = 0
    tick: int = 0

    @classmethod
    async def prepare(
        cls, db: Database, engine: HealthEngine, *, seed: int, clock: Callable[[], datetime]
    ) -> LiveStream:
        async with db.unit_of_work() as conn:
            pool = list(
                (
                    await conn.execute(
                        text(
                            "SELECT account_id FROM accounts a WHERE NOT EXISTS (SELECT FROM outcomes o "
                            "WHERE o.account_id = a.account_id AND o.outcome = 'churned') ORDER BY 1"
                        )
                    )
                ).scalars()
            )
            rows = await conn.execute(
                text("SELECT account_id, min(contact_id) FROM contacts WHERE role = 'champion' AND active GROUP BY 1")
            )
            champions = {str(account): str(contact) for account, contact in rows}
        rng = random.Random(seed)
        with_champion = [account for account in pool if account in champions]
        victims = rng.sample(with_champion if len(with_champion) >= 3 else pool, min(3, len(pool)))
        return cls(Pipeline(db, clock=clock, engine=engine), clock, rng, pool, victims, champions)

    def event(self, type_: str, subject: str, data: dict[str, Any]) -> bytes:
        self.sent += 1
        document = {
            "specversion": "1.0",
            "id": f"live-{self.run_id}-{self.sent}",
            "source": LIVE_SOURCE,
            "type": f"kamwatch.{type_}.v1",
            "subject": subject,
            "time": _aware(self.clock()).isoformat(),
            "data": data,
        }
        return orjson.dumps(document)

    def batch(self) -> list[bytes]:
        """This tick's events: background usage, the victims' fading usage, and the next step of the story."""
        rng, tick = self.rng, self.tick
        lines = []
        for _ in range(_BACKGROUND_EVENTS_PER_TICK if self.pool else 0):
            usage = {"metric": "activity", "quantity": rng.randint(1, 15), "user_id": f"u{rng.randint(1, 12):03d}"}
            lines.append(self.event("usage", rng.choice(self.pool), usage))
        if tick < _DECLINE_TICKS:
            for victim in self.victims:
                quantity = max(1, round(12 * 0.85**tick))
                lines.append(
                    self.event("usage", victim, {"metric": "activity", "quantity": quantity, "user_id": "u001"})
                )
        for subject, type_, data, story in self.story():
            say(f"live: {subject}: {story}")
            lines.append(self.event(type_, subject, data))
        return lines

    def story(self) -> list[tuple[str, str, dict[str, Any], str]]:
        """The scripted step for this tick, if any: (account, event type, data, what to tell the viewer)."""
        ticket = {"ticket_id": f"live-{self.run_id}-T1", "priority": "urgent", "category": "outage"}
        steps: dict[int, tuple[int, str, dict[str, Any], str]] = {
            2: (0, "support_ticket", ticket | {"status": "opened"}, "urgent ticket opened"),
            4: (1, "contact_change", {"change": "left_company", "role": "champion"}, "champion left the company"),
            6: (2, "engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 2}, "NPS 2 (detractor)"),
            8: (0, "support_ticket", ticket | {"status": "escalated"}, "urgent ticket escalated"),
            10: (2, "engagement", {"kind": "business_review", "outcome": "declined"}, "business review declined"),
        }
        step = steps.get(self.tick)
        if step is None or step[0] >= len(self.victims):
            return []
        index, type_, data, story = step
        subject = self.victims[index]
        if type_ == "contact_change":
            data = data | {"contact_id": self.champions.get(subject, f"{subject}-champion")}
        return [(subject, type_, data, story)]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            lines = self.batch()
            if lines:
                result = await self.pipeline.ingest([InboundRecord(line) for line in lines], ingress="http")
                self.accepted += result.count("accepted")
            self.tick += 1
            if self.tick % 20 == 0:
                say(f"live: {self.accepted:,} events so far")
            next_tick += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_tick - loop.time()))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the demo clock must return aware datetimes")
    return moment
