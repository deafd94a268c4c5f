"""Scoring and alerting as they would have lived, in memory: every account scored at every midnight, its alerts
evaluated, reconciled (with the hold before resolving) and planned (fold, page or digest) by the very functions
the service runs (``alerts.rules``, ``alerts.reconcile``, ``alerts.policy``); then the per-KAM budget of
immediate messages, the digests and their "cleared" notes over the whole portfolio.

As in the service, a closed (lost) account is neither scored nor alerted on from its closure on: its open alerts
resolve then, with no note. Differences from ``kamwatch replay --as-of-clock`` (bench/alert_volume.py measures the
real thing): scores at midnights only (not also at event times within a day), snapshots as
``services.tuning.history`` cuts them, no snooze or acknowledgement (nobody acts), no escalation or reminder, and
a "cleared" note goes with the KAM's next digest with news, or at its deadline in a digest of its own.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pydantic import BaseModel

from alerts.config import AlertsConfig
from alerts.early_warning import AlertRecord, Delivery, Messages
from alerts.model import AccountSnapshot, Kam, OpenAlert
from alerts.policy import (
    alerts_after,
    candidates,
    dedup,
    group_urgent,
    inhibit,
    local_day_bounds,
    next_digest_time,
    split_urgent,
)
from alerts.reconcile import close_accounts, reconcile
from alerts.rules import evaluate
from health_engine.config import ScoringConfig, Windows
from health_engine.model import HealthScore
from health_engine.scoring import combine, component_drivers
from schemas.vocabulary import COMPONENTS, Closure, ComponentName, Driver, Level
from services.tuning.history import AccountHistory, History, ProfileAt, signals_at

TREND = timedelta(days=7)
_DELIVERY_RANK: dict[Delivery, int] = {"folded": 0, "immediate": 1, "digest": 2}


@dataclass(slots=True)
class LivedAlert:
    alert_id: int
    account_id: str
    rule: str
    dedup_key: str
    opened_at: datetime
    severity: str
    kam_id: str | None
    delivery: Delivery | None = None
    notified_at: datetime | None = None
    resolved_at: datetime | None = None

    def record(self) -> AlertRecord:
        return AlertRecord(self.account_id, self.rule, self.opened_at, self.delivery)


@dataclass(frozen=True, slots=True)
class Page:
    """An immediate message: an account's critical alerts (and those folded into them) for its KAM."""

    at: datetime
    kam_id: str
    account_id: str
    first_fired_at: datetime
    alerts: tuple[LivedAlert, ...]


@dataclass(frozen=True, slots=True)
class OwedNote:
    """A "cleared" note owed to a KAM from ``since``: ``urgent`` (a critical alert already told) goes at once;
    ``digest_at``, with that digest (the alert's own, not sent yet); else with the next digest that has news."""

    kam_id: str
    since: datetime
    urgent: bool
    digest_at: datetime | None


@dataclass
class AccountAlerting:
    """One account's alerts as they would have lived: feed it its scores in time order."""

    account_id: str
    config: AlertsConfig
    kams: Mapping[str, Kam]
    next_id: Callable[[], int]
    open: dict[str, OpenAlert] = field(default_factory=dict)
    lived: dict[int, LivedAlert] = field(default_factory=dict)
    alerts: list[LivedAlert] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    digest_items: list[tuple[str, datetime, LivedAlert]] = field(default_factory=list)
    notes: list[OwedNote] = field(default_factory=list)
    _times: list[datetime] = field(default_factory=list)
    _past: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _level: Level | None = None
    _level_since: datetime | None = None

    def observe(self, score: HealthScore, at: ProfileAt) -> None:
        as_of = score.as_of
        if score.level != self._level:
            self._level, self._level_since = score.level, as_of
        components: dict[str, float] = {c.name: c.risk for c in score.components}
        k = bisect.bisect_right(self._times, as_of - TREND)
        past = self._past[k - 1] if k else None
        self._times.append(as_of)
        self._past.append((score.risk, components))
        profile = at.profile
        snapshot = AccountSnapshot(
            account_id=self.account_id,
            name=at.name,
            tier=profile.tier,
            arr=profile.arr,
            currency=at.currency,
            renewal_date=profile.renewal_date,
            owner_kam_id=at.owner_kam_id,
            risk=score.risk,
            level=score.level,
            risk_7d_ago=past[0] if past is not None else None,
            level_since=self._level_since,
            drivers=score.drivers,
            as_of=as_of,
            components=components,
            components_7d_ago=past[1] if past is not None else {},
        )
        before = list(self.open.values())
        changes = reconcile(evaluate(snapshot, self.config), before, as_of, self.config.resolve_hold)
        if not changes:
            return
        kam = self.kams.get(at.owner_kam_id) if at.owner_kam_id is not None else None
        for r in changes.resolved:
            gone = self.lived[r.alert_id]
            gone.resolved_at = r.resolved_at
            self.open.pop(r.dedup_key, None)
            if kam is not None and gone.notified_at is not None:
                unsent = gone.notified_at if gone.notified_at > as_of else None
                told = gone.severity == "critical" and unsent is None
                self.notes.append(OwedNote(kam.kam_id, r.resolved_at, told, unsent))
        for h in changes.clearing:
            self.open[h.dedup_key] = replace(self.open[h.dedup_key], clearing_since=h.since, resolves_at=h.resolves_at)
        for b in changes.returned:
            self.open[b.dedup_key] = replace(self.open[b.dedup_key], clearing_since=None, resolves_at=None)
        for raised in changes.severity_changed:
            self.open[raised.dedup_key] = replace(self.open[raised.dedup_key], severity=raised.severity)
            self.lived[raised.alert_id].severity = raised.severity
        for o in changes.opened:
            a = o.alert
            alert_id = self.next_id()
            self.open[a.dedup_key] = OpenAlert(
                alert_id, a.dedup_key, a.account_id, a.rule, a.subject, a.severity, "firing", o.fired_at
            )
            new = LivedAlert(alert_id, a.account_id, a.rule, a.dedup_key, as_of, a.severity, at.owner_kam_id)
            self.lived[alert_id] = new
            self.alerts.append(new)
        if kam is None:
            return
        # The notification plan's stages (no snooze: nobody acts in a replay).
        status = alerts_after(changes, before)
        kept, folded = inhibit(dedup(candidates(changes)), status)
        urgent, later = split_urgent(kept)
        by_key = {a.dedup_key: a for a in self.lived.values() if a.resolved_at is None}
        plan: dict[str, tuple[Delivery, datetime | None]] = {}

        def deliver(key: str, delivery: Delivery, at: datetime | None) -> None:
            # Within one plan, folded beats immediate beats digest; a later plan's delivery replaces an earlier.
            if key in by_key and (key not in plan or _DELIVERY_RANK[delivery] < _DELIVERY_RANK[plan[key][0]]):
                plan[key] = (delivery, at)

        for g in group_urgent(urgent, folded, {self.account_id: kam.kam_id}):
            for key in g.keys:
                deliver(key, "immediate", as_of)
            for key in g.folded:
                deliver(key, "folded", None)
            alerts = tuple(by_key[k] for k in (*g.keys, *g.folded) if k in by_key)
            self.pages.append(Page(as_of, kam.kam_id, self.account_id, g.first_fired_at, alerts))
        for key in folded:
            deliver(key, "folded", None)
        send_at = next_digest_time(kam.timezone, self.config.policy.digest_hour, as_of)
        for c in later:
            deliver(c.dedup_key, "digest", send_at)
        for key, (delivery, when) in plan.items():
            alert = by_key[key]
            alert.delivery = delivery
            if when is not None:
                alert.notified_at = when
            if delivery == "digest":
                self.digest_items.append((kam.kam_id, send_at, alert))

    def close(self, at: datetime) -> None:
        """The account closed (lost) at ``at``: its open alerts resolve, dated then, and nothing more is told."""
        changes = close_accounts(list(self.open.values()), {self.account_id: Closure(self.account_id, at, None)})
        for r in changes.resolved:
            self.lived[r.alert_id].resolved_at = r.resolved_at
            self.open.pop(r.dedup_key, None)


@dataclass(frozen=True, slots=True)
class LivedRun:
    """The alerts of a replay and the messages KAMs would have received."""

    alerts: tuple[LivedAlert, ...]
    messages: Messages

    def records(self) -> list[AlertRecord]:
        return [a.record() for a in self.alerts]


class DriverCache:
    """Each component's drivers per account and instant, kept for the last ``keep`` variants of the config
    sections they depend on: a search that changes the weights or one ramp recomputes only what changed."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._store: dict[ComponentName, dict[str, dict[str, list[list[Driver]]]]] = {c: {} for c in COMPONENTS}

    @staticmethod
    def key(component: ComponentName, config: ScoringConfig) -> str:
        section: BaseModel = getattr(config, component)
        return section.model_dump_json() + config.severity.model_dump_json()

    def get(self, component: ComponentName, key: str, account_id: str) -> list[list[Driver]] | None:
        variant = self._store[component].get(key)
        return None if variant is None else variant.get(account_id)

    def put(self, component: ComponentName, key: str, account_id: str, drivers: list[list[Driver]]) -> None:
        variants = self._store[component]
        if key not in variants:
            while len(variants) >= self.keep:
                del variants[next(iter(variants))]
            variants[key] = {}
        variants[key][account_id] = drivers


def score_timeline(
    account: AccountHistory,
    account_id: str,
    instants: Sequence[datetime],
    config: ScoringConfig,
    cache: DriverCache | None = None,
) -> Iterable[tuple[HealthScore, ProfileAt]]:
    """The account's scores at ``instants`` (from its first profile on), with the profile then."""
    windows = Windows.of(config)
    live = [(k, t, at) for k, t in enumerate(instants) if (at := account.profile_at(t)) is not None]
    per_component: dict[ComponentName, list[list[Driver]]] = {}
    missing: list[ComponentName] = []
    for component in COMPONENTS:
        kept = cache.get(component, DriverCache.key(component, config), account_id) if cache is not None else None
        if kept is not None and len(kept) == len(live):
            per_component[component] = kept
        else:
            per_component[component] = []
            missing.append(component)
    if missing:
        for _, t, _ in live:
            signals = signals_at(account, t, windows)
            assert signals is not None
            for component in missing:
                per_component[component].append(component_drivers(component, signals, t, config))
        if cache is not None:
            for component in missing:
                cache.put(component, DriverCache.key(component, config), account_id, per_component[component])
    for n, (_, t, at) in enumerate(live):
        found = {c: per_component[c][n] for c in COMPONENTS}
        yield combine(at.profile, found, t, config), at


def replay(
    history: History,
    scoring: ScoringConfig,
    rules: AlertsConfig,
    *,
    accounts: Iterable[str] | None = None,
    cache: DriverCache | None = None,
) -> LivedRun:
    """Score and alert ``accounts`` (default: all) at every midnight of the history, as they would have lived:
    a closed (lost) account no more from its closure on."""
    scope = sorted(history.accounts if accounts is None else set(accounts) & set(history.accounts))
    instants = history.midnights()
    counter = iter(range(1, 1 << 62))
    states = []
    for account_id in scope:
        state = AccountAlerting(account_id, rules, history.kams, lambda: next(counter))
        closed_at = history.closed_at.get(account_id)
        alive = instants if closed_at is None else instants[: bisect.bisect_left(instants, closed_at)]
        for score, at in score_timeline(history.accounts[account_id], account_id, alive, scoring, cache):
            state.observe(score, at)
        if closed_at is not None:
            state.close(closed_at)
        states.append(state)
    owners = {p.owner_kam_id for h in history.accounts.values() for p in h.profiles if p.owner_kam_id is not None}
    weeks = (history.end - history.start).total_seconds() / (7 * 86400)
    share = len(scope) / history.portfolio if history.accounts else 0.0
    kam_weeks = len(owners & set(history.kams)) * weeks * share
    messages = alert_messages(states, history.kams, rules, kam_weeks)
    return LivedRun(tuple(a for s in states for a in s.alerts), messages)


def alert_messages(
    states: Sequence[AccountAlerting], kams: Mapping[str, Kam], config: AlertsConfig, kam_weeks: float
) -> Messages:
    """The messages over the portfolio (settles each alert's final delivery): at most
    ``immediate_budget_per_day`` immediate messages per KAM and local day, the rest in the next digest; "cleared"
    notes ride with a digest that has news, or make one of their own at their deadline."""
    pages = [p for s in states for p in s.pages]
    items = [i for s in states for i in s.digest_items]
    notes = [n for s in states for n in s.notes]
    policy = config.policy
    budget = policy.immediate_budget_per_day
    used: dict[tuple[str, datetime], int] = defaultdict(int)
    news: dict[str, set[datetime]] = defaultdict(set)
    for kam_id, send_at, _ in items:
        news[kam_id].add(send_at)
    immediate = 0
    for page in sorted(pages, key=lambda p: (p.at, p.first_fired_at, p.account_id)):
        kam = kams[page.kam_id]
        day = (page.kam_id, local_day_bounds(kam.timezone, page.at)[0])
        if used[day] < budget:
            used[day] += 1
            immediate += 1
            continue
        send_at = next_digest_time(kam.timezone, policy.digest_hour, page.at)
        news[page.kam_id].add(send_at)
        for a in page.alerts:
            if a.delivery == "immediate":
                a.delivery, a.notified_at = "digest", send_at
    with_alerts = sum(len(times) for times in news.values())
    max_wait = timedelta(days=policy.cleared_note_max_days)
    extra = 0
    waiting: dict[str, list[datetime]] = defaultdict(list)
    for note in notes:
        if not note.urgent and note.digest_at is None:
            waiting[note.kam_id].append(note.since)
    for kam_id, owed in waiting.items():
        kam = kams[kam_id]
        owed.sort()
        sent = sorted(news.get(kam_id, ()))
        k = 0
        while k < len(owed):
            since = owed[k]
            first = next_digest_time(kam.timezone, policy.digest_hour, since)
            deadline = first
            while (following := next_digest_time(kam.timezone, policy.digest_hour, deadline)) <= since + max_wait:
                deadline = following
            j = bisect.bisect_left(sent, first)
            if j < len(sent) and sent[j] <= deadline:
                out = sent[j]
            else:
                out = deadline
                extra += 1
                bisect.insort(sent, out)
            while k < len(owed) and owed[k] < out:
                k += 1
    return Messages(immediate, with_alerts + extra, kam_weeks, with_alerts)
