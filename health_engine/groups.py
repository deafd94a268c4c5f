"""Group accounts (``parent_account_id``): a parent's risk rolled up with its subsidiaries', weighted by ARR.

Pure: the members' current scores in, the group's risk, level and the subsidiary that drives it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from health_engine.config import Levels
from schemas.vocabulary import Level


@dataclass(frozen=True, slots=True)
class Member:
    account_id: str
    arr: Decimal
    risk: float


@dataclass(frozen=True, slots=True)
class Contribution:
    account_id: str
    risk: float
    weight: float
    """The member's share of the group's ARR (0..1; equal shares when the group has no ARR)."""
    points: float
    """What the member adds to the group's risk: ``weight × risk``."""


@dataclass(frozen=True, slots=True)
class GroupHealth:
    risk: float
    level: Level
    members: tuple[Contribution, ...]
    """The parent first, then the subsidiaries, most points first."""
    driver: Contribution | None
    """The subsidiary adding the most points, if any subsidiary adds any."""


def roll_up(parent: Member, subsidiaries: Sequence[Member], levels: Levels) -> GroupHealth:
    """ARR-weighted mean of the parent's own risk and its subsidiaries' risks."""
    everyone = [parent, *subsidiaries]
    total = sum((m.arr for m in everyone), Decimal(0))
    weights = [float(m.arr / total) if total > 0 else 1 / len(everyone) for m in everyone]
    shares = [
        Contribution(m.account_id, m.risk, round(w, 4), round(w * m.risk, 2))
        for m, w in zip(everyone, weights, strict=True)
    ]
    risk = round(min(100.0, sum(w * m.risk for m, w in zip(everyone, weights, strict=True))), 1)
    ranked = sorted(shares[1:], key=lambda c: (-c.points, c.account_id))
    driver = ranked[0] if ranked and ranked[0].points > 0 else None
    return GroupHealth(risk, levels.of(risk), (shares[0], *ranked), driver)
