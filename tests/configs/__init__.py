"""The fixed scoring and alerting configurations the tests of mechanisms run on (the shipped defaults come from
``kamwatch tune`` and move; tests of what ships load those)."""

from __future__ import annotations

from pathlib import Path

SCORING_PATH = Path(__file__).with_name("scoring.yaml")
RULES_PATH = Path(__file__).with_name("rules.yaml")
