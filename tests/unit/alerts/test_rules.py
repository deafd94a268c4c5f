"""Every rule: fires, does not fire, threshold edges, tier filtering, subject, condition time and titles."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.model import AccountSnapshot, DesiredAlert
from alerts.rules import DRIVER_RULES, evaluate
from schemas.vocabulary import Driver, Level, Tier
from tests.unit.alerts.helpers import AS_OF, CONFIG, ago, day, driver, snapshot, with_rule


def by_rule(snap: AccountSnapshot, config: object = CONFIG) -> dict[str, DesiredAlert]:
    from alerts.config import AlertsConfig

    assert isinstance(config, AlertsConfig)
    return {a.rule: a for a in evaluate(snap, config)}


# --- risk level --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "severity"),
    [("low", None), ("medium", None), ("high", "warning"), ("critical", "critical")],
)
def test_risk_level_severity_per_level(level: Level, severity: str | None) -> None:
    found = by_rule(snapshot(level=level, risk=60, level_since=ago(days=4)))
    if severity is None:
        assert "risk_level" not in found
    else:
        alert = found["risk_level"]
        assert alert.severity == severity
        assert alert.dedup_key == "acme:risk_level"
        assert alert.condition_since == ago(days=4)  # the level's own time, not as_of


def test_risk_level_titles_and_fallback_time() -> None:
    alert = by_rule(snapshot(level="high", risk=62.5))["risk_level"]
    assert alert.title_en == "High risk (62.5/100)"
    assert alert.title_fr == "Risque élevé (62,5/100)"
    assert alert.condition_since == AS_OF  # level_since unknown


def test_risk_level_keeps_the_top_three_drivers_strongest_first() -> None:
    drivers = [driver("usage.drop", 40), driver("support.surge", 70), driver("payment.failed", 10), driver("x.y", 55)]
    alert = by_rule(snapshot(*drivers, level="high", risk=60))["risk_level"]
    assert [d.points for d in alert.drivers] == [70, 55, 40]


def test_risk_level_severity_mapping_is_configurable() -> None:
    config = with_rule("risk_level", severity={"medium": "info", "high": "critical"})
    assert by_rule(snapshot(level="medium", risk=40), config)["risk_level"].severity == "info"
    assert by_rule(snapshot(level="high", risk=60), config)["risk_level"].severity == "critical"
    assert "risk_level" not in by_rule(snapshot(level="critical", risk=90), config)


# --- risk jump ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "now", "fires"),
    [
        (40.0, 55.0, True),  # exactly +15
        (40.3, 55.3, True),  # +15 that binary floating point makes 14.999999999999996
        (40.1, 55.0, False),  # +14.9
        (55.0, 40.0, False),  # a fall
        (None, 90.0, False),  # no history
    ],
)
def test_risk_jump_threshold(before: float | None, now: float, fires: bool) -> None:
    found = by_rule(snapshot(risk=now, risk_7d_ago=before, level="high"))
    assert ("risk_jump" in found) is fires


def test_a_risk_jump_that_ends_below_high_is_not_an_alert_unless_configured() -> None:
    assert "risk_jump" not in by_rule(snapshot(risk=25, risk_7d_ago=5, level="low"))
    assert "risk_jump" not in by_rule(snapshot(risk=45, risk_7d_ago=25, level="medium"))
    assert "risk_jump" in by_rule(
        snapshot(risk=45, risk_7d_ago=25, level="medium"), with_rule("risk_jump", min_level="medium")
    )
    assert "risk_jump" in by_rule(
        snapshot(risk=25, risk_7d_ago=5, level="low"), with_rule("risk_jump", min_level="low")
    )


def test_a_risk_jump_a_driver_alert_explains_is_not_an_alert_of_its_own_unless_configured() -> None:
    jumped = snapshot(driver("usage.drop", 50), risk=60, risk_7d_ago=40, level="high")
    found = by_rule(jumped)
    assert "usage_drop" in found
    assert "risk_jump" not in found
    assert "risk_jump" in by_rule(jumped, with_rule("risk_jump", unless_explained=False))
    # drivers under every rule's threshold explain nothing: the jump is the only word of them
    assert "risk_jump" in by_rule(snapshot(driver("usage.drop", 20), risk=60, risk_7d_ago=40, level="high"))


def jumped(*drivers: Driver, before: dict[str, float], now: dict[str, float]) -> AccountSnapshot:
    return snapshot(*drivers, risk=35, risk_7d_ago=15, level="medium", components=now, components_7d_ago=before)


# Jumps that end at medium, alerted on (the default waits for high, where risk_level alerts too): the one-rule
# exception alone decides.
MEDIUM_JUMPS = with_rule("risk_jump", min_level="medium")


USAGE_DIP = (driver("usage.drop", 26), driver("usage.users_drop", 15))  # both under usage_drop's 30 points


@pytest.mark.parametrize(
    ("drivers", "before", "now", "fires"),
    [
        # a one-week usage dip, under the usage drop rule's threshold, is all that rose: that rule's call
        (USAGE_DIP, {"usage": 0.0, "relationship": 20.0}, {"usage": 40.0, "relationship": 20.0}, False),
        # the same, with a steady driver of another component beside it (an old absence of champion)
        (
            (*USAGE_DIP, driver("relationship.no_champion", 20)),
            {"usage": 0.0, "relationship": 20.0},
            {"usage": 40.0, "relationship": 20.0},
            False,
        ),
        # an invoice a little late, under the payment rule's threshold, alone
        ((driver("payment.overdue", 25),), {"payment": 0.0}, {"payment": 60.0}, False),
        # two rules' signals each under its threshold: the jump is the only word of them together
        (
            (*USAGE_DIP, driver("payment.overdue", 25)),
            {"usage": 0.0, "payment": 0.0},
            {"usage": 30.0, "payment": 30.0},
            True,
        ),
        # a signal no rule watches (bad satisfaction ratings) took part: nobody else tells of it
        (
            (driver("support.low_csat", 30), driver("support.surge", 20)),
            {"support": 0.0},
            {"support": 50.0},
            True,
        ),
        # nothing rose but the renewal coming closer: not one rule's signal
        (USAGE_DIP, {"usage": 40.0}, {"usage": 40.0}, True),
        # the components unknown (no history): the jump stands
        (USAGE_DIP, {}, {"usage": 40.0}, True),
    ],
)
def test_a_risk_jump_that_is_only_one_rules_signal_under_its_threshold_is_that_rules_call(
    drivers: tuple[Driver, ...], before: dict[str, float], now: dict[str, float], fires: bool
) -> None:
    found = by_rule(jumped(*drivers, before=before, now=now), MEDIUM_JUMPS)
    assert ("risk_jump" in found) is fires
    assert not set(found) - {"risk_jump"}  # every driver under its rule's threshold


def test_the_one_rule_exception_can_be_turned_off() -> None:
    dip = jumped(*USAGE_DIP, before={"usage": 0.0}, now={"usage": 40.0})
    assert "risk_jump" not in by_rule(dip, MEDIUM_JUMPS)
    assert "risk_jump" in by_rule(dip, with_rule("risk_jump", MEDIUM_JUMPS, unless_one_rule=False))
    # and once the drop is worth its own alert, that alert says why, the jump stays quiet as before
    deeper = jumped(driver("usage.drop", 45), before={"usage": 0.0}, now={"usage": 45.0})
    assert set(by_rule(deeper, MEDIUM_JUMPS)) == {"usage_drop"}


def test_risk_jump_title_and_configurable_threshold() -> None:
    alert = by_rule(snapshot(risk=72.5, risk_7d_ago=50, level="high"))["risk_jump"]
    assert alert.title_en == "Risk up 22.5 points in 7 days (50 → 72.5)"
    assert alert.title_fr == "Risque en hausse de 22,5 points en 7 jours (50 → 72,5)"
    assert alert.severity == "warning"
    config = with_rule("risk_jump", min_jump=25.0, severity="critical")
    assert "risk_jump" not in by_rule(snapshot(risk=72.5, risk_7d_ago=50, level="high"), config)
    assert by_rule(snapshot(risk=80, risk_7d_ago=50, level="critical"), config)["risk_jump"].severity == "critical"


# --- driver rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "code"), [(rule, code) for rule, (codes, _) in DRIVER_RULES.items() for code in codes]
)
def test_each_driver_code_fires_its_rule(rule: str, code: str) -> None:
    d = driver(code, 90, since=ago(days=3), evidence={"contact_id": "C-7"}, en=f"{code} said", fr=f"{code} dit")
    found = by_rule(snapshot(d, tier="strategic"))
    alert = found[rule]
    assert alert.drivers == (d,)
    assert alert.condition_since == ago(days=3)
    assert (alert.title_en, alert.title_fr) == (f"{code} said", f"{code} dit")
    assert set(found) == {rule}  # and nothing else


@pytest.mark.parametrize(
    ("rule", "code", "min_points"),
    [
        ("usage_drop", "usage.drop", 30),
        ("usage_slide", "usage.slide", 30),
        ("ticket_surge", "support.surge", 30),
        ("urgent_ticket_open", "support.urgent_open", 35),
        ("payment_late", "payment.overdue", 30),
        ("payment_failed", "payment.failed", 30),
        ("champion_left", "relationship.champion_left", 20),
        ("sponsor_left", "relationship.sponsor_left", 20),
        ("decision_maker_left", "relationship.decision_maker_left", 15),
        ("single_threaded", "relationship.single_threaded", 30),
        ("business_review_missed", "engagement.meetings_missed", 20),
        ("nps_detractor", "engagement.nps_detractor", 25),
    ],
)
def test_driver_rule_min_points_edge(rule: str, code: str, min_points: float) -> None:
    assert rule in by_rule(snapshot(driver(code, min_points)))  # at the threshold: fires
    assert rule not in by_rule(snapshot(driver(code, min_points - 0.1)))  # just below: does not


def test_a_slow_slide_is_its_own_rule_and_off_unless_configured() -> None:
    slide = snapshot(driver("usage.slide", 45))
    assert set(by_rule(slide)) == {"usage_slide"}  # not usage_drop's: a slide is quieter than a drop
    assert by_rule(slide)["usage_slide"].severity == "warning"
    written_before = {k: v for k, v in CONFIG.rules.model_dump().items() if k != "usage_slide"}
    older = type(CONFIG.rules).model_validate(written_before)
    assert not older.usage_slide.enabled  # a rules file written before the rule stays valid, and quiet
    assert "usage_slide" not in by_rule(slide, CONFIG.model_copy(update={"rules": older}))


def test_unrelated_drivers_fire_nothing() -> None:
    drivers = [driver("support.escalations", 60), driver("relationship.no_champion", 35), driver("renewal.near", 9)]
    assert evaluate(snapshot(*drivers), CONFIG) == ()


@pytest.mark.parametrize(
    ("points", "severity"), [(30, "warning"), (64.9, "warning"), (65, "critical"), (80, "critical")]
)
def test_severity_from_points(points: float, severity: str) -> None:
    assert by_rule(snapshot(driver("usage.silent", points)))["usage_drop"].severity == severity


def test_several_codes_of_one_rule_make_one_alert() -> None:
    drop = driver("usage.drop", 40, since=ago(days=14), en="Usage down 60%")
    silent = driver("usage.silent", 70, since=ago(days=9), en="No product activity for 9 days")
    alert = by_rule(snapshot(drop, silent))["usage_drop"]
    assert alert.drivers == (silent, drop)  # strongest first
    assert alert.severity == "critical"  # from the strongest
    assert alert.title_en == "No product activity for 9 days"
    assert alert.condition_since == ago(days=14)  # the earliest known start


def test_condition_time_falls_back_to_as_of_and_never_exceeds_it() -> None:
    assert by_rule(snapshot(driver("relationship.single_threaded", 35)))["single_threaded"].condition_since == AS_OF
    future = driver("payment.failed", 40, since=AS_OF + timedelta(hours=1))
    assert by_rule(snapshot(future))["payment_failed"].condition_since == AS_OF


def test_departures_have_one_alert_per_contact() -> None:
    claire = driver(
        "relationship.champion_left",
        80,
        since=ago(days=5),
        evidence={"contact_id": "C-7", "name": "Claire Martin"},
        en="Champion Claire Martin left 5 days ago",
        fr="Claire Martin (champion) a quitté le compte il y a 5 jours",
    )
    paul = driver("relationship.sponsor_left", 60, since=ago(days=1), evidence={"contact_id": "C-9"})
    found = {a.dedup_key: a for a in evaluate(snapshot(claire, paul), CONFIG)}
    assert set(found) == {"acme:champion_left:C-7", "acme:sponsor_left:C-9"}
    alert = found["acme:champion_left:C-7"]
    assert (alert.subject, alert.severity) == ("C-7", "critical")
    assert alert.title_fr == "Claire Martin (champion) a quitté le compte il y a 5 jours"


def test_departure_without_contact_id_has_no_subject() -> None:
    alert = by_rule(snapshot(driver("relationship.champion_left", 80, evidence={"contact_id": None})))["champion_left"]
    assert (alert.subject, alert.dedup_key) == (None, "acme:champion_left")


@pytest.mark.parametrize(
    ("rule", "code", "tier", "fires"),
    [
        ("single_threaded", "relationship.single_threaded", "strategic", True),
        ("single_threaded", "relationship.single_threaded", "key", True),
        ("single_threaded", "relationship.single_threaded", "standard", False),  # default tiers: strategic, key
        ("new_executive_unengaged", "relationship.new_executive_unengaged", "standard", False),
        ("new_executive_unengaged", "relationship.new_executive_unengaged", "key", True),
        ("usage_drop", "usage.drop", "standard", True),  # default: every tier
    ],
)
def test_default_tier_filtering(rule: str, code: str, tier: Tier, fires: bool) -> None:
    assert (rule in by_rule(snapshot(driver(code, 50), tier=tier))) is fires


def test_tiers_and_enabled_are_configurable() -> None:
    only_key = with_rule("usage_drop", tiers=("key",))
    assert "usage_drop" not in by_rule(snapshot(driver("usage.drop", 50), tier="strategic"), only_key)
    assert "usage_drop" in by_rule(snapshot(driver("usage.drop", 50), tier="key"), only_key)
    off = with_rule("usage_drop", enabled=False)
    assert "usage_drop" not in by_rule(snapshot(driver("usage.drop", 90), tier="key"), off)
    level_off = with_rule("risk_level", tiers=("standard",))
    assert "risk_level" not in by_rule(snapshot(level="critical", risk=90), level_off)


# --- renewal at risk ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_to_renewal", "level", "severity"),
    [
        (45, "high", "warning"),
        (45, "critical", "critical"),
        (45, "medium", None),  # not risky enough
        (90, "high", "warning"),  # last day of the window
        (91, "high", None),  # outside
        (0, "high", "warning"),  # renewal today
        (-1, "critical", None),  # already past
    ],
)
def test_renewal_at_risk(days_to_renewal: int, level: Level, severity: str | None) -> None:
    renewal = AS_OF.date() + timedelta(days=days_to_renewal)
    found = by_rule(snapshot(level=level, risk=70, renewal_date=renewal))
    assert (found["renewal_at_risk"].severity if "renewal_at_risk" in found else None) == severity


def test_renewal_at_risk_condition_time_is_the_later_of_window_and_level() -> None:
    renewal = day(2027, 1, 31)  # window opened 2026-11-02
    late_level = by_rule(snapshot(level="high", risk=60, renewal_date=renewal, level_since=ago(days=2)))
    assert late_level["renewal_at_risk"].condition_since == ago(days=2)
    early_level = by_rule(snapshot(level="high", risk=60, renewal_date=renewal, level_since=ago(days=60)))
    assert early_level["renewal_at_risk"].condition_since.date() == day(2026, 11, 2)


def test_renewal_at_risk_title_and_drivers() -> None:
    near = driver("renewal.near", 5, severity="info")
    strong = driver("usage.drop", 60)
    alert = by_rule(snapshot(strong, near, level="high", risk=60, renewal_date=day(2027, 1, 31)))["renewal_at_risk"]
    assert alert.title_en == "Renewal in 72 days (2027-01-31) with high risk"
    assert alert.title_fr == "Renouvellement dans 72 jours (le 31/01/2027) avec un risque élevé"
    assert alert.drivers == (strong, near)


# --- whole evaluation --------------------------------------------------------------------------------------


def test_evaluate_rejects_naive_as_of() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(snapshot(as_of=AS_OF.replace(tzinfo=None)), CONFIG)


_CODES = sorted({code for codes, _ in DRIVER_RULES.values() for code in codes} | {"renewal.near", "support.low_csat"})


@given(
    codes=st.lists(st.sampled_from(_CODES), max_size=8),
    points=st.lists(st.floats(0, 100), min_size=8, max_size=8),
    level=st.sampled_from(["low", "medium", "high", "critical"]),
    tier=st.sampled_from(["strategic", "key", "standard"]),
)
def test_evaluate_is_deterministic_and_keys_are_unique(
    codes: list[str], points: list[float], level: Level, tier: Tier
) -> None:
    drivers = [
        driver(c, p, evidence={"contact_id": f"C-{i % 2}"})
        for i, (c, p) in enumerate(zip(codes, points[: len(codes)], strict=True))
    ]
    snap = snapshot(*drivers, level=level, tier=tier, risk=50, risk_7d_ago=20)
    first = evaluate(snap, CONFIG)
    assert first == evaluate(replace(snap, drivers=tuple(reversed(drivers))), CONFIG)
    keys = [a.dedup_key for a in first]
    assert keys == sorted(set(keys))
    assert all(a.condition_since <= AS_OF for a in first)


# --- digest only, for_days, departures -----------------------------------------------------------------------


def test_a_digest_only_rule_never_pages() -> None:
    paging = by_rule(snapshot(driver("payment.overdue", 80)))["payment_late"]
    quiet = by_rule(snapshot(driver("payment.overdue", 80)), with_rule("payment_late", digest_only=True))
    assert paging.severity == "critical"
    assert quiet["payment_late"].severity == "warning"
    assert with_rule("payment_late", digest_only=True).digest_only_rules() == ("payment_late",)


@pytest.mark.parametrize(
    ("since_days", "for_days", "fires"),
    [(3, 0, True), (3, 7, False), (7, 7, True), (20, 14, True), (13.9, 14, False)],
)
def test_a_rule_fires_only_once_its_condition_has_held_for_days(
    since_days: float, for_days: float, fires: bool
) -> None:
    config = with_rule("nps_detractor", for_days=for_days)
    found = by_rule(snapshot(driver("engagement.nps_detractor", 60, since=ago(days=since_days))), config)
    assert ("nps_detractor" in found) is fires


def test_for_days_on_the_level_counts_from_when_the_level_was_reached() -> None:
    config = with_rule("risk_level", for_days=7)
    fresh = snapshot(level="high", risk=60, level_since=ago(days=2))
    held = snapshot(level="high", risk=60, level_since=ago(days=8))
    assert "risk_level" not in by_rule(fresh, config)
    assert "risk_level" in by_rule(held, config)


def departure(successor: str, sole: bool = False) -> Driver:
    evidence: dict[str, str | int | float | None] = {"contact_id": "C-7", "successor": successor}
    if sole:
        evidence["sole_decision_level"] = True
    return driver("relationship.champion_left", 40, since=ago(days=3), evidence=evidence)


@pytest.mark.parametrize(
    ("successor", "sole", "level", "severity"),
    [
        ("pending", False, "low", "warning"),  # news
        ("none", False, "low", "critical"),  # vacant after the grace
        ("pending", True, "low", "warning"),  # the only decision-level contact: its shorter grace is the scoring's
        ("none", True, "low", "critical"),  # and once it has passed
        ("pending", False, "high", "critical"),  # other signals compound
        ("named", False, "low", None),  # a successor clears it
    ],
)
def test_departure_rule(successor: str, sole: bool, level: Level, severity: str | None) -> None:
    config = with_rule(
        "champion_left", severity="warning", vacant_severity="critical", compound_level="high", clear_on_successor=True
    )
    found = by_rule(snapshot(departure(successor, sole), level=level, risk=60 if level == "high" else 10), config)
    assert (found["champion_left"].severity if "champion_left" in found else None) == severity


def test_a_departure_rule_without_the_new_settings_behaves_as_a_driver_rule() -> None:
    plain = by_rule(snapshot(departure("named")))["champion_left"]  # this config: critical, no clearing
    assert plain.severity == "critical"
