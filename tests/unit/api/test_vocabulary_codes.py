"""The driver codes the API documents as an enum are every code the scorer writes."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.vocabulary import COMPONENTS, DRIVER_CODES

SCORER = Path(__file__).resolve().parents[3] / "health_engine" / "scoring.py"


def test_every_driver_code_of_the_scorer_is_documented() -> None:
    components = "|".join((*COMPONENTS, "renewal"))
    written = set(re.findall(rf'"((?:{components})\.[a-z_]+)"', SCORER.read_text(encoding="utf-8")))

    assert written
    assert written <= set(DRIVER_CODES)
