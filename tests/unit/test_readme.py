"""The README stays true to the code: every metric and every command is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from services.cli.main import app
from services.platform.metrics import METRIC_NAMES

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_metric_is_documented() -> None:
    assert sorted(name for name in METRIC_NAMES if f"`{name}`" not in README) == []


def test_every_command_is_documented() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(name for name in commands if f"kamwatch {name}" not in README) == []


def test_quickstart_shows_the_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("## ", 1)[0]
    assert "make demo" in quickstart
    assert "make test" in quickstart
