"""The post-mortem's story of each rule: would have fired, fired, told, acted; lead time kept and lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.config import load_rules_config
from alerts.hindsight import Action, Sent, StoredAlert, first_firings, post_mortem, rules_for

OUTCOME = datetime(2026, 10, 30, tzinfo=UTC)


def days_before(n: float) -> datetime:
    return OUTCOME - timedelta(days=n)


def test_each_rule_from_hindsight_to_action() -> None:
    would = first_firings(
        [("usage_drop", days_before(40)), ("champion_left", days_before(60)), ("usage_drop", days_before(45))]
    )
    alerts = [
        StoredAlert(1, "champion_left", "critical", days_before(60), "Champion left", "Départ"),
        StoredAlert(2, "usage_drop", "warning", days_before(30), "Usage drop", "Baisse"),
    ]
    sent = [
        Sent((1,), "slack", "immediate", "U1", days_before(60) + timedelta(minutes=2)),
        Sent((2,), "email", "digest", "a@b", days_before(29)),
    ]
    actions = [Action(1, days_before(58), "acknowledged", "kam-1", "slack")]

    found = post_mortem(OUTCOME, would, alerts, actions, sent, ["risk_level", "champion_left", "usage_drop"])

    champion, usage = found.rules
    assert champion.rule == "champion_left"  # the earliest first
    assert (champion.lead_days, champion.lost_days, champion.acknowledged_at) == (60.0, 0.0, days_before(58))
    assert usage.would_fire_at == days_before(45)  # the earliest moment its condition held
    assert (usage.lead_days, usage.lost_days) == (29.0, 16.0)  # told 16 days after it could have been
    assert found.silent == ("risk_level",)
    assert found.lead_days == 60.0
    assert found.possible_lead_days == 60.0


def test_a_rule_that_would_have_fired_but_never_did_loses_all_its_lead() -> None:
    found = post_mortem(OUTCOME, {"nps_detractor": days_before(20)}, [], [], [], ["nps_detractor"])

    [nps] = found.rules
    assert (nps.fired_at, nps.told_at, nps.lead_days, nps.lost_days) == (None, None, None, 20.0)
    assert found.lead_days is None
    assert found.silent == ()


def test_rules_for_a_tier_leave_out_those_of_other_tiers() -> None:
    config = load_rules_config()

    assert "single_threaded" in rules_for(config, "strategic")
    assert "single_threaded" not in rules_for(config, "standard")
