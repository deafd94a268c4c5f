"""The pages a KAM and a sales director use, in a real headless Chromium, on a portfolio scored as lived: at a
phone's width (390 px) and a laptop's (1280 px), in English and French, nothing overflows sideways, the French
pages hold no English of the catalogue, and a screenshot of each is kept under tests/artifacts/. /docs renders
with every host but this machine unreachable."""

from __future__ import annotations

import asyncio
import re
import string
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from schemas.i18n import catalogue_path
from services.api.app import build_app
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api import story
from tests.integration.api.cdp import Page, chromium_binary, headless_chromium
from tests.integration.api.server import serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = chromium_binary()
NO_CHROMIUM = "no chromium / chromium-browser binary on PATH (apt-get install chromium)"
WIDTHS = (390, 1280)
LOCALES = ("en", "fr")


def english_of_the_catalogue() -> list[re.Pattern[str]]:
    """A pattern for each piece of English text in the catalogue whose French differs (placeholders cut the
    messages in pieces; pieces under four letters are left out: too short to tell a language by)."""
    with catalogue_path("fr").open("rb") as source:
        catalog = read_po(source)
    pieces: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        sources = [message.id] if isinstance(message.id, str) else list(message.id)
        forms = message.string if isinstance(message.string, tuple | list) else [message.string or ""]
        translated = " ".join(forms)
        for text in sources:
            for piece in re.split(r"\{[^}]*\}|%\([^)]*\)s", text):
                piece = piece.strip(string.punctuation + " “”")
                if sum(c.isalpha() for c in piece) >= 4 and piece not in translated:
                    pieces.add(piece)
    return [re.compile(rf"(?<!\w){re.escape(piece)}(?!\w)") for piece in sorted(pieces)]


def visit(page: Page, url: str, width: int) -> dict[str, Any]:
    page.set_width(width)
    page.navigate(url)
    seen: dict[str, Any] = page.evaluate(
        """({
            overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            wide: [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40)),
            text: document.body.innerText,
            title: document.title,
        })"""
    )
    return seen


def tour(binary: str, base: str, key: str, widget_url: str) -> dict[str, Any]:
    """Sign in, then every page at each width and in each language: what it shows, and a screenshot."""
    pages = {
        "portfolio": "/",
        "account": "/accounts/acme",
        "postmortem": "/accounts/globex/postmortem",
        "losses": "/losses",
        "widget": widget_url.removeprefix(base),
    }
    found: dict[str, Any] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    with headless_chromium(binary) as page:
        page.set_width(1280)
        page.navigate(f"{base}/login")
        page.evaluate(f"document.querySelector('input[name=key]').value = {key!r}")
        page.evaluate("document.querySelector('form').submit()")
        page.wait_for("location.pathname === '/' && document.readyState === 'complete'")
        for name, path in pages.items():
            for locale in LOCALES:
                for width in WIDTHS:
                    joiner = "&" if "?" in path else "?"
                    seen = visit(page, f"{base}{path}{joiner}locale={locale}", width)
                    (ARTIFACTS / f"{name}-{locale}-{width}.png").write_bytes(page.full_screenshot())
                    found[f"{name}-{locale}-{width}"] = seen
        page.set_width(1280)
        page.navigate(f"{base}/accounts/acme?locale=en")
        found["account-chart"] = page.evaluate(
            """({
                ticks: [...document.querySelectorAll('#history-chart text')].map(t => t.textContent),
                bands: document.querySelectorAll('#history-chart rect[class^=band-]').length,
                alerts: document.querySelectorAll('#history-chart .marker-alert').length,
                usageBars: document.querySelectorAll('#usage-chart .usage-bar').length,
                gone: [...document.querySelectorAll('#power-map tr.gone')].map(r => r.innerText),
                alertIds: [...document.querySelectorAll('#alerts li.alert')]
                    .map(li => [li.dataset.alert, li.dataset.state]),
            })"""
        )
        firing = [alert_id for alert_id, state in found["account-chart"]["alertIds"] if state == "firing"]
        if firing:
            page.evaluate(f"document.querySelector('li[data-alert=\"{firing[0]}\"] button.ack').click()")
            found["acknowledged"] = page.wait_for(
                f"document.querySelector('li[data-alert=\"{firing[0]}\"]')?.dataset.state === 'acknowledged'"
                f" && location.pathname"
            )
    return found


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
async def test_the_pages_at_a_phones_and_a_laptops_width_in_both_languages(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    world = await story.build(db, settings, tmp_path)
    configured = settings.model_copy(update={"reporting_currency": "EUR", "exchange_rates_file": world.rates})
    with serving(build_app(configured, clock=lambda: story.NOW, key_cache_seconds=0)) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            minted = await http.post(
                "/v1/widget-tokens", json={"account_id": "acme"}, headers={"Authorization": f"Bearer {world.admin_key}"}
            )
        widget_url = minted.json()["url"].replace("http://127.0.0.1:8000", base)
        found = await asyncio.to_thread(tour, CHROMIUM, base, world.admin_key, widget_url)

    english = english_of_the_catalogue()
    for name, seen in found.items():
        if name.count("-") != 2:
            continue
        assert seen["overflow"] <= 0, (name, seen["wide"])
        if "-fr-" in name:
            text = seen["text"]
            leaks = sorted(
                {
                    f"{m[0]!r} in {text[max(0, m.start() - 30) : m.end() + 30]!r}"
                    for p in english
                    if (m := p.search(text))
                }
            )
            assert leaks == [], name
    account, postmortem = found["account-en-1280"]["text"], found["postmortem-en-1280"]["text"]
    assert "Acme SA" in account
    assert "Claire Martin" in account
    assert "Ticket T-981 escalated (urgent)" in account
    assert "Léa Dubois" in found["portfolio-en-1280"]["text"]  # names, not ids
    assert "kam-lea" not in found["portfolio-en-1280"]["text"]
    assert "£" not in found["portfolio-en-1280"]["text"].split("Accounts\n")[0]  # sums in one currency
    assert "Globex Ltd" in found["losses-en-1280"]["text"]
    assert "Champion left" in postmortem
    assert "Rules that stayed silent" in postmortem
    assert "Tom Baker" in postmortem
    assert "Acquitter" in found["widget-fr-390"]["text"]
    chart = found["account-chart"]
    assert chart["bands"] == 4
    assert chart["alerts"] >= 1
    assert chart["usageBars"] >= 60
    assert any(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", tick) for tick in chart["ticks"])  # dated x axis
    assert "Claire Martin" in chart["gone"][0]
    assert found.get("acknowledged") == "/accounts/acme"
    assert all((ARTIFACTS / f"{name}.png").stat().st_size > 5000 for name in found if name.count("-") == 2)


def open_docs(binary: str, base: str) -> dict[str, Any]:
    with headless_chromium(binary, offline=True) as page:
        page.set_width(1280)
        page.navigate(f"{base}/docs")
        operations = page.wait_for("document.querySelectorAll('.opblock').length", timeout=30)
        external = page.evaluate(
            "[...document.querySelectorAll('script[src], link[href]')].map(e => e.src || e.href)"
            ".filter(u => !u.startsWith(location.origin))"
        )
        (ARTIFACTS / "docs-offline.png").write_bytes(page.screenshot())
        page.navigate(f"{base}/redoc")
        redoc = page.wait_for("document.querySelectorAll('[data-section-id]').length", timeout=30)
        return {"operations": operations, "external": external, "redoc": redoc}


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
async def test_docs_render_with_no_network(settings: Settings, db: Database) -> None:
    assert CHROMIUM is not None
    ARTIFACTS.mkdir(exist_ok=True)
    with serving(build_app(settings, clock=lambda: story.NOW)) as base:
        seen = await asyncio.to_thread(open_docs, CHROMIUM, base)

    assert seen["operations"] >= 10
    assert seen["external"] == []
    assert seen["redoc"] >= 5
