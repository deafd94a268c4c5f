"""``kamwatch replay`` and ``kamwatch dlq list|show|replay`` through the real CLI, on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.platform.settings import Settings
from tests.events import at, encode, event

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
    return settings


def test_dead_letters_listed_shown_and_replayed(env: Settings, tmp_path: Path) -> None:
    good = event("usage", "acme", at(2), {"metric": "activity", "quantity": 1})
    bad = b'{"specversion":"1.0","id":"x-1","source":"tests","type":"kamwatch.nope.v1"}'
    history = tmp_path / "events.ndjson"
    history.write_bytes(encode(good) + b"\n" + bad + b"\nnot json\n")
    replayed = runner.invoke(app, ["replay", str(history)])
    assert replayed.exit_code == 0, replayed.output
    assert "1 accepted" in replayed.output
    assert "2 rejected" in replayed.output

    listed = [orjson.loads(line) for line in runner.invoke(app, ["dlq", "list", "--json"]).output.splitlines()]
    assert [letter["origin"] for letter in listed] == ["file:events.ndjson:3", "file:events.ndjson:2"]
    assert listed[1]["raw"] == bad.decode()
    assert "type" in listed[1]["reason"]
    assert "replay" in runner.invoke(app, ["dlq", "list"], env={"COLUMNS": "200"}).output

    shown = runner.invoke(app, ["dlq", "show", str(listed[0]["id"])])
    assert shown.exit_code == 0
    assert orjson.loads(shown.output)["raw"] == "not json"
    assert runner.invoke(app, ["dlq", "show", "999999"]).exit_code == 1

    again = runner.invoke(app, ["dlq", "replay"])
    assert again.exit_code == 0
    assert "0 replayed, 2 still rejected" in again.output
    after = [orjson.loads(line) for line in runner.invoke(app, ["dlq", "list", "--json"]).output.splitlines()]
    assert len(after) == 2
    assert all(letter["replayed_at"] is None for letter in after)
