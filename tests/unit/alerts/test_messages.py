"""Rendering in English and French: Slack Block Kit and multipart email, single alerts and digests, worded at
the send time for their reader (owner, manager, team channel)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from alerts.messages import (
    ACK_ACTION,
    FALSE_ALARM_ACTION,
    OPEN_ACTION,
    SNOOZE_ACTION,
    USEFUL_ACTION,
    AlertItem,
    AlertMessage,
    Audience,
    Digest,
    DigestSection,
    render_digest_email,
    render_digest_slack,
    render_email,
    render_slack,
)
from alerts.model import AccountSnapshot
from alerts.phrasing import Reader, Role, driver_line, risk_line
from alerts.playbook import load_playbook
from schemas.vocabulary import Locale
from services.flows.links import NoLinks, UnsignedLinks
from tests.unit.alerts.helpers import AS_OF, ago, driver, snapshot

BASE = "https://kamwatch.example.com"
LINKS = UnsignedLinks(BASE)
PLAYBOOK = load_playbook()
CHAMPION = driver(
    "relationship.champion_left",
    85,
    since=ago(days=3, hours=1),
    evidence={"contact_id": "C-7", "name": "Claire Martin", "days_ago": 3, "departures": 1, "successor": "none"},
)
MISSED = driver(
    "engagement.meetings_missed",
    40,
    since=ago(days=40),
    evidence={"missed": 2, "attended": 1, "weighted_rate": 0.7, "window_days": 90},
)
DROP = driver("usage.drop", 30, since=ago(days=15), evidence={"drop_pct": 45, "weeks_in_a_row": 2, "sustained": True})
WEAK = driver("payment.overdue", 10, en="weakest driver", fr="facteur le plus faible")
ACCOUNT = snapshot(
    CHAMPION, WEAK, MISSED, DROP, risk=78, level="critical", risk_7d_ago=60, renewal_date=date(2027, 1, 31)
)
CHAMPION_ALERT = AlertItem(
    42,
    "acme:champion_left:C-7",
    "champion_left",
    "critical",
    "Champion Claire Martin left 0 days ago",  # the stored title: never shown when the drivers say better
    "Claire Martin (champion) a quitté le compte il y a 0 jour",
    ago(days=3),
    "C-7",
    (CHAMPION,),
)
REVIEW_ALERT = AlertItem(
    43, "acme:business_review_missed", "business_review_missed", "warning", "t", "t", ago(days=1), None, (MISSED,)
)
LEVEL_ALERT = AlertItem(44, "acme:risk_level", "risk_level", "warning", "High risk", "Risque élevé", ago(1))


def audience(locale: Locale, role: Role = "owner", *, links: Any = LINKS, now: Any = AS_OF) -> Audience:
    return Audience(Reader(locale, "Europe/Paris", now), role, links, PLAYBOOK)


def slack(message: AlertMessage, locale: Locale, role: Role = "owner", links: Any = LINKS) -> dict[str, Any]:
    return render_slack(message, audience(locale, role, links=links))


def texts(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "en",
            [
                "Acme SA — Champion Claire Martin left 3 days ago, no successor named yet",
                "€480,000",
                "strategic",
                "78/100, critical (▲ +18 in 7 days)",
                "Usage down 45% against the usual level, 2 weeks in a row",
                "2 of 3 meetings and reviews declined, missed or cancelled in the last 90 days",
                "Champion left · first seen 3 days ago",
                "Jan 31, 2027 (in 72 days)",
                "Critical — Act today",
            ],
        ),
        (
            "fr",
            [
                "Acme SA — Claire Martin (champion) a quitté le compte il y a 3 jours, sans successeur désigné",
                "480\u202f000\u00a0€",
                "stratégique",
                "78/100, critique (▲ +18 en 7 jours)",
                "Usage en baisse de 45\u00a0% par rapport à l'habitude, 2 semaines de suite",
                "Départ du champion · détectée il y a 3 jours",
                "31 janv. 2027 (dans 72 jours)",
                "Critique — À traiter aujourd'hui",
            ],
        ),
    ],
)
def test_slack_alert_content(locale: Locale, expected: list[str]) -> None:
    payload = slack(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,)), locale)
    rendered = texts(payload)
    for fragment in expected:
        assert fragment in rendered
    assert "weakest driver" not in rendered
    assert "facteur le plus faible" not in rendered
    assert not re.search(r"(?<![\d,.])0 (day|jour)", rendered)  # the stored title is not used
    assert payload["blocks"][0]["type"] == "header"
    assert payload["text"].startswith("[kamwatch] ")


def test_words_are_those_of_the_send_time() -> None:
    # Queued at the departure, sent two days later: "2 days ago", not what was true when it was queued.
    account = snapshot(CHAMPION, risk=78, level="critical")
    message = AlertMessage("immediate", account, (CHAMPION_ALERT,))
    departure = ago(days=3, hours=1)
    at_departure = render_email(message, audience("en", now=departure))
    two_days_later = render_email(message, audience("en", now=departure + timedelta(days=2)))
    assert "Champion Claire Martin left today" in at_departure.text
    assert "Champion Claire Martin left 2 days ago" in two_days_later.text


@pytest.mark.parametrize(
    ("locale", "labels"),
    [
        ("en", ["Acknowledge", "Snooze 7 days", "Useful", "False alarm", "Open"]),
        ("fr", ["Acquitter", "Reporter de 7 jours", "Utile", "Fausse alerte", "Ouvrir"]),
    ],
)
def test_slack_buttons_carry_the_alert_id_and_the_readers_link(locale: Locale, labels: list[str]) -> None:
    payload = slack(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,)), locale)
    ack, snooze, useful, false_alarm, open_ = buttons(payload)
    assert [b["text"]["text"] for b in (ack, snooze, useful, false_alarm, open_)] == labels
    assert (ack["action_id"], ack["value"]) == (ACK_ACTION, "42")
    assert (snooze["action_id"], snooze["value"]) == (SNOOZE_ACTION, "42")
    assert (useful["action_id"], useful["value"]) == (USEFUL_ACTION, "42")
    assert (false_alarm["action_id"], false_alarm["value"]) == (FALSE_ALARM_ACTION, "42")
    assert open_["url"] == f"{BASE}/widget/accounts/acme"


def test_the_team_channel_gets_no_link_of_anyone_and_an_open_button_that_asks_for_ones_own() -> None:
    payload = slack(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,)), "fr", "team", NoLinks())
    assert "http" not in texts(payload)
    opens = [b for b in buttons(payload) if b["action_id"] == OPEN_ACTION]
    assert opens == [{"type": "button", "text": opens[0]["text"], "action_id": OPEN_ACTION, "value": "acme"}]
    assert "Publié sur le canal de l'équipe" in payload["blocks"][-1]["elements"][0]["text"]


def test_slack_lists_folded_alerts_and_changes_since_last_message() -> None:
    message = AlertMessage(
        "immediate",
        ACCOUNT,
        (CHAMPION_ALERT,),
        folded=(REVIEW_ALERT,),
        new_since_last=(CHAMPION_ALERT,),
        resolved_since_last=(LEVEL_ALERT,),
    )
    fr = texts(slack(message, "fr"))
    assert "Également sur ce compte" in fr
    assert "2 réunions et revues sur 3 déclinées, manquées ou annulées" in fr
    assert "Depuis le dernier message" in fr
    assert "Nouvelle alerte\u00a0: Claire Martin (champion) a quitté le compte" in fr
    assert "Résolue\u00a0: Risque critique (78/100)" in fr  # a level alert reads the level as it stands
    # folded alerts get no buttons of their own: acting on the main alert is enough
    assert {b.get("value") for b in buttons(slack(message, "en"))} == {"42", None}


@pytest.mark.parametrize(
    ("kind", "role", "locale", "fragments"),
    [
        (
            "escalation",
            "manager",
            "en",
            [
                "Escalation: Léa Dubois has not acknowledged this critical alert in time.",
                "You receive this as the manager of Léa Dubois, who owns this account in kamwatch.",
            ],
        ),
        (
            "escalation",
            "manager",
            "fr",
            [
                "Escalade\u00a0: Léa Dubois n'a pas pris en compte cette alerte critique dans le délai prévu.",
                "Vous recevez ce message en tant que manager de Léa Dubois",
            ],
        ),
        (
            "reminder",
            "owner",
            "en",
            ["still not acknowledged; your manager has been told", "because you own this account"],
        ),
        ("resolved", "owner", "fr", ["La situation à l'origine de cette alerte est rétablie."]),
    ],
)
def test_kinds_of_message_and_who_reads_them(kind: Any, role: Role, locale: Locale, fragments: list[str]) -> None:
    message = AlertMessage(kind, ACCOUNT, (CHAMPION_ALERT,), kam_name="Léa Dubois")
    for rendered in (texts(slack(message, locale, role)), render_email(message, audience(locale, role)).text):
        for fragment in fragments:
            assert fragment in rendered
    assert "you own this account" not in texts(slack(message, "en", "manager"))


def test_resolved_message_has_no_action_buttons() -> None:
    payload = slack(AlertMessage("resolved", ACCOUNT, (CHAMPION_ALERT,)), "en")
    assert payload["blocks"][0]["text"]["text"].startswith("✅ ")
    assert [b.get("url") for b in buttons(payload)] == [f"{BASE}/widget/accounts/acme"]
    email = render_email(AlertMessage("resolved", ACCOUNT, (CHAMPION_ALERT,)), audience("fr"))
    assert email.subject == (
        "[kamwatch] Résolue\u00a0: Acme SA — Claire Martin (champion) a quitté le compte il y a 3 jours, "
        "sans successeur désigné à ce jour"
    )
    assert "feedback" not in email.text


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_a_critical_alert_on_a_less_risky_account_says_why(locale: Locale) -> None:
    medium = snapshot(CHAMPION, risk=48, level="medium", risk_7d_ago=30)
    why = {
        "en": "Critical: this signal alone calls for action today, even though the account's overall risk is "
        "medium (48/100).",
        "fr": "Critique\u00a0: ce signal à lui seul demande d'agir aujourd'hui, même si le risque global du compte est "
        "moyen (48/100).",
    }[locale]
    message = AlertMessage("immediate", medium, (CHAMPION_ALERT,))
    assert why in texts(slack(message, locale))
    assert why in render_email(message, audience(locale)).text
    # On a critical account, nothing to explain.
    assert why not in texts(slack(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,)), locale))


def test_each_alert_says_its_next_step_from_the_playbook() -> None:
    account = snapshot(CHAMPION, risk=48, level="medium", tier="key")
    en = render_email(AlertMessage("immediate", account, (CHAMPION_ALERT,)), audience("en")).text
    # due 14 days after the alert fired (3 days ago)
    assert "Next step: Identify the new champion and book an introduction, by Dec 1, 2026 (in 11 days)" in en
    # on a strategic account, the rescue practice: escalate early to a senior sponsor
    strategic = render_email(AlertMessage("immediate", snapshot(CHAMPION), (CHAMPION_ALERT,)), audience("fr")).text
    assert "Prochaine étape\u00a0: Escalader sans attendre" in strategic


@pytest.mark.parametrize(
    ("account", "locale", "line"),
    [
        (snapshot(risk=62, level="high", risk_7d_ago=70), "en", "62/100, high (▼ −8 in 7 days)"),
        (snapshot(risk=62.5, level="high", risk_7d_ago=62.3), "fr", "62,5/100, élevé (stable sur 7 jours)"),
        (snapshot(risk=40, level="medium"), "fr", "40/100, moyen"),  # no history, no trend
    ],
)
def test_risk_line(account: AccountSnapshot, locale: Locale, line: str) -> None:
    assert risk_line(account, Reader(locale, "UTC", AS_OF)) == line


def test_email_alert_in_french_with_its_links() -> None:
    email = render_email(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,), folded=(REVIEW_ALERT,)), audience("fr"))
    assert email.subject.startswith("[kamwatch] Critique\u00a0: Acme SA — Claire Martin (champion) a quitté le compte")
    for body in (email.text, email.html):
        assert "Principaux facteurs" in body
        assert "Également sur ce compte" in body
        assert f"{BASE}/widget/accounts/acme" in body
        assert "/widget/accounts/acme/alerts/42/feedback?verdict=useful" in body
        assert "/widget/accounts/acme/alerts/42/feedback?verdict=false_alarm" in body
    assert f"Ouvrir le compte\u00a0: {BASE}/widget/accounts/acme" in email.text
    assert '<html lang="fr">' in email.html


def test_email_html_is_escaped_and_text_is_not() -> None:
    account = snapshot(DROP, name="Dupont & <Fils>", account_id="dupont/fils", level="high", risk=60)
    email = render_email(AlertMessage("immediate", account, (REVIEW_ALERT,)), audience("en"))
    assert "Dupont &amp; &lt;Fils&gt;" in email.html
    assert "<Fils>" not in email.html
    assert "Dupont & <Fils>" in email.text
    assert "/widget/accounts/dupont%2Ffils" in email.text


def digest(sections: int, alerts_each: int) -> Digest:
    return Digest(
        date(2026, 11, 21),
        tuple(
            DigestSection(
                snapshot(MISSED, account_id=f"acc-{i}", name=f"Account {i}", level="high", risk=60),
                tuple(
                    AlertItem(
                        100 * i + j,
                        f"acc-{i}:r{j}",
                        "business_review_missed",
                        "warning",
                        f"t{j}",
                        f"t{j} fr",
                        ago(1),
                        None,
                        (MISSED,),
                    )
                    for j in range(alerts_each)
                ),
                resolved=(LEVEL_ALERT,) if i == 0 else (),
            )
            for i in range(sections)
        ),
    )


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("en", "[kamwatch] Daily summary, Nov 21, 2026: 4 alerts on 2 accounts"),
        ("fr", "[kamwatch] Résumé du 21 nov. 2026\u00a0: 4 alertes sur 2 comptes"),
    ],
)
def test_digest_email(locale: Locale, subject: str) -> None:
    email = render_digest_email(digest(2, 2), audience(locale))
    assert email.subject == subject
    for body in (email.text, email.html):
        assert "Account 0" in body
        assert "Account 1" in body
        assert f"{BASE}/widget/accounts/acc-1" in body
    if locale == "fr":
        assert "Revue d'affaires manquée" in email.text
        assert "Revue d&#39;affaires manquée" in email.html
        assert "Résolue\u00a0: Risque élevé (60/100)" in email.text
        assert "résumé quotidien car vous êtes responsable de ces comptes" in email.text


def test_digest_singular_in_french() -> None:
    email = render_digest_email(digest(1, 1), audience("fr"))
    assert email.subject.endswith("1 alerte sur 1 compte")


def test_digest_slack_has_buttons_per_alert_and_respects_the_block_limit() -> None:
    small = render_digest_slack(digest(2, 2), audience("en"))
    assert {b["value"] for b in buttons(small) if b["action_id"] == ACK_ACTION} == {"0", "1", "100", "101"}
    actions = [b for b in small["blocks"] if b["type"] == "actions" and "block_id" in b]
    assert all(len({e["action_id"] for e in b["elements"]}) == len(b["elements"]) for b in actions)
    assert len({b["block_id"] for b in actions}) == len(actions) == 4
    big = render_digest_slack(digest(10, 5), audience("fr"))
    assert len(big["blocks"]) <= 50
    shown = sum(1 for b in buttons(big) if b["action_id"] == ACK_ACTION)
    assert big["blocks"][-2]["elements"][0]["text"] == f"… et {50 - shown} autres alertes"


def test_money_always_carries_its_currency() -> None:
    payload = slack(
        AlertMessage("immediate", snapshot(arr=Decimal("1234567.89"), currency="USD"), (LEVEL_ALERT,)), "en"
    )
    assert "$1,234,567.89" in texts(payload)


SLIDE = driver(
    "usage.slide", 40, evidence={"decline_pct": 35, "weeks": 12, "recent_weekly": 65.0, "earlier_weekly": 100.0}
)
SOLE = driver(
    "relationship.sponsor_left",
    60,
    since=ago(days=2),
    evidence={"name": "Paul Roy", "departures": 1, "successor": "pending", "sole_decision_level": True},
)


@pytest.mark.parametrize(
    ("code_driver", "locale", "expected"),
    [
        (SLIDE, "en", "Usage down 35% over 12 weeks, a slow slide"),
        (SLIDE, "fr", "Usage en baisse de 35\u00a0% en 12 semaines, un lent déclin"),
        (SOLE, "en", "Executive sponsor Paul Roy left 2 days ago, the only contact who decided"),
        (SOLE, "fr", ", le seul contact décisionnaire"),
    ],
)
def test_a_slow_slide_and_the_only_decision_level_contact_in_words(
    code_driver: Any, locale: Locale, expected: str
) -> None:
    line = driver_line(code_driver, Reader(locale, "Europe/Paris", AS_OF), "EUR")
    assert expected in line
    assert line not in (code_driver.message_en, code_driver.message_fr)  # phrased, not the engine's words
