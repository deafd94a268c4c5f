"""The pure scoring core: each driver, the combination, bounds, monotonicity, determinism, config errors."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from health_engine.config import (
    DEFAULT_CONFIG_PATH,
    Ramp,
    ScoringConfig,
    ScoringConfigError,
    SeasonalPeriod,
    Slide,
    Windows,
    load_scoring_config,
)
from health_engine.model import (
    AccountProfile,
    AccountSignals,
    Contact,
    ContactRole,
    Engagement,
    EngagementKind,
    EngagementOutcome,
    HealthScore,
    Invoice,
    InvoiceStatus,
    Ticket,
    TicketPriority,
    TicketStatus,
    UsageDay,
)
from health_engine.scoring import score_account
from schemas.vocabulary import Driver, Tier
from tests.configs import SCORING_PATH

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# The mechanism tests' own config (the shipped one comes from kamwatch tune and moves); SHIPPED for what ships.
CONFIG = load_scoring_config(SCORING_PATH)
SHIPPED = load_scoring_config(None)


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def day_ago(days: int) -> date:
    return AS_OF.date() - timedelta(days=days)


def usage(
    recent: float = 100.0,
    previous: float | None = None,
    baseline: float = 100.0,
    users: int = 10,
    recent_users: int | None = None,
) -> tuple[UsageDay, ...]:
    """Daily quantities: ``recent`` over the last 7 full days, ``previous`` the week before, then ``baseline``."""
    days = []
    for n in range(1, 71):
        quantity = recent if n <= 7 else (previous if previous is not None and n <= 14 else baseline)
        active = recent_users if recent_users is not None and n <= 14 else users
        days.append((day_ago(n), quantity, active))
    return tuple(days)


def contact(
    contact_id: str,
    role: ContactRole,
    *,
    left: float | None = None,
    added: float = 400,
    engaged: float | None = 10,
    name: str | None = None,
) -> Contact:
    return Contact(
        contact_id=contact_id,
        role=role,
        active=left is None,
        added_at=ago(added),
        left_at=None if left is None else ago(left),
        last_engaged_at=None if engaged is None else ago(engaged),
        name=name,
    )


def ticket(
    ticket_id: str,
    opened: float,
    *,
    status: TicketStatus = "resolved",
    priority: TicketPriority = "normal",
    resolved: float | None = None,
    escalations: int = 0,
    reopenings: int = 0,
    csat: int | None = None,
) -> Ticket:
    closed = status in ("resolved", "closed")
    resolved_at = ago(resolved if resolved is not None else max(opened - 1, 0)) if closed else None
    return Ticket(
        ticket_id=ticket_id,
        status=status,
        priority=priority,
        opened_at=ago(opened),
        resolved_at=resolved_at,
        escalations=escalations,
        reopenings=reopenings,
        csat=csat,
        last_event_time=resolved_at or ago(opened),
    )


def invoice(
    invoice_id: str, due: int, *, status: InvoiceStatus = "paid", days_late: int = 0, failed: int = 0
) -> Invoice:
    """An invoice due ``due`` days ago (negative: in the future), paid ``days_late`` after its due date."""
    due_date = day_ago(due)
    paid_at = datetime.combine(due_date + timedelta(days=days_late), datetime.min.time(), tzinfo=UTC)
    paid = status == "paid"
    return Invoice(
        invoice_id=invoice_id,
        status=status,
        amount=Decimal("1000.00"),
        due_date=due_date,
        paid_at=paid_at + timedelta(hours=10) if paid else None,
        failed_count=failed,
        last_event_time=paid_at + timedelta(hours=10) if paid else ago(max(due, 0) + 1),
        issued_at=datetime.combine(due_date - timedelta(days=30), datetime.min.time(), tzinfo=UTC),
    )


def paid_history(days_late: int = 0) -> tuple[Invoice, ...]:
    return tuple(invoice(f"INV-{m}", 30 * m + 20, days_late=days_late) for m in range(1, 6))


def healthy_contacts() -> tuple[Contact, ...]:
    return (
        contact("C-sponsor", "executive_sponsor", name="Anne Roy"),
        contact("C-champion", "champion", name="Claire Martin"),
        contact("C-dm", "decision_maker", name="Paul Petit"),
        contact("C-user", "user"),
    )


def healthy_engagements() -> tuple[Engagement, ...]:
    return (
        Engagement(ago(200), "business_review", "attended"),
        Engagement(ago(110), "business_review", "attended"),
        Engagement(ago(30), "business_review", "attended"),
        Engagement(ago(60), "meeting", "attended"),
        Engagement(ago(20), "meeting", "attended"),
        Engagement(ago(15), "email", "replied"),
        Engagement(ago(5), "email", "no_reply"),
        Engagement(ago(40), "nps_survey", "responded", nps_score=9),
    )


def healthy(tier: Tier = "strategic", **changes: Any) -> AccountSignals:
    signals = AccountSignals(
        profile=AccountProfile("acme", tier, Decimal("480000"), renewal_date=day_ago(-300)),
        usage=usage(),
        tickets=(ticket("T-1", 50), ticket("T-2", 100), ticket("T-3", 20, priority="low")),
        invoices=(*paid_history(), invoice("INV-next", -10, status="issued")),
        contacts=healthy_contacts(),
        engagements=healthy_engagements(),
    )
    return replace(signals, **changes)


def score(signals: AccountSignals, config: ScoringConfig = CONFIG, as_of: datetime = AS_OF) -> HealthScore:
    return score_account(signals, as_of, config)


def drivers(result: HealthScore) -> dict[str, Driver]:
    return {d.code: d for d in result.drivers}


def risk_of(result: HealthScore, component: str) -> float:
    return next(c.risk for c in result.components if c.name == component)


def with_contacts(*extra: Contact, drop: str | None = None) -> AccountSignals:
    return healthy(contacts=tuple(c for c in healthy_contacts() if c.contact_id != drop) + extra)


# --- the whole account ---------------------------------------------------------------------------------


def test_healthy_account_is_low_without_drivers() -> None:
    result = score(healthy())
    assert result.level == "low"
    assert result.risk < CONFIG.levels.medium
    assert result.drivers == ()
    assert result.config_version == CONFIG.version


@pytest.mark.parametrize("left", [1, CONFIG.relationship.successor_grace_days + 2])
@pytest.mark.parametrize("replaced", [False, True])
def test_champion_departure_alone_is_not_diluted_on_a_strategic_account(replaced: bool, left: int) -> None:
    # A contact added long before the departure is no successor. On a strategic account the departure alone makes
    # the account high at once when no champion is left (the other champion, when there is one, softens it while
    # a successor may still be named), and again once the grace for naming a successor has passed.
    extra = [contact("C-new-champion", "champion", added=300)] if replaced else []
    signals = with_contacts(
        contact("C-champion", "champion", left=left, name="Claire Martin"), *extra, drop="C-champion"
    )
    result = score(signals)
    softened = replaced and left <= CONFIG.relationship.successor_grace_days
    assert result.level == "medium" if softened else result.level in ("high", "critical")
    assert result.drivers[0].code == "relationship.champion_left"
    vacant = left > CONFIG.relationship.successor_grace_days
    assert result.drivers[0].evidence["successor"] == ("none" if vacant else "pending")
    assert ("no successor named" in result.drivers[0].message_en) is vacant
    assert ("sans successeur désigné" in result.drivers[0].message_fr) is vacant
    # Every other component is healthy, so the weighted mean alone would have hidden it.
    mean = sum(c.weight * c.risk for c in result.components) / sum(c.weight for c in result.components)
    assert mean < CONFIG.levels.high
    assert {c.name for c in result.components if c.risk > 0} == {"relationship"}


def test_several_problems_score_higher_than_any_one_of_them() -> None:
    troubles: dict[str, Any] = {
        "usage": usage(recent=40, previous=45),
        "invoices": (*paid_history(), invoice("INV-late", 40, status="issued")),
        "engagements": (*healthy_engagements(), Engagement(ago(3), "nps_survey", "responded", nps_score=3)),
    }
    alone = [score(healthy(**{key: value})).risk for key, value in troubles.items()]
    together = score(healthy(**troubles)).risk
    assert together > max(alone)


def test_drivers_are_sorted_by_points_and_components_carry_their_own() -> None:
    signals = healthy(
        usage=usage(recent=30, previous=30),
        tickets=(ticket("T-9", 6, status="opened", priority="urgent"),),
        contacts=(contact("C-only", "user"),),
    )
    result = score(signals)
    points = [d.points for d in result.drivers]
    assert points == sorted(points, reverse=True)
    for component in result.components:
        assert all(d.component == component.name for d in component.drivers)
    assert {d.code for c in result.components for d in c.drivers} == {d.code for d in result.drivers}


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        score_account(healthy(), AS_OF.replace(tzinfo=None), CONFIG)


# --- usage ---------------------------------------------------------------------------------------------


def test_usage_drop_weighs_more_when_sustained() -> None:
    dip = drivers(score(healthy(usage=usage(recent=40))))["usage.drop"]
    sustained = drivers(score(healthy(usage=usage(recent=40, previous=40))))["usage.drop"]
    assert dip.evidence["drop_pct"] == 60 == sustained.evidence["drop_pct"]
    assert sustained.evidence["sustained"] is True
    assert dip.evidence["sustained"] is False
    assert sustained.points > dip.points
    assert "60%" in sustained.message_en
    assert "60 %" in sustained.message_fr


def test_usage_drop_lasting_three_weeks_weighs_fully() -> None:
    def weeks_low(n: int) -> float:
        days = tuple((day_ago(d), 40.0 if d <= 7 * n else 100.0, 10) for d in range(1, 71))
        driver = drivers(score(healthy(usage=days)))["usage.drop"]
        assert driver.evidence["weeks_in_a_row"] == min(n, 3)
        return driver.points

    one, two, three = weeks_low(1), weeks_low(2), weeks_low(3)
    assert one < two < three
    assert two == pytest.approx(three * CONFIG.usage.two_week_factor, abs=0.1)
    assert weeks_low(4) == three
    lasting = drivers(score(healthy(usage=tuple((day_ago(d), 40.0 if d <= 21 else 100.0, 10) for d in range(1, 71)))))
    assert "3 weeks in a row" in lasting["usage.drop"].message_en
    assert "3 semaines de suite" in lasting["usage.drop"].message_fr


def test_one_day_dip_is_not_a_usage_drop() -> None:
    days = tuple((day, 0.0, users) if day == day_ago(3) else (day, quantity, users) for day, quantity, users in usage())
    assert "usage.drop" not in drivers(score(healthy(usage=days)))


def test_seasonal_lull_is_not_a_usage_drop() -> None:
    as_of = datetime(2026, 9, 1, 12, tzinfo=UTC)
    lull = tuple(
        (d, 60.0 if d.month == 8 else 100.0, 6 if d.month == 8 else 10)
        for d in (as_of.date() - timedelta(days=n) for n in range(1, 71))
    )
    signals = healthy(usage=lull)
    found = drivers(score(signals, as_of=as_of))
    assert "usage.drop" not in found
    assert "usage.users_drop" not in found
    no_calendar = CONFIG.model_copy(update={"usage": CONFIG.usage.model_copy(update={"seasonality": ()})})
    assert "usage.drop" in drivers(score(signals, no_calendar, as_of=as_of))


def test_an_industrys_own_lull_is_not_a_usage_drop_for_its_accounts_only() -> None:
    """Retail's quiet weeks after the holidays: no drop for a retailer, a drop for anyone else."""
    as_of = datetime(2026, 1, 29, 12, tzinfo=UTC)
    # Usage as the portfolio's calendar expects it (the year-end holidays), and 55% of that from January 8.
    lull = tuple(
        (d, 100.0 * CONFIG.usage.seasonal_factor(d) * (0.55 if date(2026, 1, 8) <= d else 1.0), 10)
        for d in (as_of.date() - timedelta(days=n) for n in range(1, 71))
    )
    retail = SeasonalPeriod(start="01-08", end="02-20", factor=0.55, industries=("retail",))
    config = CONFIG.model_copy(
        update={"usage": CONFIG.usage.model_copy(update={"seasonality": (*CONFIG.usage.seasonality, retail)})}
    )
    retailer = healthy(usage=lull, profile=replace(healthy().profile, industry="retail"))
    bank = healthy(usage=lull, profile=replace(healthy().profile, industry="financial services"))
    assert "usage.drop" not in drivers(score(retailer, config, as_of=as_of))
    assert "usage.drop" in drivers(score(bank, config, as_of=as_of))


def slide_config(start: float = 0.3) -> ScoringConfig:
    slide = Slide(recent_weeks=4, span_weeks=12, ramp=Ramp(start=start, full=0.6, low=30, high=60))
    return CONFIG.model_copy(update={"usage": CONFIG.usage.model_copy(update={"slide": slide})})


SPRING = datetime(2026, 6, 10, 12, tzinfo=UTC)  # the 17 weeks before it hold no seasonal lull


def sliding(weekly_loss: float) -> tuple[UsageDay, ...]:
    """Daily usage losing ``weekly_loss`` of its starting level every week for 17 weeks up to ``SPRING``."""
    return tuple(
        (SPRING.date() - timedelta(days=n), 100.0 * (1 - weekly_loss * ((119 - n) // 7)), 10) for n in range(1, 120)
    )


@pytest.mark.parametrize(
    ("weekly_loss", "slide", "drop"),
    [
        (0.0, False, False),  # steady
        (0.01, False, False),  # 12% over 12 weeks: ordinary drift
        (0.035, True, False),  # 40% over 12 weeks: a slide the weekly drop never sees (its baseline follows it)
        (0.05, True, True),  # faster: the weekly drop sees it too
    ],
)
def test_a_slow_slide(weekly_loss: float, slide: bool, drop: bool) -> None:
    found = drivers(score(healthy(usage=sliding(weekly_loss)), slide_config(), as_of=SPRING))
    assert ("usage.slide" in found) is slide
    assert ("usage.drop" in found) is drop
    if slide:
        assert found["usage.slide"].evidence["weeks"] == 12
        assert found["usage.slide"].message_fr.startswith("Usage en baisse de")


def test_no_slide_driver_without_its_config_and_its_window_is_loaded() -> None:
    assert "usage.slide" not in drivers(score(healthy(usage=sliding(0.05)), as_of=SPRING))
    assert Windows.of(slide_config()).usage_days == 7 * 17 + 1
    assert Windows.of(CONFIG).usage_days == 7 * 9 + 1


def test_drop_within_the_accounts_own_variability_is_not_a_usage_drop() -> None:
    # Weeks swing between 60 and 150 a day: a 35% lower week is ordinary for this account.
    swings = (65.0, 65.0, 140.0, 70.0, 120.0, 95.0, 150.0, 60.0, 110.0, 100.0, 100.0)
    days = [(day_ago(n), swings[(n - 1) // 7], 10) for n in range(1, 71)]
    assert "usage.drop" not in drivers(score(healthy(usage=tuple(days))))
    steady = usage(recent=65, previous=65)
    assert "usage.drop" in drivers(score(healthy(usage=steady)))


def test_seasonal_period_wraps_over_new_year() -> None:
    period = SeasonalPeriod(start="12-22", end="01-02", factor=0.4)
    assert period.covers(date(2025, 12, 25))
    assert period.covers(date(2026, 1, 2))
    assert not period.covers(date(2026, 1, 3))
    with pytest.raises(ValueError, match="should match pattern"):
        SeasonalPeriod(start="13-01", end="01-02", factor=0.4)


def test_users_drop() -> None:
    result = drivers(score(healthy(usage=usage(users=10, recent_users=4))))
    assert "usage.users_drop" in result
    assert "usage.drop" not in result
    assert "usage.users_drop" not in drivers(score(healthy(usage=usage(users=10, recent_users=9))))


def test_silent_regular_account() -> None:
    quiet = tuple(d for d in usage() if d[0] < day_ago(10))
    found = drivers(score(healthy(usage=quiet)))
    assert found["usage.silent"].evidence["days_since_activity"] == 11
    recent = tuple(d for d in usage() if d[0] < day_ago(3))
    assert "usage.silent" not in drivers(score(healthy(usage=recent)))


def test_minimum_volume_guard_keeps_tiny_accounts_quiet() -> None:
    # A tiny account using the product every other week: the same relative drop and silence as a large one.
    tiny = tuple((day_ago(n), 2.0, 1) for n in range(14, 71, 14))
    assert not [d for d in score(healthy(usage=tiny)).drivers if d.component == "usage"]
    large = tuple((day_ago(n), 100.0, 10) for n in range(14, 71)) + tuple((day_ago(n), 0.0, 0) for n in range(1, 14))
    assert {"usage.drop", "usage.silent"} <= set(drivers(score(healthy(usage=large))))


def test_long_silence_is_flagged_even_for_irregular_accounts() -> None:
    tiny = tuple((day_ago(n), 2.0, 1) for n in range(45, 71, 14))
    assert "usage.silent" in drivers(score(healthy(usage=tiny)))


# --- support -------------------------------------------------------------------------------------------


def test_support_surge_against_own_baseline() -> None:
    surge = (*(ticket(f"T-{i}", 2 + i * 2.8) for i in range(10)), ticket("T-old", 60))
    assert drivers(score(healthy(tickets=surge)))["support.surge"].evidence["tickets"] == 10
    # The same 10 tickets a month is this account's normal rate: no surge.
    usual = (*surge, *(ticket(f"T-b{i}", 31 + i * 3) for i in range(30)))
    assert "support.surge" not in drivers(score(healthy(tickets=usual)))


def test_a_few_tickets_on_a_quiet_account_are_not_a_surge() -> None:
    # Three high-priority tickets in a month where there was one in the quarter before: 4x the rate, but three
    # tickets on a quiet account happen by chance (fewer than 3 standard deviations above the expected count).
    few = (*(ticket(f"T-{i}", 3 + i * 9, priority="high") for i in range(3)), ticket("T-old", 60))
    assert "support.surge" not in drivers(score(healthy(tickets=few)))


def test_urgent_open_ticket_grows_with_age() -> None:
    young = drivers(score(healthy(tickets=(ticket("T-1", 3, status="opened", priority="urgent"),))))
    old = drivers(score(healthy(tickets=(ticket("T-1", 12, status="escalated", priority="urgent"),))))
    assert old["support.urgent_open"].points > young["support.urgent_open"].points
    fresh = (ticket("T-1", 0.5, status="opened", priority="urgent"),)
    resolved = (ticket("T-1", 12, priority="urgent"),)
    for tickets in (fresh, resolved):
        assert "support.urgent_open" not in drivers(score(healthy(tickets=tickets)))


def test_escalations_and_reopenings() -> None:
    found = drivers(score(healthy(tickets=(ticket("T-1", 10, escalations=2, reopenings=1),))))
    assert found["support.escalations"].evidence == {"escalations": 2, "reopenings": 1, "window_days": 90}
    stale = (ticket("T-1", 200, escalations=2, reopenings=1),)
    assert "support.escalations" not in drivers(score(healthy(tickets=stale)))


def test_low_csat() -> None:
    unhappy = (ticket("T-1", 12, csat=1), ticket("T-2", 30, csat=2), ticket("T-3", 40, csat=4))
    found = drivers(score(healthy(tickets=unhappy)))["support.low_csat"]
    assert found.evidence["tickets"] == 2
    assert found.evidence["rated"] == 3
    assert "support.low_csat" not in drivers(score(healthy(tickets=(ticket("T-1", 12, csat=4),))))


def test_one_bad_rating_or_a_small_share_is_not_low_csat() -> None:
    one = (ticket("T-1", 12, csat=1),)
    small_share = (*one, ticket("T-2", 20, csat=2), *(ticket(f"T-h{i}", 5 + i * 5, csat=5) for i in range(8)))
    for tickets in (one, small_share):
        assert "support.low_csat" not in drivers(score(healthy(tickets=tickets)))


# --- payment -------------------------------------------------------------------------------------------


def test_overdue_against_the_usual_delay() -> None:
    late = invoice("INV-late", 30, status="issued")
    found = drivers(score(healthy(invoices=(*paid_history(0), late))))
    assert found["payment.overdue"].evidence["max_days_overdue"] == 30
    # An account that always pays ~25 days late is on its usual schedule.
    assert "payment.overdue" not in drivers(score(healthy(invoices=(*paid_history(25), late))))


def test_failed_payment() -> None:
    failing = invoice("INV-f", -5, status="failed", failed=2)
    assert drivers(score(healthy(invoices=(*paid_history(), failing))))["payment.failed"].evidence["failures"] == 2
    recovered_long_ago = replace(invoice("INV-f", 300), failed_count=1)
    assert "payment.failed" not in drivers(score(healthy(invoices=(*paid_history(), recovered_long_ago))))


def test_disputed_and_written_off() -> None:
    disputed = replace(invoice("INV-d", 10, status="disputed"), last_event_time=ago(4))
    written_off = replace(invoice("INV-w", 200, status="written_off"), last_event_time=ago(30))
    found = drivers(score(healthy(invoices=(*paid_history(), disputed, written_off))))
    assert {"payment.disputed", "payment.written_off"} <= set(found)
    assert "1,000.00" in found["payment.disputed"].message_en
    assert "1 000,00" in found["payment.disputed"].message_fr
    old = replace(written_off, last_event_time=ago(400))
    assert not {"payment.disputed", "payment.written_off"} & set(
        drivers(score(healthy(invoices=(*paid_history(), old))))
    )


@settings(max_examples=150, deadline=None)
@given(
    a=st.integers(-30, 400),
    b=st.integers(-30, 400),
    history=st.lists(st.integers(0, 60), max_size=6),
    failed=st.integers(0, 3),
)
def test_more_overdue_days_never_lower_payment_risk(a: int, b: int, history: list[int], failed: int) -> None:
    less, more = sorted((a, b))
    paid = tuple(invoice(f"INV-{i}", 40 + 30 * i, days_late=late) for i, late in enumerate(history))

    def result(days_overdue: int) -> HealthScore:
        open_invoice = invoice("INV-open", days_overdue, status="failed" if failed else "issued", failed=failed)
        return score(healthy(invoices=(*paid, open_invoice)))

    low, high = result(less), result(more)
    assert risk_of(low, "payment") <= risk_of(high, "payment")
    assert low.risk <= high.risk


# --- relationship --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact_id", "role", "code"),
    [
        ("C-champion", "champion", "relationship.champion_left"),
        ("C-sponsor", "executive_sponsor", "relationship.sponsor_left"),
        ("C-dm", "decision_maker", "relationship.decision_maker_left"),
    ],
)
def test_departures_decay(contact_id: str, role: ContactRole, code: str) -> None:
    def points(days_ago: float) -> float | None:
        driver = drivers(score(with_contacts(contact(contact_id, role, left=days_ago), drop=contact_id))).get(code)
        return None if driver is None else driver.points

    recent, older = points(5), points(60)
    assert recent is not None
    assert older is not None
    assert recent > older
    assert points(120) is None
    assert code not in drivers(score(healthy()))


@pytest.mark.parametrize(
    ("contact_id", "code"), [("C-champion", "relationship.no_champion"), ("C-sponsor", "relationship.no_sponsor")]
)
def test_missing_champion_or_sponsor(contact_id: str, code: str) -> None:
    assert code in drivers(score(with_contacts(drop=contact_id)))
    assert code not in drivers(score(healthy()))


def test_new_executive_not_yet_engaged() -> None:
    code = "relationship.new_executive_unengaged"
    new = contact("C-new", "executive_sponsor", added=20, engaged=None, name="Marc Blanc")
    found = drivers(score(with_contacts(new)))
    assert "Marc Blanc" in found[code].message_en
    met = contact("C-new", "executive_sponsor", added=20, engaged=3)
    settled_in = contact("C-new", "decision_maker", added=100, engaged=None)
    for other in (met, settled_in):
        assert code not in drivers(score(with_contacts(other)))


def test_initial_power_map_is_not_a_new_executive() -> None:
    # Every contact arrived together (the CRM import when the account was set up): nobody is "new".
    imported = (
        contact("C-champion", "champion", added=20),
        contact("C-sponsor", "executive_sponsor", added=20, engaged=None),
        contact("C-dm", "decision_maker", added=19, engaged=None),
    )
    assert "relationship.new_executive_unengaged" not in drivers(score(healthy(contacts=imported)))


def test_champion_departure_weighs_less_while_a_successor_may_still_be_named() -> None:
    # Champions are routinely replaced within a few weeks: until the grace has passed the departure is a warning,
    # then it weighs fully if the role is still vacant.
    code, grace = "relationship.champion_left", CONFIG.relationship.successor_grace_days
    share = CONFIG.relationship.pending_successor_share.champion
    base, decay = CONFIG.relationship.departure_points.champion, CONFIG.relationship.departure_decay_days

    def departure(days_ago: float) -> Driver:
        return drivers(score(with_contacts(contact("C-champion", "champion", left=days_ago), drop="C-champion")))[code]

    pending, vacant = departure(grace - 1), departure(grace + 1)
    assert pending.evidence["successor"] == "pending"
    assert pending.points == pytest.approx(base * share * (1 - (grace - 1) / decay), abs=0.1)
    assert "no successor" not in pending.message_en
    assert vacant.evidence["successor"] == "none"
    assert vacant.points == pytest.approx(base * (1 - (grace + 1) / decay), abs=0.1)
    assert vacant.points > pending.points
    # A sponsor's departure weighs fully at once (pending share 1 in this config), a successor may still come.
    sponsor = drivers(score(with_contacts(contact("C-sponsor", "executive_sponsor", left=3), drop="C-sponsor")))
    left = sponsor["relationship.sponsor_left"]
    assert left.evidence["successor"] == "pending"
    assert left.points == pytest.approx(
        CONFIG.relationship.departure_points.executive_sponsor * (1 - 3 / decay), abs=0.1
    )


@pytest.mark.parametrize(("days", "points"), [(10, 0.0), (14, 20.0), (37, 32.5), (60, 45.0), (80, 45.0), (95, 0.0)])
def test_an_unengaged_new_executive_weighs_more_the_longer_it_lasts(days: float, points: float) -> None:
    relationship = CONFIG.relationship.model_copy(
        update={"new_executive_ramp": Ramp(start=14, full=60, low=20, high=45), "new_executive_days": 90}
    )
    config = CONFIG.model_copy(update={"relationship": relationship})
    newcomer = contact("C-new", "decision_maker", added=days, engaged=None)
    found = drivers(score(with_contacts(newcomer), config)).get("relationship.new_executive_unengaged")
    assert (found.points if found is not None else 0.0) == pytest.approx(points)


def test_a_named_successor_counts_without_waiting_for_a_meeting_when_configured() -> None:
    relationship = CONFIG.relationship.model_copy(update={"successor_must_engage": False})
    config = CONFIG.model_copy(update={"relationship": relationship})
    gone = contact("C-sponsor", "executive_sponsor", left=20)
    unengaged = contact("C-new", "executive_sponsor", added=10, engaged=None)
    left = drivers(score(with_contacts(gone, unengaged, drop="C-sponsor"), config))["relationship.sponsor_left"]
    assert left.evidence["successor"] == "named"


@pytest.mark.parametrize(
    ("others", "left_days_ago", "sole", "successor", "share"),
    [
        ((), 2, True, "pending", 0.5),  # the only decision-level contact, within its shorter grace
        ((), 5, True, "none", 1.0),  # past its shorter grace: vacant, weighing fully
        (("C-dm",), 5, False, "pending", 0.5),  # a decision maker remains: the ordinary grace
        (("C-dm",), 12, False, "none", 1.0),
    ],
)
def test_the_only_decision_level_contact_leaving_has_a_shorter_grace(
    others: tuple[str, ...], left_days_ago: int, sole: bool, successor: str, share: float
) -> None:
    relationship = CONFIG.relationship.model_copy(
        update={
            "successor_grace_days": 10,
            "sole_successor_grace_days": 3,
            "pending_successor_share": CONFIG.relationship.pending_successor_share.model_copy(
                update={"executive_sponsor": 0.5}
            ),
        }
    )
    config = CONFIG.model_copy(update={"relationship": relationship})
    contacts = (
        contact("C-sponsor", "executive_sponsor", left=left_days_ago),
        contact("C-champion", "champion"),
        *(contact(c, "decision_maker") for c in others),
    )
    left = drivers(score(healthy(contacts=contacts), config))["relationship.sponsor_left"]
    assert left.evidence["sole_decision_level"] is sole
    assert left.evidence["successor"] == successor
    decay = CONFIG.relationship.departure_decay_days
    full = CONFIG.relationship.departure_points.executive_sponsor * (1 - left_days_ago / decay)
    assert left.points == pytest.approx(full * share, abs=0.1)


def test_replaced_champion_weighs_less_than_a_lost_one() -> None:
    code = "relationship.champion_left"
    left = CONFIG.relationship.successor_grace_days + 5
    lost = drivers(score(with_contacts(contact("C-champion", "champion", left=left), drop="C-champion")))[code]
    successor = contact("C-new", "champion", added=10)
    replaced = drivers(
        score(with_contacts(contact("C-champion", "champion", left=left), successor, drop="C-champion"))
    )[code]
    assert replaced.evidence["successor"] == "named"
    assert replaced.points == pytest.approx(lost.points * CONFIG.relationship.successor_factor, abs=0.1)
    # A new executive sponsor counts as a successor only once engaged.
    gone = contact("C-sponsor", "executive_sponsor", left=20)
    unengaged = contact("C-new", "executive_sponsor", added=10, engaged=None)
    engaged = contact("C-new", "executive_sponsor", added=10, engaged=5)
    sponsor = "relationship.sponsor_left"
    alone = drivers(score(with_contacts(gone, drop="C-sponsor")))[sponsor].points
    assert drivers(score(with_contacts(gone, unengaged, drop="C-sponsor")))[sponsor].points == alone
    assert drivers(score(with_contacts(gone, engaged, drop="C-sponsor")))[sponsor].points < alone


def test_single_threaded() -> None:
    code = "relationship.single_threaded"
    alone = drivers(score(healthy(contacts=(contact("C-champion", "champion"),))))[code]
    no_decision = drivers(score(healthy(contacts=(contact("C-a", "champion"), contact("C-b", "user")))))[code]
    assert alone.evidence["active_contacts"] == 1
    assert alone.points > no_decision.points
    assert code not in drivers(score(healthy()))


def test_active_detractor() -> None:
    assert "relationship.detractor" in drivers(score(with_contacts(contact("C-x", "detractor"))))
    assert "relationship.detractor" not in drivers(score(with_contacts(contact("C-x", "detractor", left=10))))


def test_no_contact_data_is_not_a_relationship_risk() -> None:
    assert risk_of(score(healthy(contacts=())), "relationship") == 0


# --- engagement ----------------------------------------------------------------------------------------


def test_meetings_missed() -> None:
    missed = tuple(Engagement(ago(10 + i), "meeting", "no_show") for i in range(3))
    assert "engagement.meetings_missed" in drivers(score(healthy(engagements=healthy_engagements() + missed)))
    one = (Engagement(ago(10), "meeting", "declined"),)
    two_of_many = (*missed[:2], *(Engagement(ago(12 + i), "meeting", "attended") for i in range(6)))
    for few in (one, two_of_many):
        assert "engagement.meetings_missed" not in drivers(score(healthy(engagements=healthy_engagements() + few)))


def test_no_business_review() -> None:
    stale = tuple(e for e in healthy_engagements() if not (e.kind == "business_review" and e.time > ago(150)))
    assert (
        drivers(score(healthy(engagements=stale)))["engagement.no_business_review"].evidence["days_since_review"] == 200
    )
    # Sixty days of history without a review is too short to say anything.
    young = (Engagement(ago(60), "meeting", "attended"), Engagement(ago(5), "email", "replied"))
    assert "engagement.no_business_review" not in drivers(score(healthy(engagements=young)))


def test_lower_nps_weighs_more_and_a_six_alone_is_no_driver() -> None:
    def nps(value: int) -> float:
        survey = Engagement(ago(3), "nps_survey", "responded", nps_score=value)
        found = drivers(score(healthy(engagements=(*healthy_engagements(), survey))))
        return found["engagement.nps_detractor"].points if "engagement.nps_detractor" in found else 0.0

    points = [nps(v) for v in range(7)]
    assert points == sorted(points, reverse=True)
    assert points[6] == 0.0  # 6 is a detractor by the NPS definition, but on its own no churn signal
    assert points[1] == points[0] == CONFIG.engagement.nps.high  # 0 or 1: as telling as a departed champion


def test_nps_detractor_uses_the_latest_score() -> None:
    low = Engagement(ago(3), "nps_survey", "responded", nps_score=3)
    assert "engagement.nps_detractor" in drivers(score(healthy(engagements=(*healthy_engagements(), low))))
    recovered = Engagement(ago(2), "nps_survey", "responded", nps_score=9)
    assert "engagement.nps_detractor" not in drivers(
        score(healthy(engagements=(*healthy_engagements(), low, recovered)))
    )


def test_no_reply_streak() -> None:
    silence = tuple(Engagement(ago(4 - i * 0.5), "email", "no_reply") for i in range(4))
    assert (
        drivers(score(healthy(engagements=(*healthy_engagements(), *silence))))["engagement.no_reply_streak"].evidence[
            "emails"
        ]
        == 5
    )  # the healthy history already ends on one unanswered email
    broken = (*silence, Engagement(ago(0.5), "email", "replied"))
    assert "engagement.no_reply_streak" not in drivers(score(healthy(engagements=(*healthy_engagements(), *broken))))


# --- renewal -------------------------------------------------------------------------------------------


def test_renewal_near_amplifies_risk_within_bounds() -> None:
    troubled = healthy(usage=usage(recent=30, previous=30))
    far = score(troubled)
    near = score(replace(troubled, profile=replace(troubled.profile, renewal_date=day_ago(-20))))
    assert "renewal.near" not in drivers(far)
    driver = drivers(near)["renewal.near"]
    assert driver.severity == "info"
    assert driver.evidence["days_to_renewal"] == 20
    assert near.risk > far.risk


def test_renewal_multiplier_is_capped_at_100() -> None:
    config = CONFIG.model_copy(update={"renewal": CONFIG.renewal.model_copy(update={"max_multiplier": 3.0})})
    signals = worst_account()
    assert score(signals, config).risk <= 100


# --- messages, purity ----------------------------------------------------------------------------------


def worst_account() -> AccountSignals:
    return AccountSignals(
        profile=AccountProfile("acme", "strategic", Decimal("480000"), renewal_date=day_ago(-10)),
        usage=tuple(d for d in usage(recent=30, previous=30, users=10, recent_users=2) if d[0] < day_ago(9)),
        tickets=(
            *(ticket(f"T-{i}", 1 + i * 2, status="opened", priority="urgent", escalations=1) for i in range(6)),
            ticket("T-c", 10, csat=1, reopenings=2),
            ticket("T-d", 20, csat=2),
        ),
        invoices=(
            *paid_history(),
            invoice("INV-o", 50, status="failed", failed=3),
            replace(invoice("INV-d", 10, status="disputed"), last_event_time=ago(2)),
            replace(invoice("INV-w", 100, status="written_off"), last_event_time=ago(20)),
        ),
        contacts=(
            contact("C-champion", "champion", left=4, name="Claire Martin"),
            contact("C-sponsor", "executive_sponsor", left=30),
            contact("C-dm", "decision_maker", left=50),
            contact("C-new", "decision_maker", added=25, engaged=None, left=2),
            contact("C-x", "detractor"),
            contact("C-dm2", "decision_maker", added=20, engaged=None),
        ),
        engagements=(
            Engagement(ago(300), "business_review", "attended"),
            *(Engagement(ago(20 + i), "business_review", "cancelled") for i in range(3)),
            Engagement(ago(5), "nps_survey", "responded", nps_score=2),
            *(Engagement(ago(10 - i), "email", "no_reply") for i in range(6)),
        ),
    )


EVERY_CODE = {
    "usage.drop",
    "usage.users_drop",
    "usage.silent",
    "support.surge",
    "support.urgent_open",
    "support.escalations",
    "support.low_csat",
    "payment.overdue",
    "payment.failed",
    "payment.disputed",
    "payment.written_off",
    "relationship.champion_left",
    "relationship.sponsor_left",
    "relationship.decision_maker_left",
    "relationship.no_champion",
    "relationship.no_sponsor",
    "relationship.new_executive_unengaged",
    "relationship.detractor",
    "engagement.meetings_missed",
    "engagement.no_business_review",
    "engagement.nps_detractor",
    "engagement.no_reply_streak",
    "renewal.near",
}


def test_every_driver_speaks_english_and_french() -> None:
    result = score(worst_account())
    assert set(drivers(result)) == EVERY_CODE
    assert result.level == "critical"
    assert [d.points for d in result.drivers] == sorted((d.points for d in result.drivers), reverse=True)
    for d in result.drivers:
        for message in (d.message_en, d.message_fr):
            assert message.strip()
            assert "\n" not in message
        assert d.message_en != d.message_fr
    counted = [d for d in result.drivers if not d.code.startswith(("relationship.no_", "engagement.nps"))]
    assert all(any(ch.isdigit() for ch in d.message_en + d.message_fr) for d in counted)


def test_deterministic_and_independent_of_input_order() -> None:
    signals = worst_account()
    rng = random.Random(7)

    def shuffled(items: tuple[Any, ...]) -> tuple[Any, ...]:
        items_list = list(items)
        rng.shuffle(items_list)
        return tuple(items_list)

    reordered = replace(
        signals,
        usage=shuffled(signals.usage),
        tickets=shuffled(signals.tickets),
        invoices=shuffled(signals.invoices),
        contacts=shuffled(signals.contacts),
        engagements=shuffled(signals.engagements),
    )
    assert score(signals) == score(signals) == score(reordered)


def test_events_after_as_of_are_ignored() -> None:
    # A troubled account at as_of, whose troubles all clear up a few hours later.
    history = (
        Engagement(ago(200), "business_review", "attended"),
        Engagement(ago(10), "nps_survey", "responded", nps_score=3),
    )
    base = healthy(
        usage=tuple(d for d in usage() if d[0] < day_ago(10)),
        tickets=(ticket("T-u", 5, status="opened", priority="urgent"),),
        invoices=(*paid_history(), invoice("INV-late", 20, status="issued")),
        engagements=history,
    )
    assert {"usage.silent", "support.urgent_open", "payment.overdue", "engagement.nps_detractor"} <= set(
        drivers(score(base))
    )
    later = AS_OF + timedelta(hours=3)
    resolved_later = replace(base.tickets[0], status="closed", resolved_at=later, escalations=4, last_event_time=later)
    paid_later = replace(base.invoices[-1], status="paid", paid_at=later, last_event_time=later)
    champion_leaves_later = replace(healthy_contacts()[1], active=False, left_at=later)
    future = replace(
        base,
        usage=(*base.usage, (day_ago(-1), 1e6, 999), (day_ago(0), 0.0, 0)),
        tickets=(resolved_later, ticket("T-future", -2, status="opened", priority="urgent")),
        invoices=(
            *base.invoices[:-1],
            paid_later,
            replace(invoice("INV-x", 1, status="disputed"), issued_at=later, last_event_time=later),
        ),
        contacts=(
            *(c for c in healthy_contacts() if c.role != "champion"),
            champion_leaves_later,
            contact("C-later", "detractor", added=-1),
        ),
        engagements=(
            *history,
            Engagement(later, "business_review", "attended"),
            Engagement(later, "nps_survey", "responded", nps_score=10),
        ),
    )
    assert score(future) == score(base)
    assert score(future, as_of=later + timedelta(days=1)) != score(base, as_of=later + timedelta(days=1))


# --- bounds (hypothesis) -------------------------------------------------------------------------------

times = st.integers(-400 * 24, 30 * 24).map(lambda h: AS_OF + timedelta(hours=h))
dates = st.integers(-60, 400).map(day_ago)
ids = st.sampled_from(["a", "b", "c", "d"])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


signals_strategy = st.builds(
    AccountSignals,
    profile=st.builds(
        AccountProfile,
        account_id=st.just("acme"),
        tier=st.sampled_from(get_args(Tier)),
        arr=st.just(Decimal("1000")),
        renewal_date=maybe(st.integers(-120, 30).map(day_ago)),
    ),
    usage=st.lists(
        st.tuples(st.integers(-3, 80).map(day_ago), st.floats(0, 1e6), st.integers(0, 500)),
        max_size=80,
    ).map(tuple),
    tickets=st.lists(
        st.builds(
            Ticket,
            ticket_id=ids,
            status=st.sampled_from(get_args(TicketStatus)),
            priority=st.sampled_from(get_args(TicketPriority)),
            opened_at=maybe(times),
            resolved_at=maybe(times),
            escalations=st.integers(0, 20),
            reopenings=st.integers(0, 20),
            csat=maybe(st.integers(1, 5)),
            last_event_time=times,
        ),
        max_size=15,
    ).map(tuple),
    invoices=st.lists(
        st.builds(
            Invoice,
            invoice_id=ids,
            status=st.sampled_from(get_args(InvoiceStatus)),
            amount=st.decimals(0, 10**6, places=2, allow_nan=False, allow_infinity=False),
            due_date=dates,
            paid_at=maybe(times),
            failed_count=st.integers(0, 10),
            last_event_time=times,
            issued_at=maybe(times),
        ),
        max_size=15,
    ).map(tuple),
    contacts=st.lists(
        st.builds(
            Contact,
            contact_id=ids,
            role=st.sampled_from(get_args(ContactRole)),
            active=st.booleans(),
            added_at=maybe(times),
            left_at=maybe(times),
            last_engaged_at=maybe(times),
            name=maybe(st.sampled_from(["Léa", "Marc"])),
        ),
        max_size=10,
    ).map(tuple),
    engagements=st.lists(
        st.builds(
            Engagement,
            time=times,
            kind=st.sampled_from(get_args(EngagementKind)),
            outcome=st.sampled_from(get_args(EngagementOutcome)),
            nps_score=maybe(st.integers(0, 10)),
        ),
        max_size=30,
    ).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(signals=signals_strategy, shift_hours=st.integers(-200, 200))
def test_scores_stay_within_bounds(signals: AccountSignals, shift_hours: int) -> None:
    as_of = AS_OF + timedelta(hours=shift_hours)
    result = score(signals, as_of=as_of)
    assert 0 <= result.risk <= 100
    assert result.level == CONFIG.levels.of(result.risk)
    assert all(0 <= c.risk <= 100 for c in result.components)
    assert all(0 <= d.points <= 100 and d.message_en and d.message_fr for d in result.drivers)
    zero_counts = re.compile(r"(?<![\d,.])0 (day|jour|escalation|escalade|reopening|réouverture)")
    assert not [m for d in result.drivers for m in (d.message_en, d.message_fr) if zero_counts.search(m)]
    points = [d.points for d in result.drivers]
    assert points == sorted(points, reverse=True)
    assert len({d.code for d in result.drivers}) == len(result.drivers)
    reversed_signals = replace(
        signals,
        usage=signals.usage[::-1],
        tickets=signals.tickets[::-1],
        invoices=signals.invoices[::-1],
        contacts=signals.contacts[::-1],
        engagements=signals.engagements[::-1],
    )
    assert score(reversed_signals, as_of=as_of) == result


# --- config --------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, change: Any) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "scoring.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_default_config_loads_and_round_trips(tmp_path: Path) -> None:
    assert load_scoring_config(write_config(tmp_path, lambda raw: None)) == SHIPPED
    custom = load_scoring_config(write_config(tmp_path, lambda raw: raw.update(version="pilot-7")))
    assert score(healthy(), custom).config_version == "pilot-7"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda raw: raw["tiers"]["strategic"]["weights"].update(usage=-1), "tiers.strategic.weights.usage"),
        (lambda raw: raw["levels"].update(high=20), "levels"),
        (lambda raw: raw["usage"]["drop"].update(full=0.1), "usage.drop"),
        (lambda raw: raw["payment"].update(overdue_days=3), "payment.overdue_days"),
        (lambda raw: raw["relationship"].pop("departure_decay_days"), "relationship.departure_decay_days"),
        (lambda raw: raw["tiers"].pop("key"), "tiers.key"),
        (lambda raw: raw["usage"].update(single_week_factor=0.9, two_week_factor=0.8), "usage"),
        (
            lambda raw: raw["relationship"]["pending_successor_share"].update(champion=1.5),
            "relationship.pending_successor_share.champion",
        ),
        (lambda raw: raw["support"]["priority_weights"].pop("urgent"), "support"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, change: Any, field: str) -> None:
    with pytest.raises(ScoringConfigError) as caught:
        load_scoring_config(write_config(tmp_path, change))
    assert caught.value.field == field
    assert field in str(caught.value)


def test_unreadable_or_malformed_config(tmp_path: Path) -> None:
    with pytest.raises(ScoringConfigError, match="cannot read"):
        load_scoring_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("levels: {medium: 30,\n", encoding="utf-8")
    with pytest.raises(ScoringConfigError, match="invalid YAML"):
        load_scoring_config(broken)
    broken.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ScoringConfigError, match="mapping"):
        load_scoring_config(broken)
