"""A portfolio's history in memory, and what the scorer would have been given at any past instant.

Loaded once (``services.flows.outcome_history``): each account's signals as they stand at the end of the data
(every usage day and engagement, every ticket, invoice and contact snapshot), the timeline of its CRM profile
(tier, ARR, renewal date and owner KAM change over time), the KAMs and the outcomes. ``signals_at`` then cuts
what ``load_signals`` would have returned at an earlier instant, approximately: ticket and invoice snapshots are
the final ones (the scorer rewinds them through their own timestamps; escalation counters and failures are
known from the snapshot's last event on).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from alerts.early_warning import Outcome
from alerts.model import Kam
from health_engine.config import Windows
from health_engine.model import AccountProfile, AccountSignals, Engagement, UsageDay


@dataclass(frozen=True, slots=True)
class ProfileAt:
    """The account's CRM profile from ``since`` on (until the next one)."""

    since: datetime
    profile: AccountProfile
    owner_kam_id: str | None
    name: str = ""
    currency: str = "EUR"


@dataclass(frozen=True, slots=True)
class AccountHistory:
    signals: AccountSignals
    profiles: tuple[ProfileAt, ...]
    """In time order; the account does not exist before the first."""
    usage_days: tuple[date, ...] = field(default=())
    engagement_times: tuple[datetime, ...] = field(default=())
    profile_times: tuple[datetime, ...] = field(default=())

    @classmethod
    def of(cls, signals: AccountSignals, profiles: Iterable[ProfileAt]) -> AccountHistory:
        usage = tuple(sorted(signals.usage, key=lambda u: u[0]))
        engagements = tuple(sorted(signals.engagements, key=lambda e: e.time))
        timeline = tuple(sorted(profiles, key=lambda p: p.since))
        return cls(
            replace(signals, usage=usage, engagements=engagements),
            timeline,
            tuple(u[0] for u in usage),
            tuple(e.time for e in engagements),
            tuple(p.since for p in timeline),
        )

    def profile_at(self, as_of: datetime) -> ProfileAt | None:
        k = bisect.bisect_right(self.profile_times, as_of)
        return self.profiles[k - 1] if k else None


@dataclass(frozen=True, slots=True)
class History:
    start: datetime
    end: datetime
    accounts: Mapping[str, AccountHistory]
    kams: Mapping[str, Kam]
    outcomes: Mapping[str, Outcome]
    portfolio_size: int = 0
    """Accounts of the whole portfolio (0: ``accounts`` is all of it): a part's messages per KAM-week are
    counted as a share of the KAMs' weeks."""
    closed_at: Mapping[str, datetime] = field(default_factory=dict)
    """When each account closed (lost: churned, not reopened by a later profile): the service neither scores
    nor alerts on it from then on."""

    @property
    def portfolio(self) -> int:
        return self.portfolio_size or len(self.accounts)

    def midnights(self) -> list[datetime]:
        """Every midnight (UTC) after the first event up to the end: when the time-driven sweep runs."""
        day = self.start.astimezone(UTC).date() + timedelta(days=1)
        found = []
        moment = datetime.combine(day, time(), tzinfo=UTC)
        while moment <= self.end:
            found.append(moment)
            moment += timedelta(days=1)
        return found

    def only(self, account_ids: Iterable[str]) -> History:
        keep = set(account_ids)
        return replace(
            self,
            portfolio_size=self.portfolio,
            accounts={a: h for a, h in self.accounts.items() if a in keep},
            outcomes={a: o for a, o in self.outcomes.items() if a in keep},
            closed_at={a: t for a, t in self.closed_at.items() if a in keep},
        )


def signals_at(account: AccountHistory, as_of: datetime, windows: Windows) -> AccountSignals | None:
    """What ``load_signals`` would return at ``as_of`` from a database holding the history up to then (None before
    the account's first profile)."""
    at = account.profile_at(as_of)
    if at is None:
        return None
    s = account.signals
    today = as_of.astimezone(UTC).date()
    lo = bisect.bisect_left(account.usage_days, today - timedelta(days=windows.usage_days))
    hi = bisect.bisect_right(account.usage_days, today)
    usage: list[UsageDay] = list(s.usage[lo:hi])
    before = [u for u in s.usage[:lo] if u[1] > 0 or u[2] > 0]
    if before:
        usage.append(before[-1])
    since = as_of - timedelta(days=windows.ticket_days)
    tickets = tuple(
        t
        for t in s.tickets
        if (t.opened_at or t.last_event_time) <= as_of
        and (t.status not in ("resolved", "closed") or t.last_event_time >= since or (t.opened_at or since) >= since)
    )
    inv_since = as_of - timedelta(days=windows.invoice_days)
    invoices = tuple(
        i
        for i in s.invoices
        if (i.issued_at or i.last_event_time) <= as_of
        and (i.status in ("issued", "failed") or i.last_event_time >= inv_since or i.due_date >= inv_since.date())
    )
    e_lo = bisect.bisect_left(account.engagement_times, as_of - timedelta(days=windows.engagement_days))
    e_hi = bisect.bisect_right(account.engagement_times, as_of)
    engagements: list[Engagement] = list(s.engagements[e_lo:e_hi])
    last_review = [e for e in s.engagements[:e_lo] if e.kind == "business_review" and e.outcome == "attended"]
    if last_review:
        engagements.append(last_review[-1])
    contacts = tuple(c for c in s.contacts if c.added_at is None or c.added_at <= as_of)
    return AccountSignals(at.profile, tuple(usage), tickets, invoices, contacts, tuple(engagements))


def split_halves(account_ids: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """(tuning, held-out): each account falls in one half by a hash of the seed and its id, so the split is the
    same on every run and does not depend on the order or number of the other accounts."""
    tuning: list[str] = []
    held_out: list[str] = []
    for account in sorted(account_ids):
        digest = hashlib.blake2s(f"{seed}:{account}".encode(), digest_size=8).digest()
        (tuning if digest[0] % 2 == 0 else held_out).append(account)
    return tuning, held_out
