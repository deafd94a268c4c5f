"""``kamwatch tune``'s search: it finds a planted better parameter, deterministically, and never tunes on the
held-out half; the in-memory replay it judges candidates with."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alerts.config import load_rules_config
from alerts.early_warning import Outcome
from alerts.model import Kam
from health_engine.config import load_scoring_config
from health_engine.model import AccountProfile, AccountSignals, Contact, Engagement
from services.tuning.history import AccountHistory, History, ProfileAt, split_halves
from services.tuning.lived import replay
from services.tuning.search import Budget, Candidate, Parameter, tune

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 150
D = timedelta(days=1)
KAM = Kam("kam-1", "Léa", "lea@example.com", None, None, "fr", "Europe/Paris")
NPS_LOW = Parameter("scoring", "engagement.nps.low", choices=(5.0, 45.0))
ROOMY = Budget(immediate_per_kam_week=10, digests_per_kam_week=10, healthy_alerted=1, healthy_paged=1)


def account(account_id: str, nps: int) -> AccountHistory:
    """A quiet account whose only signal is one NPS answer, 20 days in."""
    contacts = (
        Contact("sponsor", "executive_sponsor", True, START, None, START + D),
        Contact("champion", "champion", True, START, None, START + D),
        Contact("dm", "decision_maker", True, START, None, START + D),
    )
    engagements = (Engagement(START + 20 * D, "nps_survey", "responded", nps),)
    signals = AccountSignals(AccountProfile(account_id, "key", Decimal(100_000)), (), (), (), contacts, engagements)
    return AccountHistory.of(signals, [ProfileAt(START, signals.profile, KAM.kam_id)])


def portfolio(held_out_nps: int = 5) -> History:
    """Forty accounts: the lost ones answered 5 (a mild detractor), the others 9; in the held-out half (split by
    seed 3) the lost ones answered ``held_out_nps``."""
    ids = [f"acc-{n:02d}" for n in range(40)]
    _, held_out = split_halves(ids, 3)
    lost = {a for n, a in enumerate(ids) if n % 4 == 0}
    accounts = {a: account(a, (held_out_nps if a in held_out else 5) if a in lost else 9) for a in ids}
    outcomes = {a: Outcome(START + 140 * D, "churned" if a in lost else "renewed") for a in ids}
    return History(START, START + DAYS * D, accounts, {KAM.kam_id: KAM}, outcomes)


def current() -> Candidate:
    """The shipped configs with the planted flaw: a mild detractor weighs 5 points, under the rule's threshold."""
    scoring = load_scoring_config(None)
    engagement = scoring.engagement.model_copy(update={"nps": scoring.engagement.nps.model_copy(update={"low": 5.0})})
    rules = load_rules_config(None)
    nps_rule = rules.rules.nps_detractor.model_copy(update={"min_points": 20.0, "enabled": True})
    return Candidate(
        scoring.model_copy(update={"engagement": engagement}),
        rules.model_copy(update={"rules": rules.rules.model_copy(update={"nps_detractor": nps_rule})}),
    )


def test_tune_finds_a_planted_better_parameter() -> None:
    result = tune(portfolio(), current(), budget=ROOMY, trials=4, seed=3, space=[NPS_LOW])

    before, after = result.current[0].figures, result.best[0].figures
    assert before.recall == 0.0
    assert after.recall == 1.0
    assert result.best[0].candidate.scoring.engagement.nps.low == 45.0
    assert result.best[0].candidate.scoring.version == "tuned"
    # the held-out half is reported, with the same candidate
    assert result.best[1].figures.recall == 1.0
    assert result.best[1].candidate == result.best[0].candidate


def test_tune_is_deterministic_by_seed() -> None:
    space = [NPS_LOW, Parameter("rules", "nps_detractor.min_points", 10, 60, step=5)]
    first = tune(portfolio(), current(), budget=ROOMY, trials=5, seed=3, space=space)
    again = tune(portfolio(), current(), budget=ROOMY, trials=5, seed=3, space=space)
    assert first.best[0].candidate == again.best[0].candidate
    assert first.tuning_accounts == again.tuning_accounts


def test_held_out_figures_are_never_used_to_tune() -> None:
    """Whatever the held-out half holds, the search sees the same thing and chooses the same; only what is
    reported of the held-out half changes."""
    seen: list[int] = []

    def progress(number: int, judged: object) -> None:
        seen.append(judged.figures.accounts)  # type: ignore[attr-defined]

    space = [NPS_LOW, Parameter("rules", "nps_detractor.min_points", 10, 60, step=5)]
    plain = tune(portfolio(held_out_nps=5), current(), budget=ROOMY, trials=5, seed=3, space=space, progress=progress)
    other = tune(portfolio(held_out_nps=9), current(), budget=ROOMY, trials=5, seed=3, space=space)

    assert set(seen) == {len(plain.tuning_accounts)}
    assert len(plain.tuning_accounts) < 40
    assert set(plain.tuning_accounts).isdisjoint(plain.held_out_accounts)
    assert plain.best[0].candidate == other.best[0].candidate
    assert plain.best[0].figures == other.best[0].figures
    assert plain.best[1].figures.recall != other.best[1].figures.recall


def test_the_budget_decides_what_is_feasible() -> None:
    """A healthy account answering 5 too: alerting mild detractors now alerts it, over a zero-noise budget, so
    the search keeps the current configs (within budget, if catching nothing)."""
    history = portfolio()
    noisy = replace(history, accounts={**history.accounts, "acc-01": account("acc-01", 5)})
    result = tune(noisy, current(), budget=Budget(healthy_alerted=0.0), trials=3, seed=3, space=[NPS_LOW])
    assert result.best[0].feasible
    assert result.best[0].candidate.scoring.engagement.nps.low == 5.0
    assert result.feasible_trials < result.trials


def test_replay_pages_a_departure_only_once_the_grace_has_passed() -> None:
    """The in-memory replay runs the service's rules: a champion who left and was never replaced is news in a
    digest, then a page once the grace has passed."""
    scoring, rules = load_scoring_config(None), load_rules_config(None)
    base = account("acc-x", 9)
    contacts = tuple(
        replace(c, active=False, left_at=START + 30 * D) if c.contact_id == "champion" else c
        for c in base.signals.contacts
    )
    history = History(
        START,
        START + 90 * D,
        {"acc-x": AccountHistory.of(replace(base.signals, contacts=contacts), base.profiles)},
        {KAM.kam_id: KAM},
        {},
    )
    run = replay(history, scoring, rules)
    champion = [a for a in run.alerts if a.rule == "champion_left"]
    assert len(champion) == 1
    assert champion[0].delivery == "immediate"  # raised to critical after the grace
    assert champion[0].opened_at < START + 32 * D
    assert run.messages.immediate == 1
    assert run.messages.digests >= 1


def test_replay_stops_at_an_accounts_closure() -> None:
    """A lost account is no longer scored nor alerted on from its closure, as in the service: its open alert
    resolves then, and the page the vacant role would have brought after the grace never comes."""
    scoring, rules = load_scoring_config(None), load_rules_config(None)
    base = account("acc-x", 9)
    left, closed = START + 30 * D, START + 33 * D
    assert closed < left + timedelta(days=scoring.relationship.successor_grace_days)
    contacts = tuple(
        replace(c, active=False, left_at=left) if c.contact_id == "champion" else c for c in base.signals.contacts
    )
    accounts = {"acc-x": AccountHistory.of(replace(base.signals, contacts=contacts), base.profiles)}
    outcomes = {"acc-x": Outcome(closed, "churned")}
    lived = History(START, START + 90 * D, accounts, {KAM.kam_id: KAM}, outcomes)
    lost = History(START, START + 90 * D, accounts, {KAM.kam_id: KAM}, outcomes, closed_at={"acc-x": closed})

    assert replay(lived, scoring, rules).messages.immediate == 1  # without the closure: the page after the grace
    run = replay(lost, scoring, rules)
    assert [(a.rule, a.delivery, a.resolved_at) for a in run.alerts] == [("champion_left", "digest", closed)]
    assert run.messages.immediate == 0
