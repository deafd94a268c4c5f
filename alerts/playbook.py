"""The playbook: for each driver code, the next step a KAM should take and within how many days.

Loaded from YAML (the shipped ``default_playbook.yaml``, or ``KAMWATCH_PLAYBOOK``) and validated like the rules.
Actions are English; their French is in the catalogue (``translate(locale, step.action)`` where they are shown).
Pure: which step applies to an alert or an account is a function of its drivers, tier and times.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from schemas.config_files import ConfigFileError, load_config_file
from schemas.vocabulary import Driver, Tier

DEFAULT_PLAYBOOK_PATH = Path(__file__).with_name("default_playbook.yaml")


class PlaybookError(ConfigFileError):
    """Invalid playbook; ``field`` is the dotted path of the first offending field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Strict):
    action: str = Field(min_length=1, max_length=300)
    """What to do, in English (the French comes from the catalogue)."""
    due_days: int = Field(ge=1, le=365)
    """Within how many days of the signal."""


class Entry(Action):
    strategic: Action | None = None
    """The step on strategic accounts, when it differs."""

    def for_tier(self, tier: Tier) -> Action:
        return self.strategic if tier == "strategic" and self.strategic is not None else self


class Playbook(_Strict):
    version: str = Field(min_length=1)
    actions: dict[str, Entry]

    def entry(self, code: str) -> Entry | None:
        return self.actions.get(code)


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to do about one driver: ``action`` (English, to translate), due ``due_days`` after the signal;
    ``due_at`` when the start is known (the alert's condition since, else the driver's), else None."""

    code: str
    action: str
    due_days: int
    due_at: datetime | None


def load_playbook(path: Path | None = None) -> Playbook:
    """Load and validate a playbook YAML (``None``: the shipped default)."""
    source = path if path is not None else DEFAULT_PLAYBOOK_PATH
    return load_config_file(source, Playbook, what="playbook", error=PlaybookError)


def step_for(playbook: Playbook, driver: Driver, tier: Tier, start: datetime | None = None) -> NextStep | None:
    """The step for one driver on an account of ``tier``, due ``due_days`` after ``start`` (default: the
    driver's ``since``)."""
    entry = playbook.entry(driver.code)
    if entry is None:
        return None
    chosen = entry.for_tier(tier)
    begin = start if start is not None else driver.since
    due_at = begin + timedelta(days=chosen.due_days) if begin is not None else None
    return NextStep(driver.code, chosen.action, chosen.due_days, due_at)


def step_for_alert(
    playbook: Playbook,
    alert_drivers: Sequence[Driver],
    account_drivers: Sequence[Driver],
    tier: Tier,
    fired_at: datetime | None,
) -> NextStep | None:
    """The step for an alert: that of its strongest driver with an entry, else (level, jump and renewal alerts
    carry the account's drivers, or none) the strongest of the account's; due from when the alert fired."""
    for candidates in (alert_drivers, account_drivers):
        for driver in _strongest_first(candidates):
            if (step := step_for(playbook, driver, tier, fired_at)) is not None:
                return step
    return None


def steps_for_account(playbook: Playbook, drivers: Iterable[Driver], tier: Tier, *, limit: int = 3) -> list[NextStep]:
    """The steps for an account's strongest drivers (one per code), at most ``limit``."""
    found: list[NextStep] = []
    for driver in _strongest_first(drivers):
        if any(s.code == driver.code for s in found):
            continue
        if (step := step_for(playbook, driver, tier)) is not None:
            found.append(step)
        if len(found) >= limit:
            break
    return found


def _strongest_first(drivers: Iterable[Driver]) -> list[Driver]:
    return sorted(drivers, key=lambda d: (-d.points, d.code))


def babel_extract(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Sequence[str], options: Mapping[str, Any]
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extraction method for playbook files (``make messages``): every action is a message."""
    raw = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    for code, entry in sorted((raw.get("actions") or {}).items()):
        for item in (entry, (entry or {}).get("strategic")):
            if isinstance(item, dict) and isinstance(item.get("action"), str):
                yield 0, None, item["action"], [f"playbook: {code}"]
