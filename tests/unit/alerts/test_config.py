"""Loading and validating the alerting YAML: the shipped default, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts.config import DEFAULT_CONFIG_PATH, AlertConfigError, load_rules_config
from alerts.rules import DRIVER_RULES
from schemas.vocabulary import SeverityCuts


def test_default_config_loads_with_every_rule() -> None:
    config = load_rules_config(None)
    assert config.version
    for rule in [*DRIVER_RULES, "risk_level", "risk_jump", "renewal_at_risk"]:
        assert hasattr(config.rules, rule)
    # the tuned defaults fold the least precise rules into the risk level, and say so
    assert config.rules.risk_level.enabled
    folded = {"usage_drop", "usage_slide", "payment_late"}
    assert {r for r in DRIVER_RULES if not getattr(config.rules, r).enabled} <= folded
    assert config.rules.risk_jump.min_jump == 15
    assert config.rules.renewal_at_risk.within_days == 90
    assert config.policy.escalation_delay_hours == 24


def _write(tmp_path: Path, mutate: object) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    assert callable(mutate)
    mutate(raw)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        # an unknown key is a typo, not something to ignore
        (lambda raw: raw["rules"]["usage_drop"].update(min_point=3), "rules.usage_drop.min_point"),
        (lambda raw: raw["rules"].update(usage_dorp={}), "rules.usage_dorp"),
        (lambda raw: raw["rules"]["usage_drop"].update(min_points=120), "rules.usage_drop.min_points"),
        (lambda raw: raw["rules"]["ticket_surge"].update(tiers=["gold"]), "rules.ticket_surge.tiers.0"),
        (lambda raw: raw["rules"]["ticket_surge"].update(tiers=[]), "rules.ticket_surge.tiers"),
        (lambda raw: raw["rules"]["ticket_surge"].update(tiers=["key", "key"]), "rules.ticket_surge.tiers"),
        (lambda raw: raw["rules"]["risk_jump"].update(min_jump=0), "rules.risk_jump.min_jump"),
        (
            lambda raw: raw["rules"]["risk_level"].update(severity={"hgh": "warning"}),
            "rules.risk_level.severity.hgh.[key]",
        ),
        (lambda raw: raw["rules"]["renewal_at_risk"].update(within_days=0), "rules.renewal_at_risk.within_days"),
        (lambda raw: raw["policy"].update(digest_hour=24), "policy.digest_hour"),
        (lambda raw: raw["policy"].update(immediate_budget_per_day=-1), "policy.immediate_budget_per_day"),
        (lambda raw: raw["rules"].pop("nps_detractor"), "rules.nps_detractor"),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, mutate: object, field: str) -> None:
    with pytest.raises(AlertConfigError) as caught:
        load_rules_config(_write(tmp_path, mutate))
    assert caught.value.field == field
    assert field in str(caught.value)


def test_severity_cuts_must_be_ordered(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda raw: raw["rules"]["usage_drop"].update(severity={"warning": 60, "critical": 30}))
    with pytest.raises(AlertConfigError, match=r"rules\.usage_drop\.severity.*critical must be at least warning"):
        load_rules_config(path)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError, match="cannot read"):
        load_rules_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(AlertConfigError, match="invalid YAML"):
        load_rules_config(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(AlertConfigError, match="must be a mapping"):
        load_rules_config(bad)


@pytest.mark.parametrize(
    ("points", "severity"),
    [(29.9, "info"), (30, "warning"), (64.9, "warning"), (65, "critical"), (100, "critical")],
)
def test_severity_cuts_edges(points: float, severity: str) -> None:
    assert SeverityCuts(warning=30, critical=65).of(points) == severity
