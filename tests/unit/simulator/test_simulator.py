"""The portfolio simulator: deterministic, contract-valid, time-ordered, with churners and healthy noise."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from ingestion.parsing import parse_event
from schemas.events import (
    EVENT_MODELS,
    AccountEvent,
    ContactChangeEvent,
    Event,
    KamEvent,
    OutcomeEvent,
    PaymentEvent,
    SupportTicketEvent,
    UsageEvent,
)
from services.simulator.generator import SOURCE, Portfolio, plan_portfolio, simulate, simulate_to_dir

START = date(2026, 1, 5)  # a Monday; 120 days end in early May, away from the August and December lulls
SIZE = {"accounts": 60, "kams": 6, "days": 120, "seed": 11, "start": START}


@dataclass(frozen=True)
class History:
    portfolio: Portfolio
    lines: list[bytes]
    events: list[Event]

    def of(self, account_id: str) -> list[Event]:
        return [e for e in self.events if e.subject == account_id]


@pytest.fixture(scope="module")
def history() -> History:
    lines = list(simulate(**SIZE))  # type: ignore[arg-type]
    portfolio = plan_portfolio(**SIZE)  # type: ignore[arg-type]
    return History(portfolio, lines, [parse_event(line) for line in lines])


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = list(simulate(25, 3, 45, 3, START))
    again = list(simulate(25, 3, 45, 3, START))
    other = list(simulate(25, 3, 45, 4, START))

    assert first == again
    assert first != other
    assert orjson.loads(first[0])["id"] == orjson.loads(again[0])["id"]
    assert orjson.loads(first[0])["id"].startswith("sim-3-")
    later = list(simulate(25, 3, 45, 3, START + timedelta(days=1)))
    assert {orjson.loads(line)["id"] for line in first}.isdisjoint(orjson.loads(line)["id"] for line in later)


def test_every_line_is_a_valid_event_in_time_order_with_unique_ids(history: History) -> None:
    events = history.events
    times = [e.time for e in events]

    assert len(events) == len(history.lines) > 10_000
    assert all(a <= b for a, b in itertools.pairwise(times))
    assert len({e.id for e in events}) == len(events)
    assert {e.source for e in events} == {SOURCE}
    assert {e.type for e in events} == set(EVENT_MODELS)
    assert min(times) >= datetime(2026, 1, 5, tzinfo=UTC)
    assert max(times) < datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=120)
    # producers in more than one timezone (the parsed times are UTC; the offsets as sent are in the lines)
    sent_offsets = {datetime.fromisoformat(orjson.loads(line)["time"]).utcoffset() for line in history.lines}
    assert sent_offsets >= {timedelta(0), timedelta(hours=1)}


def test_kams_come_first_then_accounts_then_contacts(history: History) -> None:
    kinds = [type(e) for e in history.events[: 6 + 60]]
    kams = [e for e in history.events if isinstance(e, KamEvent)]

    assert kinds == [KamEvent] * 6 + [AccountEvent] * 60
    assert isinstance(history.events[66], ContactChangeEvent)
    assert any(k.data.manager_kam_id is None for k in kams)
    assert any(k.data.manager_kam_id is not None for k in kams)
    assert {k.data.locale for k in kams} == {"en", "fr"}
    assert any(k.data.slack_user_id for k in kams)


def test_portfolio_shape(history: History) -> None:
    accounts = history.portfolio.accounts
    tiers = Counter(a.tier for a in accounts)
    contacts = [len(a.contacts) for a in accounts]
    roles = [{c.role for c in a.contacts} for a in accounts]

    assert tiers["strategic"] == 6
    assert tiers["key"] == 18
    assert min(contacts) >= 3
    assert max(contacts) <= 8
    assert sum("champion" in r for r in roles) > len(accounts) * 0.7
    assert sum("executive_sponsor" in r for r in roles) > len(accounts) * 0.7
    parents = {a.parent_account_id for a in accounts} - {None}
    assert parents
    assert parents <= {a.account_id for a in accounts}
    renewals = [a.renewal_date for a in accounts]
    assert min(renewals) < history.portfolio.end < max(renewals)


def test_deteriorating_accounts_end_churned_or_downgraded_at_or_after_renewal(history: History) -> None:
    portfolio = history.portfolio
    deteriorating = [a for a in portfolio.accounts if a.deteriorating]
    finished = [a for a in deteriorating if a.outcome_date is not None]

    assert 0.15 * 60 <= len(deteriorating) <= 0.2 * 60
    assert len(finished) >= len(deteriorating) // 2
    for account in finished:
        events = history.of(account.account_id)
        outcomes = [e for e in events if isinstance(e, OutcomeEvent)]
        assert [o.data.outcome for o in outcomes] in (["churned"], ["downgraded"]), account.account_id
        assert outcomes[0].time.date() >= account.renewal_date
        if outcomes[0].data.outcome == "churned":
            assert events[-1] is outcomes[0]  # nothing after a churn
    signals = Counter(signal for a in deteriorating for signal in a.signals)
    assert len(signals) >= 6  # varied mixes, not one recipe
    assert any(len(a.signals) < 4 for a in deteriorating)  # not every churner shows every signal


def test_a_decline_runs_its_course_before_the_customers_notice_and_persists(history: History) -> None:
    """A loss is booked at the renewal after a notice 30-90 days before it, and the decline precedes the notice."""
    portfolio = history.portfolio
    finished = [a for a in portfolio.accounts if a.deteriorating and a.outcome_date is not None]
    assert finished
    at_notice: list[float] = []
    late: list[float] = []
    for account in finished:
        assert account.decline_start is not None
        assert account.notice_date is not None
        assert account.outcome_date is not None
        assert timedelta(days=30) <= account.renewal_date - account.notice_date <= timedelta(days=90)
        assert account.decline_start <= min(account.signals.values())
        assert max(account.signals.values()) < account.notice_date
        # Every signal is showing at least 30 days before the outcome: the loss can be seen coming.
        outcome, notice = account.outcome_date, account.notice_date
        assert outcome - max(account.signals.values()) > timedelta(days=30), account.account_id
        if "usage" in account.signals:
            events = history.of(account.account_id)
            at_notice.append(weekly_usage(events, notice - timedelta(days=14), notice))
            late.append(weekly_usage(events, outcome - timedelta(days=14), outcome))
    # Nothing heals in the notice period: usage stays as low as it was when the customer gave notice.
    assert at_notice
    ratios = sorted(b / max(a, 1e-9) for a, b in zip(at_notice, late, strict=True))
    assert ratios[len(ratios) // 2] < 1.25


def test_a_few_losses_come_with_no_signal_at_all() -> None:
    portfolio = plan_portfolio(2000, 20, 540, 1, date(2025, 1, 1))  # the plan alone: no events
    losses = [a for a in portfolio.accounts if a.outcome in ("churned", "downgraded")]
    unannounced = [a for a in losses if not a.signals]

    assert all(not a.deteriorating for a in unannounced)
    assert 0.03 * len(losses) <= len(unannounced) <= 0.1 * len(losses)


def weekly_usage(events: list[Event], first: date, last: date) -> float:
    total = sum(int(e.data.quantity) for e in events if isinstance(e, UsageEvent) and first <= e.time.date() < last)
    return total / max(1, (last - first).days)


def test_deteriorating_accounts_show_their_signals_in_the_events(history: History) -> None:
    portfolio = history.portfolio
    ratios: dict[bool, list[float]] = defaultdict(list)
    for account in portfolio.accounts:
        events = history.of(account.account_id)
        end = account.outcome_date or portfolio.end
        early = weekly_usage(events, START, START + timedelta(days=21))
        late = weekly_usage(events, end - timedelta(days=14), end)
        if account.deteriorating and "usage" in account.signals:
            ratios[True].append(late / early)
        elif not account.deteriorating:
            ratios[False].append(late / early)
        if "champion_left" in account.signals:
            assert any(
                isinstance(e, ContactChangeEvent) and e.data.change == "left_company" and e.data.role == "champion"
                for e in events
            ), account.account_id

    declining = sorted(ratios[True])
    steady = sorted(ratios[False])
    assert declining[len(declining) // 2] < 0.75
    assert steady[len(steady) // 2] > 0.85


def test_healthy_accounts_carry_noise(history: History) -> None:
    portfolio = history.portfolio
    healthy = {a.account_id for a in portfolio.accounts if not a.deteriorating}
    urgent_in_a_day: set[str] = set()
    opened: dict[tuple[str, str], datetime] = {}
    late: set[str] = set()
    for event in history.events:
        if isinstance(event, SupportTicketEvent) and event.data.priority == "urgent":
            key = (event.subject, event.data.ticket_id)
            if event.data.status == "opened":
                opened[key] = event.time
            elif event.data.status == "resolved" and event.time - opened[key] < timedelta(days=1):
                urgent_in_a_day.add(event.subject)
        if isinstance(event, PaymentEvent) and event.data.status == "paid":
            assert event.data.paid_at is not None
            if event.data.paid_at.date() > event.data.due_date:
                late.add(event.subject)

    assert urgent_in_a_day & healthy
    assert late & healthy
    renewals = Counter(a.outcome for a in portfolio.accounts if not a.deteriorating and a.outcome)
    assert renewals["renewed"] + renewals["expanded"] > 0.8 * sum(renewals.values())


def test_simulate_to_dir_writes_the_stream_and_the_outcomes(tmp_path: Path) -> None:
    summary = simulate_to_dir(tmp_path / "out", accounts=30, kams=3, days=60, seed=5, start=START)
    lines = (tmp_path / "out" / "events.ndjson").read_bytes().splitlines()
    outcome_lines = (tmp_path / "out" / "outcomes.ndjson").read_bytes().splitlines()

    assert lines == list(simulate(30, 3, 60, 5, START))
    assert outcome_lines == [line for line in lines if b'"type":"kamwatch.outcome.v1"' in line]
    assert all(isinstance(parse_event(line), OutcomeEvent) for line in outcome_lines)
    assert summary.events == len(lines)
    assert summary.outcomes == len(outcome_lines) > 0
    assert sum(summary.by_type.values()) == len(lines)
    assert summary.by_type["kamwatch.kam.v1"] == 3
    assert summary.deteriorating == plan_portfolio(30, 3, 60, 5, START).deteriorating
    assert (summary.start, summary.end) == (START, START + timedelta(days=60))


def test_two_hundred_accounts_over_six_months_generate_in_seconds() -> None:
    started = time.perf_counter()
    count = sum(1 for _ in simulate(200, 10, 180, 1, date(2025, 7, 1)))
    elapsed = time.perf_counter() - started

    assert count > 100_000
    assert elapsed < 8


@pytest.mark.parametrize(("accounts", "kams", "days"), [(0, 1, 10), (5, 0, 10), (5, 1, 0)])
def test_rejects_an_empty_portfolio(accounts: int, kams: int, days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_portfolio(accounts, kams, days, 1, START)


def test_a_harder_portfolio_quiet_churners_saved_accounts_and_varied_hand_overs() -> None:
    """So that figures are not tuned to one recipe: one churner in five shows a single quiet signal, some healthy
    accounts are saved after a scare (and renew), hand-overs take from the same day to five weeks."""
    portfolio = plan_portfolio(2000, 20, 540, 3, date(2025, 1, 6))  # the plan alone: no events
    deteriorating = [a for a in portfolio.accounts if a.deteriorating]
    quiet = [a for a in deteriorating if a.quiet]
    saved = [a for a in portfolio.accounts if a.saved_on is not None]

    assert 0.12 * len(deteriorating) <= len(quiet) <= 0.3 * len(deteriorating)
    assert all(len(a.signals) == 1 for a in quiet)
    assert {s for a in quiet for s in a.signals} == {"nps", "new_executive", "reviews", "usage_slide"}
    assert 0.02 * len(portfolio.accounts) <= len(saved) <= 0.08 * len(portfolio.accounts)
    assert all(not a.deteriorating and a.signals and a.outcome not in ("churned", "downgraded") for a in saved)
    assert all(min(a.signals.values()) < a.saved_on for a in saved if a.saved_on is not None)
    assert any(a.unannounced_loss for a in portfolio.accounts)
    assert not any(a.unannounced_loss for a in deteriorating + saved)


def test_hand_overs_take_varied_delays_and_industries_have_their_own_lulls() -> None:
    portfolio = plan_portfolio(200, 5, 200, 5, date(2025, 1, 6))
    replaced = {a.account_id for a in portfolio.accounts if "champion_replaced" in a.noise}
    retail = {a.account_id for a in portfolio.accounts if a.industry == "retail"}
    left: dict[str, datetime] = {}
    delays = []
    daily: Counter[date] = Counter()
    for line in simulate(200, 5, 200, 5, date(2025, 1, 6)):
        doc = orjson.loads(line)
        subject, data = doc["subject"], doc["data"]
        if doc["type"] == "kamwatch.usage.v1" and subject in retail:
            daily[datetime.fromisoformat(doc["time"]).date()] += data["quantity"]
        elif doc["type"] == "kamwatch.contact_change.v1" and subject in replaced and data["role"] == "champion":
            when = datetime.fromisoformat(doc["time"])
            if data["change"] == "left_company":
                left[subject] = when
            elif data["change"] == "added" and subject in left:
                delays.append((when - left[subject]).days)
    assert replaced
    assert delays
    assert min(delays) <= 3
    assert max(delays) >= 15

    def per_day(first: date, last: date) -> float:
        return sum(daily[first + timedelta(days=n)] for n in range((last - first).days + 1)) / ((last - first).days + 1)

    # Retail's lull after the holidays (January 8 to February 20) against the weeks after it.
    assert per_day(date(2025, 1, 20), date(2025, 2, 16)) < 0.8 * per_day(date(2025, 3, 3), date(2025, 3, 30))
