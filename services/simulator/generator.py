"""A deterministic synthetic portfolio history in the event contract, for demos, tests and scorer tuning.

Everything derives from ``seed`` and the ``start`` date (no clock, no global random state), so one seed
always gives the same bytes. The plan (:func:`plan_portfolio`) decides who the KAMs and accounts are, which
accounts deteriorate, through which signals and when; the event stream (:func:`simulate`) then plays it
out day by day, in time order:

- KAMs (a couple of managers above the others, about half in French, several time zones, most on Slack);
  accounts with a log-normal ARR, tiers strategic ~10% / key ~30% / standard, renewals spread over the
  period and beyond, a few parent/subsidiary groups; 3–8 contacts each, most with a champion and an
  executive sponsor.
- Daily usage, one event per active user per day (weekday rhythm, weekend lull, August and late-December
  lulls); support tickets (opened, updated, sometimes escalated or reopened, resolved, closed with a
  CSAT); monthly invoices (issued, then paid, some accounts habitually a few days late); meetings, emails,
  quarterly business reviews, trainings and occasional NPS surveys.
- About 15–20% of accounts deteriorate: most draw 2–6 signals (usage decline, users dropping out, ticket
  surge with escalations and low CSAT, champion or sponsor leaving, single-threading, late or failed
  payments, declined business reviews, NPS detractor), each with its own onset within a decline, fast
  (3–4 weeks) or slow (months), that has run its course by the customer's notice, 30–90 days before the
  renewal; the signals then persist. One in five shows a single quiet signal only (an NPS detractor, a new
  executive who never engages, declined business reviews, or a slow usage slide). Most end with ``churned``
  or ``downgraded`` at or after their renewal, a few are still on the way down when the period ends.
- Healthy accounts mostly renew or expand (a few percent of all losses come unannounced, with no signal at
  all: a budget cut, an acquisition), and carry noise a scorer must not mistake for churn: urgent tickets,
  habitual late payers (each with its own delay, some a month and more), a temporary usage dip, a contact
  leaving, a champion, sponsor or decision maker replaced after a varied delay (the same day to five weeks),
  their industry's own seasonal lull (``INDUSTRY_LULLS``). About 5% go through a scare (1–2 signals for one
  to two and a half months) and are saved: they renew.
"""

from __future__ import annotations

import hashlib
import math
import random
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import orjson

from schemas.events import ContactRole, EngagementKind, EngagementOutcome, OutcomeKind
from schemas.vocabulary import Tier

SOURCE: Final = "kamwatch/simulator"

Signal = Literal[
    "usage",
    "users",
    "tickets",
    "champion_left",
    "sponsor_left",
    "single_thread",
    "payments",
    "reviews",
    "nps",
    "new_executive",
    "usage_slide",
]
Noise = Literal[
    "late_payer",
    "usage_dip",
    "contact_left",
    "champion_replaced",
    "sponsor_replaced",
    "decision_maker_replaced",
    "kam_change",
    "low_nps",
]

_SIGNAL_WEIGHTS: Final[dict[Signal, float]] = {
    "usage": 0.85,
    "users": 0.6,
    "tickets": 0.5,
    "champion_left": 0.45,
    "sponsor_left": 0.3,
    "single_thread": 0.3,
    "payments": 0.35,
    "reviews": 0.5,
    "nps": 0.35,
}
# The single, quiet signal of some churners: nothing else shows.
_QUIET_SIGNALS: Final[dict[Signal, float]] = {"nps": 0.3, "new_executive": 0.25, "reviews": 0.25, "usage_slide": 0.2}
# What a scare that ends well (the account is saved) shows for a while.
_SCARE_SIGNALS: Final[dict[Signal, float]] = {
    "usage": 0.3,
    "tickets": 0.25,
    "reviews": 0.2,
    "payments": 0.15,
    "champion_left": 0.2,
    "nps": 0.15,
}
_NOISE_ODDS: Final[dict[Noise, float]] = {
    "late_payer": 0.2,
    "usage_dip": 0.15,
    "contact_left": 0.12,
    "champion_replaced": 0.08,
    "sponsor_replaced": 0.04,
    "decision_maker_replaced": 0.04,
    "kam_change": 0.03,
    "low_nps": 0.06,
}
_REPLACED_ROLE: Final[dict[Noise, ContactRole]] = {
    "champion_replaced": "champion",
    "sponsor_replaced": "executive_sponsor",
    "decision_maker_replaced": "decision_maker",
}
# Each industry's own business calendar (MM-DD, both included, wrapping over New Year), on top of weekends,
# August and the year-end holidays: activity at `factor` times an ordinary day.
INDUSTRY_LULLS: Final[dict[str, tuple[tuple[str, str, float], ...]]] = {
    "retail": (("01-08", "02-20", 0.6),),  # after the holiday peak
    "hospitality": (("11-03", "02-28", 0.65),),  # the off-season
    "manufacturing": (("07-21", "08-15", 0.5),),  # the summer shutdown
    "automotive": (("07-21", "08-15", 0.5), ("12-18", "01-04", 0.5)),
    "logistics": (("01-02", "01-31", 0.7),),
    "financial services": (("12-15", "12-31", 0.7),),
}

T = TypeVar("T")
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class KamPlan:
    kam_id: str
    name: str
    email: str
    slack_user_id: str | None
    manager_kam_id: str | None
    locale: Literal["en", "fr"]
    timezone: str


@dataclass(frozen=True, slots=True)
class ContactPlan:
    contact_id: str
    role: ContactRole
    name: str
    email: str
    title: str


@dataclass(frozen=True, slots=True)
class AccountPlan:
    account_id: str
    name: str
    kam_id: str
    arr: Decimal
    currency: str
    tier: Tier
    renewal_date: date
    segment: str
    industry: str
    growth_potential: Literal["low", "medium", "high"]
    strategic_reference: bool
    parent_account_id: str | None
    users: int
    contacts: tuple[ContactPlan, ...]
    utc_offset_hours: int
    deteriorating: bool
    signals: Mapping[Signal, date] = field(default_factory=dict)
    """For a deteriorating account, when each of its signals starts."""
    decline_start: date | None = None
    notice_date: date | None = None
    """For a deteriorating account, when the customer gives notice (30-90 days before the renewal): its decline
    has run its course by then. After the period for an account still on its way down."""
    noise: frozenset[Noise] = frozenset()
    outcome: OutcomeKind | None = None
    outcome_date: date | None = None
    """None when the renewal falls after the simulated period (the account is still on its way)."""
    quiet: bool = False
    """A deteriorating account whose decline shows through one quiet signal only."""
    saved_on: date | None = None
    """For an account saved after a scare (its ``signals`` showed for a while): when the scare ends; it renews."""

    @property
    def unannounced_loss(self) -> bool:
        """Lost with no signal at all beforehand (a budget cut, an acquisition): no scorer can see it coming."""
        return self.outcome in ("churned", "downgraded") and not self.deteriorating


@dataclass(frozen=True, slots=True)
class Portfolio:
    seed: int
    start: date
    days: int
    kams: tuple[KamPlan, ...]
    accounts: tuple[AccountPlan, ...]

    @property
    def end(self) -> date:
        """The first day after the simulated period."""
        return self.start + timedelta(days=self.days)

    @property
    def deteriorating(self) -> tuple[str, ...]:
        return tuple(a.account_id for a in self.accounts if a.deteriorating)


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    events_path: Path
    outcomes_path: Path
    events: int
    outcomes: int
    accounts: int
    kams: int
    by_type: dict[str, int]
    deteriorating: tuple[str, ...]
    start: date
    end: date


# --------------------------------------------------------------------------------------------- the plan

_FIRST_EN = (
    "Emma", "Oliver", "Amelia", "Harry", "Grace", "Jack", "Chloe", "Noah", "Sophie", "Liam", "Ava", "Ethan",
    "Isla", "Lucas", "Mia", "James", "Hannah", "Daniel", "Ella", "Samuel",
)  # fmt: skip
_FIRST_FR = (
    "Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Théo", "Inès", "Arthur", "Élodie", "Mathis",
    "Sarah", "Nathan", "Zoé", "Raphaël", "Juliette", "Gabriel", "Margaux", "Antoine",
)  # fmt: skip
_LAST_EN = (
    "Smith", "Walker", "Hughes", "Bennett", "Clarke", "Turner", "Foster", "Reid", "Carter", "Morgan", "Price",
    "Hayes", "Ellis", "Shaw", "Porter", "Barnes", "Fletcher", "Lawson", "Webb", "Harper",
)  # fmt: skip
_LAST_FR = (
    "Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Garnier", "Rousseau", "Fontaine", "Chevalier",
    "Marchand", "Girard", "Bonnet", "Lambert", "Faure", "Mercier", "Blanc", "Guérin", "Perrin", "Roussel",
)  # fmt: skip
_COMPANY_HEADS = (
    "Arvelle", "Borealis", "Cantor", "Delmare", "Eskerra", "Fjordline", "Granvia", "Helion", "Isotta", "Juniper",
    "Kestrel", "Lumio", "Meridian", "Novalis", "Orchard", "Pellucid", "Quarry", "Rivage", "Solenne", "Tessera",
    "Umbra", "Valmont", "Westerly", "Xylo", "Yonder", "Zephyr", "Altair", "Brisco", "Corvid", "Dunmore",
)  # fmt: skip
_COMPANY_TAILS = (
    "Logistics", "Foods", "Energy", "Pharma", "Retail", "Bank", "Insurance", "Telecom", "Mobility", "Labs",
    "Industries", "Hotels", "Media", "Health", "Aerospace", "Materials", "Software", "Freight", "Textiles",
    "Water", "Motors", "Capital", "Systems", "Chemicals",
)  # fmt: skip
_INDUSTRY_OF_TAIL = {
    "Logistics": "logistics", "Freight": "logistics", "Mobility": "transport", "Aerospace": "manufacturing",
    "Foods": "food & beverage", "Energy": "energy", "Water": "utilities", "Pharma": "life sciences",
    "Health": "healthcare", "Labs": "life sciences", "Retail": "retail", "Textiles": "retail",
    "Bank": "financial services", "Capital": "financial services", "Insurance": "insurance",
    "Telecom": "telecommunications", "Media": "media", "Hotels": "hospitality", "Software": "technology",
    "Systems": "technology", "Industries": "manufacturing", "Materials": "manufacturing",
    "Motors": "automotive", "Chemicals": "chemicals",
}  # fmt: skip
_REGIONS = ("Iberia", "DACH", "Benelux", "Nordics", "UK", "Italia", "France", "Polska")
_EN_TIMEZONES = ("Europe/London", "Europe/Dublin", "America/New_York", "Europe/Amsterdam", "UTC")
_TITLES: Final[dict[ContactRole, tuple[str, ...]]] = {
    "executive_sponsor": ("Chief Operating Officer", "VP Operations", "Chief Digital Officer", "CFO"),
    "champion": ("Head of Operations", "Director of Customer Operations", "Head of Digital", "Programme Lead"),
    "decision_maker": ("Procurement Director", "Head of IT", "Finance Director"),
    "technical_evaluator": ("Solutions Architect", "IT Manager", "Lead Engineer"),
    "influencer": ("Team Lead", "Operations Manager", "Business Analyst"),
    "user": ("Analyst", "Coordinator", "Specialist", "Planner"),
    "detractor": ("Legacy Systems Owner", "IT Manager"),
}
_OTHER_ROLES: tuple[ContactRole, ...] = ("decision_maker", "technical_evaluator", "influencer", "user", "detractor")
_OTHER_ROLE_WEIGHTS = (0.25, 0.2, 0.25, 0.25, 0.05)
_ATTENDANCE: tuple[EngagementOutcome, ...] = ("attended", "cancelled", "declined", "no_show")
_CHURN_REASONS: Final[dict[Signal, str]] = {
    "usage": "low adoption",
    "users": "low adoption",
    "tickets": "product quality issues",
    "champion_left": "champion left, no internal sponsor",
    "sponsor_left": "new leadership, strategy change",
    "single_thread": "lost contact with the buying centre",
    "payments": "budget constraints",
    "reviews": "moved to a competitor",
    "nps": "moved to a competitor",
    "new_executive": "new leadership, strategy change",
    "usage_slide": "low adoption",
}


def plan_portfolio(accounts: int, kams: int, days: int, seed: int, start: date) -> Portfolio:
    """Who the KAMs and accounts are, which accounts deteriorate and when: everything but the events."""
    if accounts < 1 or kams < 1 or days < 1:
        raise ValueError("accounts, kams and days must be at least 1")
    rng = random.Random(seed)
    kam_plans = _plan_kams(rng, kams)
    width = max(4, len(str(accounts)))
    ids = [f"acc-{n:0{width}d}" for n in range(1, accounts + 1)]
    names = _company_names(rng, accounts)
    arrs = [Decimal(round(min(4_000_000, max(12_000, rng.lognormvariate(math.log(90_000), 0.85))), -2)) for _ in ids]
    tiers = _tiers(rng, arrs)

    # A few groups: a parent and 1-3 subsidiaries, usually looked after by the same KAM.
    parents: dict[int, int] = {}
    free = list(range(accounts))
    rng.shuffle(free)
    for _ in range(accounts // 40 if accounts >= 40 else int(accounts >= 6)):
        if len(free) < 2:
            break
        parent = free.pop()
        for _ in range(min(len(free), rng.randint(1, 3))):
            parents[free.pop()] = parent
    regions = {child: _REGIONS[k % len(_REGIONS)] for k, child in enumerate(sorted(parents))}
    for child, parent in parents.items():
        names[child] = f"{names[parent]} {regions[child]}"

    owners = [kam.kam_id for kam in kam_plans]
    owner_weights = [0.4 if kam.manager_kam_id is None and len(kam_plans) > 2 else 1.0 for kam in kam_plans]
    owner = [rng.choices(owners, owner_weights)[0] for _ in ids]
    for child, parent in parents.items():
        if rng.random() < 0.8:
            owner[child] = owner[parent]

    share = rng.uniform(0.15, 0.2)
    deteriorating = set(rng.sample(range(accounts), max(1, round(accounts * share)) if accounts >= 3 else 0))
    plans = [
        _plan_account(
            rng,
            start,
            days,
            account_id=ids[i],
            name=names[i],
            kam_id=owner[i],
            arr=arrs[i],
            tier=tiers[i],
            parent=ids[parents[i]] if i in parents else None,
            deteriorating=i in deteriorating,
        )
        for i in range(accounts)
    ]
    return Portfolio(seed=seed, start=start, days=days, kams=tuple(kam_plans), accounts=tuple(plans))


def _plan_kams(rng: random.Random, count: int) -> list[KamPlan]:
    managers = 1 if count < 4 else 2 if count < 16 else 3
    plans = []
    for n in range(count):
        locale: Literal["en", "fr"] = "fr" if rng.random() < 0.5 else "en"
        first, last = _person(rng, locale)
        kam_id = f"kam-{n + 1:02d}"
        plans.append(
            KamPlan(
                kam_id=kam_id,
                name=f"{first} {last}",
                email=_ascii(f"{first}.{last}@kamwatch-demo.example".lower()),
                slack_user_id=f"U{rng.randrange(36**9):09X}"[:10] if rng.random() < 0.75 else None,
                manager_kam_id=None if n < managers else f"kam-{n % managers + 1:02d}",
                locale=locale,
                timezone="Europe/Paris" if locale == "fr" else rng.choice(_EN_TIMEZONES),
            )
        )
    return plans


def _company_names(rng: random.Random, count: int) -> list[str]:
    pool = [f"{head} {tail}" for head in _COMPANY_HEADS for tail in _COMPANY_TAILS]
    rng.shuffle(pool)
    return [pool[n % len(pool)] + (f" {n // len(pool) + 1}" if n >= len(pool) else "") for n in range(count)]


def _tiers(rng: random.Random, arrs: Sequence[Decimal]) -> list[Tier]:
    """Strategic ~10%, key ~30%, by ARR with a little judgement (noise) in the ranking."""
    ranked = sorted(range(len(arrs)), key=lambda i: -(math.log(float(arrs[i])) + rng.gauss(0, 0.2)))
    strategic, key = max(1, round(len(arrs) * 0.1)), round(len(arrs) * 0.3)
    tiers: list[Tier] = ["standard"] * len(arrs)
    for rank, i in enumerate(ranked):
        tiers[i] = "strategic" if rank < strategic else "key" if rank < strategic + key else "standard"
    return tiers


def _plan_account(
    rng: random.Random,
    start: date,
    days: int,
    *,
    account_id: str,
    name: str,
    kam_id: str,
    arr: Decimal,
    tier: Tier,
    parent: str | None,
    deteriorating: bool,
) -> AccountPlan:
    contacts = _plan_contacts(rng, account_id, name)
    roles = {c.role for c in contacts}
    users = min(60, max(3, round(math.sqrt(float(arr)) / 30 * rng.uniform(0.7, 1.3))))
    signals: dict[Signal, date] = {}
    decline_start: date | None = None
    notice_date: date | None = None
    noise: set[Noise] = set()
    outcome: OutcomeKind | None = None
    outcome_day: int | None = None
    quiet = False
    saved_on: date | None = None

    if deteriorating:
        # A key account's churn or downgrade is booked at the contract end (the renewal), after the customer's
        # notice, typically 30-90 days before it; the decline that leads to that decision comes before the
        # notice. So a decline, fast (3-4 weeks) or slow (months), has run its course by the notice, and what it
        # broke stays broken until the outcome (see _AccountSim.progress).
        notice = rng.randint(30, 90)
        window = rng.randint(21, 28) if rng.random() < 0.4 else rng.randint(60, 150)
        if rng.random() < 0.8 and days > notice + 22:  # the renewal (and the outcome) within the period if it fits
            renewal_day = rng.randint(min(days - 1, notice + window + 1), days - 1)
            outcome_day = min(days - 1, renewal_day + rng.randint(0, 10))
            outcome = "churned" if rng.random() < 0.65 else "downgraded"
        else:  # still on its way down when the period ends
            renewal_day = days + rng.randint(10, 90)
        notice_day = renewal_day - notice
        first = max(1, min(notice_day - window, days - max(7, days // 6)))
        last = max(first, min(notice_day, days) - 1)
        decline_start = start + timedelta(days=first)
        notice_date = start + timedelta(days=notice_day)
        if rng.random() < 0.2:  # one quiet signal, early in the decline, and nothing else
            quiet = True
            onset = first + int(rng.random() * 0.3 * (last - first))
            signals[_weighted_sample(rng, _QUIET_SIGNALS, 1)[0]] = start + timedelta(days=onset)
        else:
            candidates = dict(_SIGNAL_WEIGHTS)
            if "champion" not in roles:
                del candidates["champion_left"]
            if "executive_sponsor" not in roles:
                del candidates["sponsor_left"]
            for signal in _weighted_sample(rng, candidates, rng.randint(2, 6)):
                onset = first + int(rng.random() * 0.7 * (last - first))
                signals[signal] = start + timedelta(days=onset)
    else:
        renewal_day = rng.randint(min(10, days - 1), days + 330)
        if renewal_day < days:
            outcome_day = min(days - 1, renewal_day + rng.randint(0, 7))
            roll = rng.random()
            # The odd loss no signal announces (a budget cut, an acquisition): a few percent of all losses.
            outcome = "renewed" if roll < 0.8 else "expanded" if roll < 0.985 else "downgraded"
            if roll >= 0.996:
                outcome = "churned"
        for kind, odds in _NOISE_ODDS.items():
            if rng.random() < odds and (kind not in _REPLACED_ROLE or _REPLACED_ROLE[kind] in roles):
                noise.add(kind)
        if rng.random() < 0.05 and days > 120:  # a scare, then the account is saved: it renews
            onset = rng.randint(30, days - 90)
            saved_on = start + timedelta(days=onset + rng.randint(30, 75))
            scare = dict(_SCARE_SIGNALS)
            if "champion" not in roles:
                del scare["champion_left"]
            for signal in _weighted_sample(rng, scare, rng.randint(1, 2)):
                signals[signal] = start + timedelta(days=onset + rng.randint(0, 10))
            if outcome in ("churned", "downgraded"):
                outcome = "renewed"
    if deteriorating and rng.random() < 0.2:
        noise.add("late_payer")

    return AccountPlan(
        account_id=account_id,
        name=name,
        kam_id=kam_id,
        arr=arr,
        currency=rng.choices(("EUR", "USD", "GBP"), (0.7, 0.15, 0.15))[0],
        tier=tier,
        renewal_date=start + timedelta(days=renewal_day),
        segment="enterprise" if arr >= 150_000 else "mid-market",
        industry=_INDUSTRY_OF_TAIL.get(name.split(" ")[1], "services"),
        growth_potential=rng.choices(("low", "medium", "high"), (0.3, 0.5, 0.2))[0],
        strategic_reference=tier == "strategic" and rng.random() < 0.3,
        parent_account_id=parent,
        users=users,
        contacts=contacts,
        utc_offset_hours=rng.choices((0, 1, 2), (0.4, 0.4, 0.2))[0],
        deteriorating=deteriorating,
        signals=signals,
        decline_start=decline_start,
        notice_date=notice_date,
        noise=frozenset(noise),
        outcome=outcome,
        outcome_date=None if outcome_day is None else start + timedelta(days=outcome_day),
        quiet=quiet,
        saved_on=saved_on,
    )


def _plan_contacts(rng: random.Random, account_id: str, company: str) -> tuple[ContactPlan, ...]:
    count = rng.randint(3, 8)
    roles: list[ContactRole] = []
    if rng.random() < 0.85:
        roles.append("executive_sponsor")
    if rng.random() < 0.9:
        roles.append("champion")
    while len(roles) < count:
        roles.append(rng.choices(_OTHER_ROLES, _OTHER_ROLE_WEIGHTS)[0])
    domain = _ascii(company.lower().replace(" ", "-")) + ".example"
    return tuple(_contact(rng, f"{account_id}-c{n:02d}", role, domain) for n, role in enumerate(roles, start=1))


def _contact(rng: random.Random, contact_id: str, role: ContactRole, domain: str) -> ContactPlan:
    first, last = _person(rng, "fr" if rng.random() < 0.4 else "en")
    return ContactPlan(
        contact_id=contact_id,
        role=role,
        name=f"{first} {last}",
        email=_ascii(f"{first}.{last}@{domain}".lower()),
        title=rng.choice(_TITLES[role]),
    )


def _person(rng: random.Random, locale: Literal["en", "fr"]) -> tuple[str, str]:
    if locale == "fr":
        return rng.choice(_FIRST_FR), rng.choice(_LAST_FR)
    return rng.choice(_FIRST_EN), rng.choice(_LAST_EN)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _weighted_sample(rng: random.Random, weights: Mapping[T, float], k: int) -> list[T]:
    pool = dict(weights)
    chosen: list[T] = []
    while pool and len(chosen) < k:
        pick = rng.choices(list(pool), list(pool.values()))[0]
        chosen.append(pick)
        del pool[pick]
    return chosen


# ------------------------------------------------------------------------------------------- the events

# (time, sequence, type, subject, display offset, data): sorted on the first two only.
_Draft = tuple[datetime, int, str, str, timezone, JsonDict]
_OFFSETS = {hours: timezone(timedelta(hours=hours)) for hours in (0, 1, 2)}
_OFFSETS[0] = UTC


class _Stream:
    """Day buckets of drafts: anything may be scheduled ahead; a day is sorted and emitted once complete."""

    def __init__(self, start: date, days: int) -> None:
        self.origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.days = days
        self.buckets: dict[int, list[_Draft]] = {}
        self.seq = 0
        self.flushed = -1

    def day_start(self, day: int) -> datetime:
        return self.origin + timedelta(days=day)

    def add(self, when: datetime, type_: str, subject: str, offset: timezone, data: JsonDict) -> None:
        day = (when - self.origin).days
        if day >= self.days:
            return  # after the period: it has not happened yet
        if day <= self.flushed:
            raise AssertionError(f"scheduled {type_} for day {day}, already emitted")
        self.seq += 1
        self.buckets.setdefault(day, []).append((when, self.seq, type_, subject, offset, data))

    def bucket(self, day: int) -> list[_Draft]:
        """The drafts of ``day``, not emitted yet: for callers that add many at once (usage)."""
        if not self.flushed < day < self.days:
            raise AssertionError(f"day {day} is not open")
        return self.buckets.setdefault(day, [])

    def take(self, day: int) -> list[_Draft]:
        drafts = self.buckets.pop(day, [])
        drafts.sort(key=itemgetter(0, 1))
        self.flushed = day
        return drafts


def _hours(hours: float) -> timedelta:
    return timedelta(seconds=round(hours * 3600))


def _day_factor(day: date) -> float:
    """How busy a day is: weekends, August, the end-of-year holidays, New Year's Day."""
    factor = (1.0, 1.0, 1.0, 0.97, 0.85, 0.07, 0.04)[day.weekday()]
    if day.month == 8:
        factor *= 0.55
    elif day.month == 12 and day.day >= 22:
        factor *= 0.35
    elif day.month == 1 and day.day == 1:
        factor *= 0.1
    return factor


def _lull(industry: str, day: date) -> float:
    """The industry's own seasonal factor of ``day`` (1: an ordinary day for it)."""
    key = f"{day.month:02d}-{day.day:02d}"
    factor = 1.0
    for first, last, low in INDUSTRY_LULLS.get(industry, ()):
        if (first <= key <= last) if first <= last else (key >= first or key <= last):
            factor = min(factor, low)
    return factor


@dataclass
class _User:
    user_id: str
    propensity: float
    joins: int = 0
    leaves: int | None = None


class _AccountSim:
    """One account's history: everything but usage is scheduled up front, usage is drawn day by day."""

    def __init__(self, plan: AccountPlan, portfolio: Portfolio, stream: _Stream) -> None:
        self.plan = plan
        self.stream = stream
        self.days = portfolio.days
        self.start = portfolio.start
        self.rng = random.Random(f"{portfolio.seed}/{plan.account_id}")
        self.offset = _OFFSETS[plan.utc_offset_hours]
        self.onsets = {signal: self.day_of(when) for signal, when in plan.signals.items()}
        self.renewal_day = self.day_of(plan.renewal_date)
        self.saved_day = None if plan.saved_on is None else self.day_of(plan.saved_on)
        self.notice_day = self.renewal_day if plan.notice_date is None else self.day_of(plan.notice_date)
        self.outcome_day = None if plan.outcome_date is None else self.day_of(plan.outcome_date)
        self.last_day = self.outcome_day if plan.outcome == "churned" and self.outcome_day is not None else self.days
        self.outcome_at = None if self.outcome_day is None else self.at(self.outcome_day, 14, 17)
        self.churned_at = self.outcome_at if plan.outcome == "churned" else None
        self.unengaged_from: int | None = None
        self.unengaged_cold = 0.8
        self.reassigned: tuple[int, str] | None = None
        self.contact_seq = len(plan.contacts)
        rng = self.rng
        self.users = [_User(f"u{n:03d}", rng.betavariate(4, 2)) for n in range(1, plan.users + 1)]
        multiplier = {"churned": 0.0, "downgraded": rng.uniform(0.4, 0.75), "expanded": rng.uniform(1.1, 1.4)}
        self.arr_after = (plan.arr * Decimal(str(round(multiplier.get(plan.outcome or "", 1.0), 2)))).quantize(
            Decimal("0.01")
        )
        self.usage_floor = rng.uniform(0.12, 0.45)
        self.usage_shape = rng.uniform(0.6, 1.8)
        self.slide_floor = rng.uniform(0.45, 0.65)  # a slow slide loses a third to a half of the usage
        # A habitual late payer's own delay: a few days, or a month and more for some.
        self.pay_delay = rng.randint(2, 10) if rng.random() < 0.6 else rng.randint(11, 35)
        self.dip: tuple[int, int, float] | None = None
        if "usage_dip" in plan.noise:
            begin = rng.randrange(max(1, self.days - 7))
            self.dip = (begin, begin + rng.randint(7, 14), rng.uniform(0.4, 0.65))
        if "users" in self.onsets:
            onset, end = self.onsets["users"], max(self.onsets["users"] + 1, self.decline_end)
            for user in self.users:
                if rng.random() < 0.6:
                    user.leaves = rng.randint(onset, end)

    def day_of(self, when: date) -> int:
        return (when - self.start).days

    @property
    def decline_end(self) -> int:
        return min(self.notice_day, self.days - 1)

    def progress(self, signal: Signal, day: int) -> float:
        """0 before the signal's onset, then up to 1 by the customer's notice, and 1 until the outcome. A scare
        that ends well rises to 0.8 until the account is saved, then fades out over three weeks."""
        onset = self.onsets.get(signal)
        if onset is None or day < onset:
            return 0.0
        if self.saved_day is not None:
            if day < self.saved_day:
                return 0.8 * min(1.0, (day - onset) / max(5, self.saved_day - onset))
            return max(0.0, 0.8 * (1 - (day - self.saved_day) / 21))
        return min(1.0, (day - onset) / max(5, self.notice_day - onset))

    def at(self, day: int, first_hour: int = 8, last_hour: int = 18) -> datetime:
        """A moment during local working hours of ``day`` (in UTC; the offset only changes how it is shown)."""
        seconds = self.rng.randrange(first_hour * 3600, last_hour * 3600)
        return self.stream.day_start(day) + timedelta(seconds=seconds - self.plan.utc_offset_hours * 3600)

    def emit(self, when: datetime, type_: str, data: JsonDict) -> None:
        if self.churned_at is not None and when > self.churned_at:
            return  # a churned account goes quiet
        self.stream.add(when, type_, self.plan.account_id, self.offset, data)

    # -- the set-up, day 0 just after midnight

    def account_data(
        self, *, arr: Decimal | None = None, renewal: date | None = None, kam: str | None = None
    ) -> JsonDict:
        p = self.plan
        return {
            "name": p.name,
            "owner_kam_id": kam or p.kam_id,
            "arr": str(arr if arr is not None else p.arr),
            "currency": p.currency,
            "tier": p.tier,
            "renewal_date": (renewal or p.renewal_date).isoformat(),
            "segment": p.segment,
            "industry": p.industry,
            "growth_potential": p.growth_potential,
            "strategic_reference": p.strategic_reference,
            "parent_account_id": p.parent_account_id,
        }

    def contact_event(self, when: datetime, contact: ContactPlan, change: str, **extra: Any) -> None:
        data: JsonDict = {"contact_id": contact.contact_id, "change": change, "role": contact.role}
        if change == "added":
            data |= {"name": contact.name, "email": contact.email, "title": contact.title}
        self.emit(when, "contact_change", data | extra)

    # -- scheduled histories

    def schedule(self, kam_ids: Sequence[str]) -> None:
        rng, p = self.rng, self.plan
        others = [k for k in kam_ids if k != p.kam_id]
        if "kam_change" in p.noise and others and self.days > 2:  # a portfolio reshuffle
            self.reassigned = (rng.randrange(1, self.days), rng.choice(others))
            self.emit(self.at(self.reassigned[0]), "account", self.account_data(kam=self.reassigned[1]))
        self.schedule_contacts()
        self.schedule_tickets()
        self.schedule_invoices()
        self.schedule_engagement()
        self.schedule_outcome()

    def new_contact(self, role: ContactRole) -> ContactPlan:
        self.contact_seq += 1
        domain = self.plan.contacts[0].email.split("@")[1]
        return _contact(self.rng, f"{self.plan.account_id}-c{self.contact_seq:02d}", role, domain)

    def schedule_contacts(self) -> None:
        rng, days, p = self.rng, self.days, self.plan
        by_role = {c.role: c for c in reversed(p.contacts)}
        leaving: set[str] = set()
        for contact in p.contacts:  # routine: a new title now and then
            if rng.random() < 0.15:
                when = self.at(rng.randrange(1, days)) if days > 1 else None
                if when is not None:
                    self.contact_event(when, contact, "updated", title=rng.choice(_TITLES[contact.role]))
        others = [c for c in p.contacts if c.role in ("user", "influencer", "technical_evaluator")]
        if "contact_left" in p.noise and others and days > 2:
            gone = rng.choice(others)
            leaving.add(gone.contact_id)
            day = rng.randrange(1, days)
            self.contact_event(self.at(day), gone, "left_company")
            if rng.random() < 0.6:
                self.contact_event(
                    self.at(min(days - 1, day + rng.randint(5, 20))), self.new_contact(gone.role), "added"
                )
        users = [c for c in p.contacts if c.role == "user" and c.contact_id not in leaving]
        if users and rng.random() < 0.08 and days > 2:
            self.contact_event(self.at(rng.randrange(1, days)), users[0], "role_changed", previous_role="user")
        for kind, role in _REPLACED_ROLE.items():  # a hand-over: someone else takes the role, sooner or later
            if kind in p.noise and role in by_role and by_role[role].contact_id not in leaving and days > 2:
                day = rng.randrange(1, days)
                self.contact_event(self.at(day), by_role[role], "left_company")
                leaving.add(by_role[role].contact_id)
                delay = rng.choices(
                    (rng.randint(0, 3), rng.randint(4, 7), rng.randint(8, 14), rng.randint(15, 35)),
                    (0.3, 0.3, 0.25, 0.15),
                )[0]
                self.contact_event(self.at(min(days - 1, day + delay)), self.new_contact(role), "added")

        if "champion_left" in self.onsets and by_role["champion"].contact_id not in leaving:
            self.contact_event(self.at(self.onsets["champion_left"]), by_role["champion"], "left_company")
            leaving.add(by_role["champion"].contact_id)
            if self.saved_day is not None:  # the scare ends with a new champion
                self.contact_event(self.at(min(days - 1, self.saved_day)), self.new_contact("champion"), "added")
        if "new_executive" in self.onsets:  # a reorganisation brings an executive who never engages
            day = self.onsets["new_executive"]
            newcomer: ContactRole = "executive_sponsor" if rng.random() < 0.5 else "decision_maker"
            self.contact_event(self.at(day), self.new_contact(newcomer), "added")
            self.unengaged_from, self.unengaged_cold = day, 0.5
        if "sponsor_left" in self.onsets:
            day = self.onsets["sponsor_left"]
            self.contact_event(self.at(day), by_role["executive_sponsor"], "left_company")
            leaving.add(by_role["executive_sponsor"].contact_id)
            if rng.random() < 0.6:  # a new executive arrives, and does not engage
                arrival = day + rng.randint(7, 21)
                self.contact_event(self.at(min(days - 1, arrival)), self.new_contact("executive_sponsor"), "added")
                self.unengaged_from = arrival
        if "single_thread" in self.onsets:
            day = self.onsets["single_thread"]
            remaining = [c for c in p.contacts if c.contact_id not in leaving]
            champion = by_role.get("champion")
            keep = champion if champion in remaining else remaining[0] if remaining else None
            for contact in remaining:
                if contact is not keep:
                    change = "left_company" if rng.random() < 0.4 else "removed"
                    self.contact_event(self.at(min(days - 1, day + rng.randint(0, 20))), contact, change)

    def schedule_tickets(self) -> None:
        rng = self.rng
        base = 0.01 + 0.004 * self.plan.users
        counter = 0
        for day in range(min(self.days, self.last_day + 1)):
            weekday = (self.start + timedelta(days=day)).weekday()
            surge = self.progress("tickets", day)
            rate = base * (0.25 if weekday >= 5 else 1.0) * (1 + rng.uniform(2.0, 4.0) * surge)
            if rng.random() < rate:
                counter += 1
                self.ticket(day, f"{self.plan.account_id}-T{counter:04d}", troubled=rng.random() < 0.2 + 0.8 * surge)

    def ticket(self, day: int, ticket_id: str, *, troubled: bool) -> None:
        rng = self.rng
        priority = rng.choices(
            ("low", "normal", "high", "urgent"), (0.05, 0.3, 0.4, 0.25) if troubled else (0.25, 0.5, 0.2, 0.05)
        )[0]
        category = rng.choice(("integration", "performance", "access", "bug", "billing", "how-to", "data export"))
        opened = self.at(day, 7, 19)
        hours = {"urgent": (2, 20), "high": (8, 72), "normal": (24, 168), "low": (48, 336)}[priority]
        duration = rng.uniform(*hours) * (rng.uniform(1.5, 3.0) if troubled and priority != "urgent" else 1.0)
        resolved = opened + _hours(duration)

        def status(when: datetime, value: str, **extra: Any) -> None:
            data: JsonDict = {"ticket_id": ticket_id, "status": value, "priority": priority, "category": category}
            self.emit(when, "support_ticket", data | extra)

        status(opened, "opened")
        for _ in range(rng.randint(1, 3) if troubled else int(rng.random() < 0.6)):
            status(opened + _hours(duration * rng.uniform(0.1, 0.9)), "updated")
        if rng.random() < (0.45 if troubled else 0.05 if priority in ("high", "urgent") else 0.0):
            status(opened + _hours(duration * 0.3), "escalated")
        status(resolved, "resolved")
        if rng.random() < (0.2 if troubled else 0.03):
            reopened = resolved + _hours(rng.uniform(24, 72))
            status(reopened, "reopened")
            resolved = reopened + _hours(rng.uniform(24, 120))
            status(resolved, "resolved")
        csat: JsonDict = {}
        if rng.random() < 0.65:
            weights = (0.35, 0.35, 0.2, 0.1, 0.0) if troubled else (0.04, 0.06, 0.12, 0.33, 0.45)
            csat = {"csat": rng.choices((1, 2, 3, 4, 5), weights)[0]}
        status(resolved + _hours(rng.uniform(24, 96)), "closed", **csat)

    def schedule_invoices(self) -> None:
        rng, p = self.rng, self.plan
        billing_day = rng.randint(1, 28)
        for day in range(min(self.days, self.last_day + 1)):
            issued_on = self.start + timedelta(days=day)
            if issued_on.day != billing_day:
                continue
            renewed = self.outcome_day is not None and day > self.outcome_day
            amount = ((self.arr_after if renewed else p.arr) / 12).quantize(Decimal("0.01"))
            invoice: JsonDict = {
                "invoice_id": f"INV-{p.account_id}-{issued_on:%Y%m}",
                "amount": str(amount),
                "currency": p.currency,
                "due_date": (issued_on + timedelta(days=30)).isoformat(),
            }
            self.emit(self.at(day, 6, 9), "payment", invoice | {"status": "issued"})
            due = day + 30
            troubled = "payments" in self.onsets and day >= self.onsets["payments"]
            if troubled and rng.random() < 0.35 + 0.6 * self.progress("payments", day):
                roll = rng.random()
                if roll < 0.45:
                    self.pay(invoice, due + rng.randint(12, 45))
                elif roll < 0.85:
                    self.emit(self.at(due + 1, 6, 10), "payment", invoice | {"status": "failed"})
                    if rng.random() < 0.4:
                        self.pay(invoice, due + rng.randint(6, 25))
                else:
                    self.emit(self.at(due - rng.randint(0, 5)), "payment", invoice | {"status": "disputed"})
            elif "late_payer" in p.noise and rng.random() < 0.8:
                self.pay(invoice, due + max(1, self.pay_delay + rng.randint(-2, 4)))
            elif rng.random() < 0.05:
                self.pay(invoice, due + rng.randint(1, 7))
            else:
                self.pay(invoice, max(day + 1, due - rng.randint(0, 20)))

    def pay(self, invoice: JsonDict, day: int) -> None:
        when = self.at(day, 7, 17)
        paid_at = when.astimezone(self.offset).isoformat()
        self.emit(when, "payment", invoice | {"status": "paid", "paid_at": paid_at})

    def engagement(self, day: int, kind: EngagementKind, outcome: EngagementOutcome, score: int | None = None) -> None:
        data: JsonDict = {"kind": kind, "outcome": outcome}
        if score is not None:
            data["nps_score"] = score
        self.emit(self.at(day, 9, 17), "engagement", data)

    def cold(self, day: int) -> float:
        """How much the customer has stopped engaging, 0..1."""
        cold = self.progress("reviews", day)
        if self.unengaged_from is not None and day >= self.unengaged_from:
            cold = max(cold, self.unengaged_cold)
        return cold

    def schedule_engagement(self) -> None:
        rng, p, days = self.rng, self.plan, self.days
        workday = self.next_workday
        gap = {"strategic": (7, 18), "key": (12, 28), "standard": (21, 45)}[p.tier]
        day = workday(rng.randint(0, gap[1]))
        while day < days:
            cold = self.cold(day)
            outcome = rng.choices(
                _ATTENDANCE,
                (0.9 - 0.65 * cold, 0.05 + 0.15 * cold, 0.03 + 0.3 * cold, 0.02 + 0.2 * cold),
            )[0]
            self.engagement(day, "meeting", outcome)
            day = workday(day + rng.randint(*gap))

        period = 91 if p.tier != "standard" else 182
        day = workday(rng.randrange(period))
        while day < days:
            cold = max(self.cold(day), 0.7 * self.progress("sponsor_left", day))
            outcome = rng.choices(
                _ATTENDANCE,
                (0.9 - 0.75 * cold, 0.05 + 0.15 * cold, 0.05 + 0.4 * cold, 0.25 * cold),
            )[0]
            self.engagement(day, "business_review", outcome)
            day = workday(day + period + rng.randint(-7, 7))

        for day in range(days):
            if (self.start + timedelta(days=day)).weekday() >= 5:
                continue
            if rng.random() < 0.12:
                replied = 0.8 - 0.5 * max(self.cold(day), self.progress("single_thread", day))
                self.engagement(day, "email", "replied" if rng.random() < replied else "no_reply")
            if rng.random() < 0.004:
                self.engagement(day, "training", "attended" if rng.random() < 0.85 else "no_show")
            if rng.random() < 0.002:
                self.engagement(day, "event", "attended" if rng.random() < 0.7 else "declined")

        day = rng.randrange(180)
        while day < days:
            detractor = "nps" in self.onsets and day >= self.onsets["nps"]
            if detractor and (self.saved_day is None or day < self.saved_day):  # a detractor stays one
                self.engagement(day, "nps_survey", "responded", rng.randint(0, 5))
            elif rng.random() < 0.55:
                low = "low_nps" in p.noise
                scores = (10, 9, 8, 7, 6, 5, 3) if not low else (6, 5, 4)
                weights = (0.2, 0.25, 0.22, 0.15, 0.1, 0.05, 0.03) if not low else (0.4, 0.4, 0.2)
                self.engagement(day, "nps_survey", "responded", rng.choices(scores, weights)[0])
            else:
                self.engagement(day, "nps_survey", "no_reply")
            day += 180
        if "nps" in self.onsets:
            self.engagement(
                min(days - 1, self.onsets["nps"] + rng.randint(0, 10)), "nps_survey", "responded", rng.randint(0, 5)
            )
            if self.saved_day is not None and self.saved_day < days:  # saved: the customer says so
                self.engagement(self.saved_day, "nps_survey", "responded", rng.randint(8, 10))

    def next_workday(self, day: int) -> int:
        weekday = (self.start + timedelta(days=day)).weekday()
        return day + (7 - weekday if weekday >= 5 else 0)

    def schedule_outcome(self) -> None:
        p, rng = self.plan, self.rng
        if p.outcome is None or self.outcome_day is None:
            return
        day, arr_after = self.outcome_day, self.arr_after
        if p.deteriorating:
            reason = _CHURN_REASONS[min(p.signals, key=lambda s: (p.signals[s], s))]
        else:
            reason = {
                "renewed": "renewed on standard terms",
                "expanded": "added seats",
                "churned": "acquired, consolidated on the group's supplier",
            }.get(p.outcome, "budget cuts")
        when = self.outcome_at
        assert when is not None
        data: JsonDict = {"outcome": p.outcome, "arr_before": str(p.arr), "arr_after": str(arr_after), "reason": reason}
        self.emit(when, "outcome", data)
        if p.outcome != "churned":
            renewal = p.renewal_date + timedelta(days=365)
            kam = self.reassigned[1] if self.reassigned and self.reassigned[0] < day else None
            update = self.account_data(arr=arr_after, renewal=renewal, kam=kam)
            self.emit(when + timedelta(minutes=1), "account", update)
        if p.outcome == "downgraded":
            for user in self.users:
                if user.leaves is None and rng.random() < 0.4:
                    user.leaves = day
        elif p.outcome == "expanded":
            base = len(self.users)
            for n in range(base + 1, base + 2 + base // 5):
                self.users.append(_User(f"u{n:03d}", rng.betavariate(4, 2), joins=day))

    # -- usage, day by day

    def usage(self, day: int, factor: float) -> None:
        if day > self.last_day:
            return
        health = 1.0
        if "usage" in self.onsets:
            health = 1.0 - (1.0 - self.usage_floor) * self.progress("usage", day) ** self.usage_shape
        if "usage_slide" in self.onsets:
            health *= 1.0 - (1.0 - self.slide_floor) * self.progress("usage_slide", day)
        if self.dip is not None and self.dip[0] <= day < self.dip[1]:
            health *= self.dip[2]
        level = factor * health
        intensity = 0.5 + 0.5 * health
        stream, draw, gauss = self.stream, self.rng.random, self.rng.gauss
        bucket = stream.bucket(day)
        begin = stream.day_start(day) + timedelta(hours=8 - self.plan.utc_offset_hours)  # 8:00 local
        subject, offset, cutoff = self.plan.account_id, self.offset, self.churned_at
        for user in self.users:  # the hot loop of the whole simulation: kept plain
            if user.joins > day or (user.leaves is not None and user.leaves <= day):
                continue
            if draw() < user.propensity * level:
                quantity = max(1, round(math.exp(gauss(2.0, 0.6)) * intensity))
                when = begin + timedelta(seconds=int(draw() * 39_600))  # until 19:00
                if cutoff is not None and when > cutoff:
                    continue
                stream.seq += 1
                data = {"metric": "activity", "quantity": quantity, "user_id": user.user_id}
                bucket.append((when, stream.seq, "usage", subject, offset, data))


def _drafts(portfolio: Portfolio) -> Iterator[_Draft]:
    stream = _Stream(portfolio.start, portfolio.days)
    setup = stream.day_start(0)
    tick = timedelta(milliseconds=1)
    for n, kam in enumerate(portfolio.kams):
        data: JsonDict = {
            "name": kam.name,
            "email": kam.email,
            "slack_user_id": kam.slack_user_id,
            "manager_kam_id": kam.manager_kam_id,
            "locale": kam.locale,
            "timezone": kam.timezone,
        }
        stream.add(setup + n * tick, "kam", kam.kam_id, UTC, data)
    sims = [_AccountSim(plan, portfolio, stream) for plan in portfolio.accounts]
    kam_ids = [kam.kam_id for kam in portfolio.kams]
    # Parents before their subsidiaries, then every contact: all in the first minutes of day 0.
    ordered = sorted(sims, key=lambda sim: sim.plan.parent_account_id is not None)
    moment = setup + timedelta(minutes=1)
    for sim in ordered:
        stream.add(moment, "account", sim.plan.account_id, sim.offset, sim.account_data())
        moment += tick
    moment = setup + timedelta(minutes=5)
    for sim in sims:
        for contact in sim.plan.contacts:
            sim.contact_event(moment, contact, "added")
            moment += tick
    for sim in sims:
        sim.schedule(kam_ids)
    industries = sorted({sim.plan.industry for sim in sims})
    for day in range(portfolio.days):
        when = portfolio.start + timedelta(days=day)
        factor = _day_factor(when)
        by_industry = {industry: factor * _lull(industry, when) for industry in industries}
        for sim in sims:
            sim.usage(day, by_industry[sim.plan.industry])
        yield from stream.take(day)


def _encode(portfolio: Portfolio) -> Iterator[tuple[str, bytes]]:
    # Ids are stable for one set of arguments (a replay is idempotent) and differ between simulations, so
    # two histories replayed into one database do not swallow each other as duplicates.
    p = portfolio
    arguments = f"{len(p.accounts)}/{len(p.kams)}/{p.days}/{p.seed}/{p.start.isoformat()}"
    prefix = f"sim-{p.seed}-{hashlib.blake2s(arguments.encode(), digest_size=3).hexdigest()}-"
    for n, (when, _, type_, subject, offset, data) in enumerate(_drafts(portfolio), start=1):
        document = {
            "specversion": "1.0",
            "id": prefix + str(n),
            "source": SOURCE,
            "type": f"kamwatch.{type_}.v1",
            "subject": subject,
            "time": when.astimezone(offset).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
        yield type_, orjson.dumps(document)


def simulate(accounts: int, kams: int, days: int, seed: int, start: date) -> Iterator[bytes]:
    """The portfolio's history as NDJSON lines (no newline), in time order; same arguments, same bytes.

    CLI: ``kamwatch simulate --accounts N --kams K --days D --seed S --start YYYY-MM-DD --out DIR``."""
    for _, line in _encode(plan_portfolio(accounts, kams, days, seed, start)):
        yield line


def simulate_to_dir(out_dir: Path, accounts: int, kams: int, days: int, seed: int, start: date) -> SimulationSummary:
    """Write ``events.ndjson`` (every event, outcomes included) and ``outcomes.ndjson`` (the outcomes alone,
    the labels a scorer is judged against) into ``out_dir``.

    CLI: ``kamwatch simulate --out DIR [--accounts N] [--kams K] [--days D] [--seed S] [--start YYYY-MM-DD]``."""
    return write_portfolio(out_dir, plan_portfolio(accounts, kams, days, seed, start))


def write_portfolio(out_dir: Path, portfolio: Portfolio) -> SimulationSummary:
    """The files of ``simulate_to_dir`` for a portfolio already planned."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path, outcomes_path = out_dir / "events.ndjson", out_dir / "outcomes.ndjson"
    by_type = dict.fromkeys(("kam", "account", "contact_change", "usage", "support_ticket", "payment"), 0)
    with events_path.open("wb") as events, outcomes_path.open("wb") as outcomes:
        for type_, line in _encode(portfolio):
            by_type[type_] = by_type.get(type_, 0) + 1
            events.write(line + b"\n")
            if type_ == "outcome":
                outcomes.write(line + b"\n")
    return SimulationSummary(
        events_path=events_path,
        outcomes_path=outcomes_path,
        events=sum(by_type.values()),
        outcomes=by_type.get("outcome", 0),
        accounts=len(portfolio.accounts),
        kams=len(portfolio.kams),
        by_type={f"kamwatch.{name}.v1": count for name, count in by_type.items()},
        deteriorating=portfolio.deteriorating,
        start=portfolio.start,
        end=portfolio.end,
    )
