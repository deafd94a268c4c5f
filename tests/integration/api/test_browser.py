"""The widget in a real headless Chromium: score, drivers and sparkline render; Acknowledge acknowledges."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from schemas.tables import alerts
from services.api.app import build_app
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api.cdp import chromium_binary, headless_chromium
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW
from tests.integration.api.server import serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = chromium_binary()


def _drive(binary: str, widget_url: str, alert_id: int) -> dict[str, Any]:
    """Open the widget, read what it shows, screenshot it, click Acknowledge, read the alert's new state."""
    with headless_chromium(binary) as page:
        page.navigate(widget_url)
        seen = page.evaluate(
            """({
                risk: document.querySelector('#risk-score')?.textContent,
                level: document.querySelector('#level')?.textContent,
                drivers: [...document.querySelectorAll('#drivers li')].map(li => li.textContent.trim()),
                sparkline: document.querySelector('#sparkline path')?.getAttribute('d') ?? '',
                width: document.querySelector('#sparkline')?.getBoundingClientRect().width ?? 0,
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "widget.png").write_bytes(page.screenshot())
        page.evaluate(f"document.querySelector('li[data-alert=\"{alert_id}\"] button.ack').click()")
        seen["state_after"] = page.wait_for(
            f"document.querySelector('li[data-alert=\"{alert_id}\"]')?.dataset.state === 'acknowledged'"
            f" && document.querySelector('li[data-alert=\"{alert_id}\"]').dataset.state"
        )
        (ARTIFACTS / "widget-acknowledged.png").write_bytes(page.screenshot())
        return dict(seen)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium / chromium-browser binary on PATH (apt-get install chromium)")
async def test_widget_in_headless_chromium(settings: Settings, db: Database, world: World) -> None:
    assert CHROMIUM is not None
    alert_id = world.alerts["acme"]
    with serving(build_app(settings, clock=lambda: NOW, key_cache_seconds=0)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            minted = await http.post("/v1/widget-tokens", json={"account_id": "acme"}, headers=world.auth("lea"))
        widget_url = minted.json()["url"].replace("http://127.0.0.1:8000", base_url)
        seen = await asyncio.to_thread(_drive, CHROMIUM, widget_url, alert_id)

    # In Léa's language (the token is hers; she reads French).
    assert seen["risk"] == "72,5"
    assert seen["level"] == "Élevé"
    assert seen["drivers"] == ["FR support.urgent_open"]
    assert seen["sparkline"].startswith("M")
    assert seen["sparkline"].count("L") >= 4
    assert seen["width"] > 100
    assert seen["state_after"] == "acknowledged"
    assert (ARTIFACTS / "widget.png").stat().st_size > 1000
    async with db.unit_of_work() as conn:
        state = (await conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))).scalar_one()
    assert state == "acknowledged"
