"""Every link of every message a KAM or manager receives (immediate, escalation, reminder, cleared, digest, and the
team channel's Open) followed in a real headless Chromium by that reader: it opens the account with its
actions. Feedback given from each channel (an email's one-click link, the widget, Slack, the API) reaches the
per-rule precision (API, and the metric). On real PostgreSQL, the real local SMTP server and Slack stand-in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from alerts.messages import OPEN_ACTION, USEFUL_ACTION
from alerts.policy import next_digest_time
from alerts.repository import reports
from health_engine.access import create_key
from services.alerter.delivery import Alerter
from services.api.app import build_app
from services.flows.alerting import build_alerting
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from tests.events import event, records
from tests.integration.api.cdp import Page, chromium_binary, headless_chromium
from tests.integration.api.server import serving
from tests.integration.conftest import SIGNING_SECRET
from tests.integration.scenario import MARC, START, Clock, go_critical, replacements, rows, rules_with_hold
from tests.integration.servers import SlackStandIn, SmtpServer

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = chromium_binary()
PUBLIC = "https://kamwatch.example.com"
LINK = re.compile(re.escape(PUBLIC) + r"/[^\s\"<>]+")


def email_links(message: EmailMessage) -> list[str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return LINK.findall(text)


def slack_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks")
    return orjson.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


def slack_buttons(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in slack_blocks(body) if b["type"] == "actions" for e in b["elements"]]


def visit(page: Page, url: str) -> dict[str, Any]:
    """Open a link and read what the page shows."""
    page.navigate(url)
    seen: dict[str, Any] = page.evaluate(
        """({
            name: document.querySelector('#account-name')?.textContent ?? null,
            question: document.querySelector('#question')?.textContent ?? null,
            refused: document.title.startsWith('Access') || document.title.startsWith('Accès'),
            notYours: !!document.querySelector('#not-yours'),
            alerts: document.querySelectorAll('#alerts li.alert').length,
            buttons: document.querySelectorAll('#alerts button').length,
            steps: document.querySelectorAll('#next-steps li').length,
        })"""
    )
    return seen


def signed_click(action_id: str, value: str, user: str, response_url: str, now: float) -> tuple[bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action_id, "value": value}],
        "response_url": response_url,
    }
    body = urlencode({"payload": orjson.dumps(payload).decode()}).encode()
    stamp = int(now)
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium / chromium-browser binary on PATH (apt-get install chromium)")
async def test_every_link_opens_the_account_for_its_reader_and_feedback_reaches_the_precision(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    assert CHROMIUM is not None
    # Marc, Léa's manager, is on Slack too (he will click Open in the team channel).
    marc = MARC | {"slack_user_id": "UMARC"}
    await Pipeline(db).ingest(records(event("kam", "kam-marc", START + timedelta(days=1), marc)), ingress="http")
    hook = build_alerting(alert_settings, notify="send", config=rules_with_hold(0))
    engine, as_of = await go_critical(db, hook)
    clock = Clock(as_of + timedelta(seconds=5))
    metrics = Metrics.create()
    alerter = Alerter.from_settings(db, alert_settings, clock=clock, metrics=metrics)
    app = build_app(alert_settings, clock=clock, key_cache_seconds=0)
    # Every message and what its links showed: (reader, kind, url, what the page showed).
    seen: list[tuple[str, str, str, dict[str, Any]]] = []
    kinds: set[str] = set()

    with serving(app) as base:

        def local(url: str) -> str:
            return url.replace(PUBLIC, base)

        async def deliver_and_follow(kind: str) -> list[tuple[str, str, list[str]]]:
            """Send what is due now, then follow every link of every message just sent, as its reader would
            (a minute later, in a fresh browser)."""
            mails, posts = len(smtp.inbox.messages), len(slack.requests)
            assert await alerter.run_until_idle() > 0
            got: list[tuple[str, str, list[str]]] = []
            for mail in smtp.inbox.messages[mails:]:
                got.append((str(mail["To"]), f"{kind} email", email_links(mail)))
            for post in (r.body for r in slack.requests[posts:]):
                if post.get("channel") == "#key-accounts-alerts":
                    # No single reader: no link of anyone's, an Open that asks for one's own (below).
                    opens = [b for b in slack_buttons(post) if b["action_id"] == OPEN_ACTION]
                    assert opens
                    assert all("url" not in b and b["value"] == "acme" for b in opens)
                    assert PUBLIC not in orjson.dumps(post).decode()
                    kinds.add(f"{kind} team channel")
                    continue
                got.append(
                    (str(post.get("channel")), f"{kind} Slack", [b["url"] for b in slack_buttons(post) if "url" in b])
                )
            clock.advance(minutes=1)

            def follow() -> None:
                with headless_chromium(CHROMIUM) as page:
                    for who, what, urls in got:
                        assert urls, f"{what} to {who} has no link"
                        kinds.add(what)
                        seen.extend((who, what, url, visit(page, local(url))) for url in urls)

            await asyncio.to_thread(follow)
            return got

        # 1. The critical alerts: Léa's DM and email, and the team channel.
        immediate = await deliver_and_follow("immediate")

        # The team channel's Open: Marc asks, and gets a link of his own.
        body, headers = signed_click(OPEN_ACTION, "acme", "UMARC", f"{slack.webhook_url}/team", clock().timestamp())
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/slack/interactions", content=body, headers=headers)).status_code == 200
        wait_for(lambda: any(r.path == "/webhook/team" for r in slack.requests), "the team Open reply")
        reply = next(r.body for r in slack.requests if r.path == "/webhook/team")
        [team_link] = [b["url"] for b in slack_buttons(reply)]

        # Feedback from each channel: an email's Useful link, confirmed; the widget's False alarm; Slack; the API.
        lea_email = next(urls for who, what, urls in immediate if what == "immediate email")
        useful_link = next(u for u in lea_email if "verdict=useful" in u)

        widget_link = next(u for u in lea_email if "/feedback?" not in u)

        def browse() -> None:
            with headless_chromium(CHROMIUM) as page:
                seen.append(("UMARC", "team channel Open", team_link, visit(page, local(team_link))))
                screenshots(page, local(widget_link))
                page.navigate(local(useful_link))
                page.evaluate("document.querySelector('#confirm button').click()")
                page.wait_for("document.querySelector('#done') !== null")
                page.evaluate(
                    "document.querySelectorAll('#alerts li.alert')[1].querySelector('button.false-alarm').click()"
                )
                page.wait_for("document.querySelector('#done') !== null")

        await asyncio.to_thread(browse)
        kinds.add("team channel Open")
        assert await rows(db, "SELECT via, verdict FROM alert_feedback ORDER BY id") == [
            ("email", "useful"),
            ("widget", "false_alarm"),
        ]
        judged = {r[0] for r in await rows(db, "SELECT alert_id FROM alert_feedback")}
        others = [r[0] for r in await rows(db, "SELECT id FROM alerts ORDER BY id") if r[0] not in judged]
        body, headers = signed_click(
            USEFUL_ACTION, str(others[0]), "ULEA", f"{slack.webhook_url}/fb", clock().timestamp()
        )
        async with db.unit_of_work() as conn:
            own = await create_key(conn, name="lea", scopes=["read:own"], kam_id="kam-lea", created_by="t", at=as_of)
            admin = await create_key(conn, name="admin", scopes=["admin"], kam_id=None, created_by="t", at=as_of)
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/slack/interactions", content=body, headers=headers)).status_code == 200
            api = await http.post(
                f"/v1/alerts/{others[1]}/feedback",
                json={"verdict": "useful"},
                headers={"Authorization": f"Bearer {own.key}"},
            )
            assert api.status_code == 201, api.text

        # 2. A day later, unacknowledged: the escalation to Marc and the reminder to Léa.
        clock.now = as_of + timedelta(hours=25)
        assert await alerter.check_escalations() > 0
        await deliver_and_follow("escalation/reminder")

        # 3. Eighty days on, new contacts: the critical alerts clear (told at once); a new sponsor not yet met
        # (tomorrow's digest).
        later = as_of + timedelta(days=80)
        await Pipeline(db, engine=engine).ingest(
            records(*replacements(as_of + timedelta(days=30))), ingress="http", as_of=later
        )
        clock.now = later + timedelta(seconds=5)
        await deliver_and_follow("cleared")
        clock.now = next_digest_time("Europe/Paris", 9, later)
        await deliver_and_follow("digest")

        async with httpx.AsyncClient(base_url=base) as http:
            precision = (
                await http.get("/v1/alerts/precision", headers={"Authorization": f"Bearer {admin.key}"})
            ).json()

    assert kinds >= {
        "immediate email",
        "immediate Slack",
        "immediate team channel",
        "team channel Open",
        "escalation/reminder email",
        "escalation/reminder Slack",
        "cleared email",
        "cleared Slack",
        "cleared team channel",
        "digest email",
        "digest Slack",
    }
    assert {"lea@example.com", "marc@example.com", "ULEA", "UMARC"} <= {who for who, _, _, _ in seen}
    for who, what, url, page in seen:
        assert not page["refused"], (who, what, url)
        if "/feedback?" in url:
            assert page["question"], (who, what, url)  # a confirmation first, nothing recorded yet
            continue
        assert page["name"] == "Acme SA", (who, what, url)
        assert not page["notYours"], (who, what, url)  # the owner or her manager: the actions are theirs
        assert page["buttons"] in (3 * page["alerts"], 4 * page["alerts"]), (who, what, url)
        if what.startswith(("immediate", "escalation", "team")):
            assert page["alerts"] > 0, (who, what, url)
            assert page["steps"] > 0, (who, what, url)

    assert await rows(db, "SELECT via FROM alert_feedback ORDER BY id") == [
        ("email",),
        ("widget",),
        ("slack",),
        ("api",),
    ]
    stats = await _stats(db)
    assert sum(r.judged for r in stats) == 4
    assert sum(r.useful for r in stats) == 3
    assert sum(r["judged"] for r in precision["rules"]) == 4
    await alerter.sample()
    exposed = metrics.exposition()[0].decode()
    for rule in (r for r in stats if r.precision is not None):
        assert f'kamwatch_alert_feedback_precision{{rule="{rule.rule}"}} {rule.precision}' in exposed


def screenshots(page: Page, url: str) -> None:
    """The widget as a phone and a desktop show it, in both languages (tests/artifacts, to look at)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (390, 1280):
        page.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=width < 500
        )
        for locale in ("en", "fr"):
            page.navigate(f"{url}&locale={locale}")
            height = page.evaluate("document.documentElement.scrollHeight")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=width < 500,
            )
            shot = page.call("Page.captureScreenshot", format="png")["data"]
            (ARTIFACTS / f"widget-{locale}-{width}.png").write_bytes(base64.b64decode(shot))
            overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert not overflow, f"the widget scrolls sideways at {width} px ({locale})"
    page.call("Emulation.clearDeviceMetricsOverride")


async def _stats(db: Database) -> list[reports.RulePrecision]:
    async with db.transaction() as conn:
        return await reports.feedback_by_rule(conn)
