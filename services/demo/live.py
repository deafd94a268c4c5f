"""The demo's live stream: background usage across the portfolio, and showcase accounts going downhill in real
time through mixed signals (tickets, departures, a declined review, a failed payment, detractors)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import text

from ingestion.parsing import InboundRecord
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database

LIVE_SOURCE: Final = "kamwatch/demo"
_BACKGROUND_EVENTS_PER_TICK: Final = 4
_DECLINE_TICKS: Final = 40
TICK_SECONDS: Final = 0.5
SHOWCASES: Final = 3


def say(message: str) -> None:
    print(message, flush=True)


def today(clock: Callable[[], datetime]) -> date:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the demo clock must return aware datetimes")
    return now.date()


@dataclass(frozen=True, slots=True)
class Showcase:
    """An account the demo walks downhill, with what its story needs: its people and its KAM."""

    account_id: str
    name: str
    tier: str
    kam_id: str
    champion: str | None
    sponsor: str | None
    decision_maker: str | None


# Seconds after the live stream starts -> (showcase index, event type, data, what to tell the viewer). Each
# showcase gets several kinds of signal, none of them enough alone: the mix is what turns it high or critical.
_STORY: Final[dict[int, tuple[int, str, dict[str, Any], str]]] = {
    3: (0, "support_ticket", {"status": "opened", "priority": "urgent", "category": "outage"}, "urgent outage ticket"),
    6: (1, "contact_change", {"change": "left_company", "role": "executive_sponsor"}, "executive sponsor left"),
    9: (2, "contact_change", {"change": "left_company", "role": "champion"}, "champion left the company"),
    15: (0, "contact_change", {"change": "left_company", "role": "champion"}, "champion left the company"),
    21: (1, "engagement", {"kind": "business_review", "outcome": "declined"}, "business review declined"),
    27: (2, "engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 2}, "NPS 2 (detractor)"),
    33: (0, "support_ticket", {"status": "escalated", "priority": "urgent", "category": "outage"}, "ticket escalated"),
    39: (1, "payment", {"status": "failed"}, "payment failed"),
    45: (2, "engagement", {"kind": "business_review", "outcome": "no_show"}, "business review: no-show"),
    51: (0, "engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 3}, "NPS 3 (detractor)"),
    57: (1, "contact_change", {"change": "left_company", "role": "champion"}, "champion left the company"),
    63: (2, "support_ticket", {"status": "opened", "priority": "urgent", "category": "data loss"}, "urgent ticket"),
    69: (1, "engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 1}, "NPS 1 (detractor)"),
    75: (2, "contact_change", {"change": "left_company", "role": "decision_maker"}, "decision maker left"),
    # A sponsor leaving an account already at high risk compounds: the KAM is paged at once.
    81: (0, "contact_change", {"change": "left_company", "role": "executive_sponsor"}, "executive sponsor left"),
    87: (2, "contact_change", {"change": "left_company", "role": "executive_sponsor"}, "executive sponsor left"),
}

_SHOWCASE_SQL = """
SELECT a.account_id, a.name, a.tier, a.owner_kam_id,
       (SELECT min(contact_id) FROM contacts c WHERE c.account_id = a.account_id AND c.active AND c.role = 'champion')
           AS champion,
       (SELECT min(contact_id) FROM contacts c WHERE c.account_id = a.account_id AND c.active
           AND c.role = 'executive_sponsor') AS sponsor,
       (SELECT min(contact_id) FROM contacts c WHERE c.account_id = a.account_id AND c.active
           AND c.role = 'decision_maker') AS decision_maker
  FROM accounts a JOIN account_health h ON h.account_id = a.account_id
 WHERE a.tier IN ('strategic', 'key') AND h.level IN ('low', 'medium')
   AND NOT EXISTS (SELECT FROM outcomes o WHERE o.account_id = a.account_id AND o.outcome = 'churned')
   AND (a.renewal_date IS NULL OR a.renewal_date > CAST(:today AS date) + 30)
 ORDER BY a.tier = 'strategic' DESC, h.risk, a.account_id
"""

_KAM_SQL = "SELECT kam_id, name, email, slack_user_id, manager_kam_id, locale, timezone FROM kams WHERE kam_id = :kam"


async def pick_showcases(db: Database, rng: random.Random, today_: date) -> list[Showcase]:
    """Key or strategic accounts, healthy today, with a champion, each of another KAM where possible."""
    async with db.unit_of_work() as conn:
        rows = (await conn.execute(text(_SHOWCASE_SQL), {"today": today_})).mappings().all()
    candidates = [r for r in rows if r["champion"]]
    rng.shuffle(candidates)
    candidates.sort(key=lambda r: (r["tier"] != "strategic", not r["sponsor"]))
    chosen: list[Showcase] = []
    kams: set[str] = set()
    for row in candidates:
        if row["owner_kam_id"] in kams:
            continue
        chosen.append(
            Showcase(
                row["account_id"],
                row["name"],
                row["tier"],
                row["owner_kam_id"],
                row["champion"],
                row["sponsor"],
                row["decision_maker"],
            )
        )
        kams.add(row["owner_kam_id"])
        if len(chosen) == SHOWCASES:
            break
    return chosen


@dataclass
class LiveStream:
    """Background usage across the portfolio, and the showcase accounts going downhill for everyone to see."""

    pipeline: Pipeline
    clock: Callable[[], datetime]
    rng: random.Random
    pool: list[str]
    showcases: list[Showcase]
    kam_profiles: list[dict[str, Any]]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    sent: int = 0
    accepted: int = 0
    tick: int = 0

    @property
    def victims(self) -> list[str]:
        return [s.account_id for s in self.showcases]

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
        rng = random.Random(seed)
        showcases = await pick_showcases(db, rng, today(clock))
        profiles = []
        async with db.unit_of_work() as conn:
            for showcase in showcases:
                kam = (await conn.execute(text(_KAM_SQL), {"kam": showcase.kam_id})).mappings().one_or_none()
                if kam is not None:
                    profiles.append(dict(kam))
        return cls(Pipeline(db, clock=clock, engine=engine), clock, rng, pool, showcases, profiles)

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

    def slack_ids(self) -> list[bytes]:
        """The showcase KAMs' profiles with a Slack id, so their alerts reach the Slack stand-in too."""
        lines = []
        for kam in self.kam_profiles:
            if kam["slack_user_id"]:
                continue
            slack_id = "U" + kam["kam_id"].upper().replace("-", "")[:9]
            profile = {k: v for k, v in kam.items() if k != "kam_id" and v is not None} | {"slack_user_id": slack_id}
            say(f"live: {kam['name']} ({kam['kam_id']}) now has the Slack id {slack_id}")
            lines.append(self.event("kam", kam["kam_id"], profile))
        return lines

    def batch(self) -> list[bytes]:
        """This tick's events: background usage, the showcases' fading usage, and the next step of the story."""
        rng, tick = self.rng, self.tick
        lines = self.slack_ids() if tick == 0 else []
        for _ in range(_BACKGROUND_EVENTS_PER_TICK if self.pool else 0):
            usage = {"metric": "activity", "quantity": rng.randint(1, 15), "user_id": f"u{rng.randint(1, 12):03d}"}
            lines.append(self.event("usage", rng.choice(self.pool), usage))
        if tick < _DECLINE_TICKS:
            for showcase in self.showcases:
                quantity = max(1, round(12 * 0.85**tick))
                usage = {"metric": "activity", "quantity": quantity, "user_id": "u001"}
                lines.append(self.event("usage", showcase.account_id, usage))
        for subject, type_, data, story in self.story():
            say(f"live: {subject}: {story}")
            lines.append(self.event(type_, subject, data))
        return lines

    def story(self) -> list[tuple[str, str, dict[str, Any], str]]:
        """The scripted steps of this tick, if any: (account, event type, data, what to tell the viewer)."""
        seconds, rest = divmod(self.tick * TICK_SECONDS, 1)
        step = _STORY.get(int(seconds)) if rest == 0 else None
        if step is None or step[0] >= len(self.showcases):
            return []
        index, type_, data, story = step
        showcase = self.showcases[index]
        subject = showcase.account_id
        if type_ == "support_ticket":
            data = data | {"ticket_id": f"live-{self.run_id}-T{index}-{data['category'][:4]}"}
        elif type_ == "contact_change":
            contact = {
                "champion": showcase.champion,
                "executive_sponsor": showcase.sponsor,
                "decision_maker": showcase.decision_maker,
            }.get(data["role"])
            data = data | {"contact_id": contact or f"{subject}-{data['role']}"}
        elif type_ == "payment":
            due = today(self.clock) - timedelta(days=10)
            invoice = {
                "invoice_id": f"live-{self.run_id}-INV{index}",
                "amount": "25000.00",
                "currency": "EUR",
                "due_date": due.isoformat(),
            }
            return [
                (subject, "payment", invoice | {"status": "issued"}, "invoice issued"),
                (subject, "payment", invoice | data, story),
            ]
        return [(subject, type_, data, f"{showcase.name}: {story}")]

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
