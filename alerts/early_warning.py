"""How the alerts did against what became of the accounts: early recall, lead time, noise on healthy accounts,
each rule's precision and share of the recall, notifications per KAM-week. Pure: alerts and outcomes in, figures
out; the same definitions serve the as-lived replay (``bench/alert_volume.py``), ``kamwatch tune`` and
``kamwatch backtest``.

Definitions (``lead_days`` 30 and ``window_days`` 180 by default):

- a **loss** is an account whose outcome is churned or downgraded (its first loss, at its time);
- a loss is **alerted early** when an alert (any delivery: immediate, digest, or folded into a critical one) was
  opened within the window before it and at least ``lead_days`` before it; its **lead time** runs from the first
  alert opened within the window before the loss to the loss;
- **healthy** accounts are the others (never lost nor downgraded). An alert is **judged** once its window has
  passed by the end of the data, or an outcome came after it; an alert still too recent to judge on an account
  with no outcome after it is left out (that account may yet be lost). A healthy account is *alerted* when one
  of its judged alerts was notified, *paged* when one went out immediately;
- a rule's **precision**: of its judged alerts (alerts after a loss are neither right nor wrong: a lost account
  has nothing more to tell), the share opened within the window before a loss of the same account;
- a rule's **contribution to recall**: the losses it alerted early, and of those the ones no other rule did.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Delivery = Literal["immediate", "digest", "folded"]
LOSS_OUTCOMES: frozenset[str] = frozenset({"churned", "downgraded"})


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as it happened: when it was opened (not when its condition began) and how its KAM heard of
    it (None: never notified)."""

    account_id: str
    rule: str
    opened_at: datetime
    delivery: Delivery | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an account: its first loss, else its first outcome."""

    time: datetime
    kind: str

    @property
    def lost(self) -> bool:
        return self.kind in LOSS_OUTCOMES


@dataclass(frozen=True, slots=True)
class Messages:
    """Notifications KAMs received over ``kam_weeks`` (KAMs times weeks)."""

    immediate: int
    digests: int
    kam_weeks: float
    digests_with_alerts: int | None = None
    """Digests holding new alerts (the others carry only "cleared" notes); None when not counted."""


@dataclass(frozen=True, slots=True)
class RuleFigures:
    rule: str
    alerts: int
    immediate: int
    judged: int
    on_losses: int
    losses_caught: int
    """Losses this rule alerted early."""
    losses_only: int
    """Of those, the losses no other rule alerted early."""
    digest_only: bool

    @property
    def precision(self) -> float | None:
        return self.on_losses / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class EarlyWarningFigures:
    accounts: int
    losses: int
    losses_alerted_early: int
    unannounced_losses: int
    """Losses nothing could announce (the simulator knows them): the ceiling of the recall."""
    lead_days: list[float]
    missed: tuple[str, ...]
    """The losses not alerted early."""
    healthy: int
    healthy_alerted: int
    healthy_paged: int
    messages: Messages | None
    rules: tuple[RuleFigures, ...]

    @property
    def recall(self) -> float | None:
        return self.losses_alerted_early / self.losses if self.losses else None

    @property
    def recall_ceiling(self) -> float | None:
        return (self.losses - self.unannounced_losses) / self.losses if self.losses else None

    @property
    def median_lead_days(self) -> float | None:
        return statistics.median(self.lead_days) if self.lead_days else None

    @property
    def healthy_alerted_share(self) -> float | None:
        return self.healthy_alerted / self.healthy if self.healthy else None

    @property
    def healthy_paged_share(self) -> float | None:
        return self.healthy_paged / self.healthy if self.healthy else None

    @property
    def immediate_per_kam_week(self) -> float | None:
        m = self.messages
        return m.immediate / m.kam_weeks if m is not None and m.kam_weeks > 0 else None

    @property
    def digests_per_kam_week(self) -> float | None:
        m = self.messages
        return m.digests / m.kam_weeks if m is not None and m.kam_weeks > 0 else None


def early_warning(
    alerts: Iterable[AlertRecord],
    outcomes: Mapping[str, Outcome],
    accounts: Collection[str],
    *,
    end: datetime,
    messages: Messages | None = None,
    digest_only: Collection[str] = (),
    unannounced: Collection[str] = (),
    lead_days: int = 30,
    window_days: int = 180,
) -> EarlyWarningFigures:
    """The figures of ``alerts`` on ``accounts`` (alerts and outcomes of other accounts are ignored)."""
    lead, window = timedelta(days=lead_days), timedelta(days=window_days)
    scope = set(accounts)
    by_account: dict[str, list[AlertRecord]] = defaultdict(list)
    for a in alerts:
        if a.account_id in scope:
            by_account[a.account_id].append(a)
    losses = {a for a in scope if (o := outcomes.get(a)) is not None and o.lost}

    caught_by: dict[str, set[str]] = {}
    leads: list[float] = []
    for account in sorted(losses):
        when = outcomes[account].time
        before = [a for a in by_account.get(account, ()) if a.delivery is not None and when - window <= a.opened_at]
        before = [a for a in before if a.opened_at <= when]
        early = {a.rule for a in before if a.opened_at <= when - lead}
        if early:
            caught_by[account] = early
            leads.append((when - min(a.opened_at for a in before)).total_seconds() / 86400)

    def judged(a: AlertRecord) -> bool:
        outcome = outcomes.get(a.account_id)
        if outcome is not None and outcome.lost and a.opened_at > outcome.time:
            return False  # after the loss
        return a.opened_at + window <= end or (outcome is not None and outcome.time >= a.opened_at)

    def on_loss(a: AlertRecord) -> bool:
        outcome = outcomes.get(a.account_id)
        return outcome is not None and outcome.lost and outcome.time - window <= a.opened_at <= outcome.time

    healthy = scope - losses
    alerted, paged = set(), set()
    for account in healthy:
        for a in by_account.get(account, ()):
            if a.delivery is not None and judged(a):
                alerted.add(account)
                if a.delivery == "immediate":
                    paged.add(account)

    rules: dict[str, list[AlertRecord]] = defaultdict(list)
    for records in by_account.values():
        for a in records:
            rules[a.rule].append(a)
    rule_figures = []
    for rule in sorted(set(rules) | set(digest_only)):
        records = rules.get(rule, [])
        judged_records = [a for a in records if judged(a)]
        caught = [account for account, by in caught_by.items() if rule in by]
        rule_figures.append(
            RuleFigures(
                rule=rule,
                alerts=len(records),
                immediate=sum(1 for a in records if a.delivery == "immediate"),
                judged=len(judged_records),
                on_losses=sum(1 for a in judged_records if on_loss(a)),
                losses_caught=len(caught),
                losses_only=sum(1 for account in caught if caught_by[account] == {rule}),
                digest_only=rule in digest_only,
            )
        )
    return EarlyWarningFigures(
        accounts=len(scope),
        losses=len(losses),
        losses_alerted_early=len(caught_by),
        unannounced_losses=len(losses & set(unannounced)),
        lead_days=leads,
        missed=tuple(sorted(losses - caught_by.keys())),
        healthy=len(healthy),
        healthy_alerted=len(alerted),
        healthy_paged=len(paged),
        messages=messages,
        rules=tuple(rule_figures),
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_lines(figures: EarlyWarningFigures, *, lead_days: int = 30, window_days: int = 180) -> list[str]:
    """The figures as plain text lines (benchmarks and the command line print them)."""
    f = figures
    lead = f.median_lead_days
    lines = [
        f"losses alerted >= {lead_days} days ahead: {f.losses_alerted_early}/{f.losses} = {_share(f.recall)} "
        f"(ceiling {_share(f.recall_ceiling)}: {f.unannounced_losses} losses with no signal at all); "
        f"median lead {'-' if lead is None else f'{lead:.0f}'} days",
        f"healthy accounts (never lost nor downgraded) alerted: {f.healthy_alerted}/{f.healthy} = "
        f"{_share(f.healthy_alerted_share)}; paged (an immediate alert): {f.healthy_paged}/{f.healthy} = "
        f"{_share(f.healthy_paged_share)}",
    ]
    if f.messages is not None:
        digests = f"digests {_share(f.digests_per_kam_week)}"
        if f.messages.digests_with_alerts is not None and f.messages.kam_weeks > 0:
            digests += f" ({f.messages.digests_with_alerts / f.messages.kam_weeks:.2f} with new alerts)"
        lines.append(f"per KAM per week: immediate messages {_share(f.immediate_per_kam_week)}, {digests}")
    lines.append(
        f"{'rule':<24} {'alerts':>6} {'immed.':>6} {'judged':>6} {'precision':>9} "
        f"{'caught':>6} {'only':>5}  (precision: share on accounts lost within {window_days} days)"
    )
    for r in f.rules:
        note = "  digest only" if r.digest_only else ""
        lines.append(
            f"{r.rule:<24} {r.alerts:>6} {r.immediate:>6} {r.judged:>6} {_share(r.precision):>9} "
            f"{r.losses_caught:>6} {r.losses_only:>5}{note}"
        )
    return lines
