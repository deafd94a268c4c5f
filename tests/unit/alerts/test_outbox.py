"""The outbox payloads (pure): they survive JSON, digest parts merge, retry delays grow and stay bounded."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import orjson
import pytest

from alerts.messages import AlertItem, AlertMessage, DigestSection
from alerts.outbox import (
    Outgoing,
    PayloadError,
    Standing,
    as_it_stands,
    digest_payload,
    merge_digests,
    message_from_payload,
    message_payload,
    read_payloads,
    render_payloads,
    retry_delay,
)
from schemas.vocabulary import Locale, Severity
from services.flows.links import UnsignedLinks
from tests.unit.alerts.helpers import AS_OF, driver, snapshot

LINKS = UnsignedLinks("https://k.example")


def item(alert_id: int, key: str = "acme:usage_drop", severity: Severity = "warning", hours: int = 0) -> AlertItem:
    return AlertItem(
        alert_id,
        key,
        key.split(":")[1],
        severity,
        "Usage down",
        "Usage en baisse",
        AS_OF - timedelta(hours=hours),
    )


def test_a_message_payload_survives_json() -> None:
    drop = driver("usage.drop", 70, since=AS_OF, evidence={"drop_pct": 40})
    account = snapshot(drop, risk=72.5, risk_7d_ago=50.0)
    alert = replace(item(1), subject="C-7", drivers=(drop,), state="acknowledged")
    message = AlertMessage("escalation", account, (alert,), folded=(item(2, "acme:nps_detractor"),), kam_name="Léa")
    payload = orjson.loads(orjson.dumps(message_payload(message, to="x@example.com", locale="fr", timezone="UTC")))
    assert message_from_payload(payload) == message


def test_digest_parts_merge_by_account_and_resolved_alerts_are_listed_once() -> None:
    acme, globex = snapshot(), snapshot(account_id="globex", name="Globex")
    first = digest_payload(
        date(2026, 11, 21),
        [DigestSection(acme, (item(1), item(2, "acme:risk_jump")))],
        to="lea",
        locale="en",
        timezone="UTC",
    )
    later_acme = snapshot(as_of=AS_OF + timedelta(hours=3), risk=80.0)
    second = digest_payload(
        date(2026, 11, 21),
        [
            DigestSection(later_acme, (), (item(2, "acme:risk_jump"),)),
            DigestSection(globex, (item(3, "globex:usage_drop", "critical"),)),
        ],
        to="lea",
        locale="en",
        timezone="UTC",
    )
    digest = merge_digests([first, second])
    assert [s.account.account_id for s in digest.sections] == ["globex", "acme"]  # the most severe first
    acme_section = digest.sections[1]
    assert acme_section.account.risk == 80.0  # the newest snapshot
    assert [i.alert_id for i in acme_section.alerts] == [1]
    assert [i.alert_id for i in acme_section.resolved] == [2]
    rendered = render_payloads([first, second], "email", now=AS_OF, links=LINKS)
    assert rendered.email is not None
    assert "3 alerts" not in rendered.email.subject


def test_only_digests_merge() -> None:
    message = message_payload(AlertMessage("immediate", snapshot(), (item(1),)), to="x", locale="en", timezone="UTC")
    with pytest.raises(PayloadError):
        render_payloads([message, message], "slack", now=AS_OF, links=LINKS)
    with pytest.raises(PayloadError):
        render_payloads([{"v": 99, "format": "message"}], "slack", now=AS_OF, links=LINKS)


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected"),
    [
        (1, 0.0, 15.0),  # half of the base, at least
        (1, 1.0, 30.0),  # the whole base at most
        (3, 0.0, 60.0),  # 30 * 2^2 / 2
        (20, 0.5, 2700.0),  # capped at 3600: 1800 + 900
    ],
)
def test_retry_delay(attempts: int, jitter: float, expected: float) -> None:
    assert retry_delay(attempts, base_s=30, cap_s=3600, jitter=jitter) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("locale", "news", "cleared"),
    [("en", "Daily summary", "Resolved: Usage drop"), ("fr", "Résumé du", "Résolue\u00a0: Baisse d'utilisation")],
)
def test_cleared_notes_riding_with_news_render_in_the_kams_locale(locale: Locale, news: str, cleared: str) -> None:
    # The news planned by one evaluation, cleared notes of another account from days before by another: one digest.
    day = date(2026, 11, 21)
    news_part = digest_payload(
        day,
        [DigestSection(snapshot(account_id="globex", name="Globex"), (item(3, "globex:nps_detractor"),))],
        to="lea",
        locale=locale,
        timezone="Europe/Paris",
    )
    cleared_part = digest_payload(
        day,
        [DigestSection(snapshot(), (), (item(1, hours=72),))],
        to="lea",
        locale=locale,
        timezone="Europe/Paris",
    )
    rendered = render_payloads([news_part, cleared_part], "email", now=AS_OF, links=LINKS)
    assert rendered.email is not None
    assert news in rendered.email.subject
    assert cleared in rendered.email.text
    globex, acme = rendered.email.text.split("== Globex ==")[1].split("== Acme SA ==")
    assert cleared not in globex  # the news first, the cleared note under its own account
    assert cleared in acme
    slack = render_payloads([news_part, cleared_part], "slack", now=AS_OF, links=LINKS).slack
    assert slack is not None
    assert f"✅ {cleared}" in orjson.dumps(slack["blocks"]).decode()


def test_a_message_is_sent_as_things_stand_not_as_they_were_queued() -> None:
    queued = message_payload(
        AlertMessage("immediate", snapshot(risk=60.0, level="high"), (item(1),)), to="x", locale="en", timezone="UTC"
    )
    now_account = snapshot(risk=85.0, level="critical")
    raised = replace(item(1), severity="critical")
    standing = Standing(accounts={"acme": now_account}, closed=frozenset(), alerts={1: raised})
    current = as_it_stands(read_payloads([queued]), standing)
    assert current is not None
    assert current.message is not None
    assert (current.message.account.risk, current.message.alerts[0].severity) == (85.0, "critical")
    # Closed (lost) since it was queued: nothing is sent about it.
    assert as_it_stands(read_payloads([queued]), Standing({}, frozenset({"acme"}), {})) is None


def test_a_digest_drops_closed_accounts_and_shows_alerts_resolved_since_as_resolved() -> None:
    day = date(2026, 11, 21)
    part = digest_payload(
        day,
        [
            DigestSection(snapshot(), (item(1), item(2, "acme:risk_jump"))),
            DigestSection(snapshot(account_id="globex", name="Globex"), (item(3, "globex:usage_drop"),)),
        ],
        to="lea",
        locale="en",
        timezone="UTC",
    )
    standing = Standing({}, frozenset({"globex"}), {2: replace(item(2, "acme:risk_jump"), state="resolved")})
    current = as_it_stands(read_payloads([part]), standing)
    assert current is not None
    assert current.digest is not None
    [acme] = current.digest.sections
    assert ([i.alert_id for i in acme.alerts], [i.alert_id for i in acme.resolved]) == ([1], [2])
    only_globex = digest_payload(
        day, [DigestSection(snapshot(account_id="globex"), (item(3),))], to="lea", locale="en", timezone="UTC"
    )
    assert as_it_stands(read_payloads([only_globex]), standing) is None
    assert isinstance(read_payloads([part]), Outgoing)
