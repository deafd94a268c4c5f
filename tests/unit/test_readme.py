"""The README and the docs stay true to the code: commands, settings and metrics they name exist, and every
one of them is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from services.cli.main import app
from services.platform.metrics import METRIC_NAMES
from services.platform.settings import Settings

REPO = Path(__file__).parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = {path.name: path.read_text(encoding="utf-8") for path in (REPO / "docs").glob("*.md")}
EVERYTHING = README + "".join(DOCS.values()) + (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")


def _setting_names() -> set[str]:
    return {f"KAMWATCH_{name.upper()}" for name in Settings.model_fields}


def test_readme_stays_a_map() -> None:
    assert len(README.encode()) <= 20 * 1024


def test_every_metric_is_documented() -> None:
    assert sorted(name for name in METRIC_NAMES if f"`{name}`" not in DOCS["operations.md"]) == []


def test_every_command_is_documented() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(name for name in commands if f"kamwatch {name}" not in README) == []


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    configuration = DOCS["configuration.md"]
    # Settings documented in families share a line: `KAMWATCH_SMTP_HOST` / `_PORT` / …
    documented = set(re.findall(r"KAMWATCH_[A-Z0-9_]+", configuration))
    for first, rest in re.findall(r"`(KAMWATCH_[A-Z0-9_]+)`((?: / `_[A-Z0-9_]+`)+)", configuration):
        heads = ["_".join(first.split("_")[:n]) for n in range(2, first.count("_") + 1)]
        documented |= {head + tail for head in heads for tail in re.findall(r"`(_[A-Z0-9_]+)`", rest)}
    assert sorted(_setting_names() - documented) == []
    named = set(re.findall(r"KAMWATCH_[A-Z0-9]+(?:_[A-Z0-9]+)*", EVERYTHING))
    not_settings = {"KAMWATCH_TEST_DATABASE_URL", "KAMWATCH_TEST_KAFKA_HOME"}
    assert sorted(n for n in named - _setting_names() - not_settings if not n.endswith("_")) == []


def test_quickstart_shows_the_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("## ", 1)[0]
    assert "make demo" in quickstart
    assert "make test" in quickstart
