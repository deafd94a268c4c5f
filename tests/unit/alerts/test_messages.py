"""Rendering in English and French: Slack Block Kit and multipart email, single alerts and digests."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from alerts.messages import (
    ACK_ACTION,
    SNOOZE_ACTION,
    AlertItem,
    AlertMessage,
    Digest,
    DigestSection,
    account_url,
    render_digest_email,
    render_digest_slack,
    render_email,
    render_slack,
    risk_line,
)
from alerts.model import AccountSnapshot
from schemas.vocabulary import Locale
from tests.unit.alerts.helpers import ago, driver, snapshot

BASE = "https://kamwatch.example.com/"
CHAMPION = driver(
    "relationship.champion_left",
    85,
    en="Champion Claire Martin left 3 days ago",
    fr="Claire Martin (champion) a quitté le compte il y a 3 jours",
)
MISSED = driver(
    "engagement.meetings_missed",
    40,
    en="2 of 3 meetings and reviews declined, missed or cancelled in 90 days",
    fr="2 sur 3 réunions et revues déclinées, manquées ou annulées en 90 jours",
)
DROP = driver("usage.drop", 30, en="Usage down 45% vs the 8-week baseline", fr="Usage en baisse de 45 %")
WEAK = driver("payment.overdue", 10, en="weakest driver", fr="facteur le plus faible")
ACCOUNT = snapshot(
    CHAMPION,
    WEAK,
    MISSED,
    DROP,
    risk=78,
    level="critical",
    risk_7d_ago=60,
    renewal_date=date(2027, 1, 31),
)
CHAMPION_ALERT = AlertItem(
    42,
    "acme:champion_left:C-7",
    "champion_left",
    "critical",
    "Champion Claire Martin left",
    "Claire Martin (champion) a quitté le compte",
    ago(days=3),
)
REVIEW_ALERT = AlertItem(
    43,
    "acme:business_review_missed",
    "business_review_missed",
    "warning",
    "2 of 3 meetings missed",
    "2 réunions sur 3 manquées",
    ago(days=1),
)
LEVEL_ALERT = AlertItem(
    44, "acme:risk_level", "risk_level", "warning", "High risk (62/100)", "Risque élevé (62/100)", ago(1)
)


def slack(message: AlertMessage, locale: Locale) -> dict[str, Any]:
    return render_slack(message, locale=locale, timezone="Europe/Paris", base_url=BASE)


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
                "Acme SA — Champion Claire Martin left",
                "EUR 480,000",
                "strategic",
                "78/100, critical (▲ +18 in 7 days)",
                "Champion Claire Martin left 3 days ago",
                "Usage down 45% vs the 8-week baseline",
                "Champion left · since 2026-11-17 13:00",  # Paris time
                "2027-01-31",
            ],
        ),
        (
            "fr",
            [
                "Acme SA — Claire Martin (champion) a quitté le compte",
                "480\u202f000\u00a0EUR",
                "stratégique",
                "78/100, critique (▲ +18 en 7 jours)",
                "Claire Martin (champion) a quitté le compte il y a 3 jours",
                "2 sur 3 réunions et revues déclinées, manquées ou annulées en 90 jours",
                "Départ du champion · depuis le 17/11/2026 13:00",
                "31/01/2027",
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
    assert payload["blocks"][0]["type"] == "header"
    assert payload["text"].startswith("[kamwatch] ")


@pytest.mark.parametrize(
    ("locale", "labels"),
    [("en", ["Acknowledge", "Snooze 7 days", "Open"]), ("fr", ["Acquitter", "Reporter de 7 jours", "Ouvrir"])],
)
def test_slack_buttons_carry_the_alert_id(locale: Locale, labels: list[str]) -> None:
    payload = slack(AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,)), locale)
    ack, snooze, open_ = buttons(payload)
    assert [b["text"]["text"] for b in (ack, snooze, open_)] == labels
    assert (ack["action_id"], ack["value"]) == (ACK_ACTION, "42") == ("alert_ack", "42")
    assert (snooze["action_id"], snooze["value"]) == (SNOOZE_ACTION, "42") == ("alert_snooze_7d", "42")
    assert open_["url"] == "https://kamwatch.example.com/widget/accounts/acme"


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
    assert "2 réunions sur 3 manquées" in fr
    assert "Depuis le dernier message" in fr
    assert "Nouvelle alerte\u00a0: Claire Martin (champion) a quitté le compte" in fr
    assert "Résolue\u00a0: Risque élevé (62/100)" in fr
    # folded alerts get no buttons of their own: acting on the main alert is enough
    assert {b.get("value") for b in buttons(slack(message, "en"))} == {"42", None}


@pytest.mark.parametrize(
    ("kind", "locale", "fragment"),
    [
        ("escalation", "en", "Escalation*: Léa Dubois has not acknowledged this critical alert in time."),
        ("escalation", "fr", "Escalade*\u00a0: Léa Dubois n'a pas acquitté cette alerte critique dans le délai prévu."),
        ("reminder", "en", "still not acknowledged; your manager has been informed"),
        ("reminder", "fr", "n'est toujours pas acquittée\u00a0; votre responsable en a été informé"),
        ("resolved", "fr", "La situation à l'origine de cette alerte est rétablie."),
    ],
)
def test_kinds_of_message(kind: Any, locale: Locale, fragment: str) -> None:
    payload = slack(AlertMessage(kind, ACCOUNT, (CHAMPION_ALERT,), kam_name="Léa Dubois"), locale)
    assert fragment in texts(payload)


def test_resolved_message_has_no_action_buttons() -> None:
    payload = slack(AlertMessage("resolved", ACCOUNT, (CHAMPION_ALERT,)), "en")
    assert payload["blocks"][0]["text"]["text"].startswith("✅ ")
    assert [b.get("url") for b in buttons(payload)] == ["https://kamwatch.example.com/widget/accounts/acme"]
    assert render_email(
        AlertMessage("resolved", ACCOUNT, (CHAMPION_ALERT,)), locale="fr", timezone="UTC", base_url=BASE
    ).subject == ("[kamwatch] Résolue\u00a0: Acme SA — Claire Martin (champion) a quitté le compte")


@pytest.mark.parametrize(
    ("account", "locale", "line"),
    [
        (snapshot(risk=62, level="high", risk_7d_ago=70), "en", "62/100, high (▼ −8 in 7 days)"),
        (snapshot(risk=62.5, level="high", risk_7d_ago=62.3), "fr", "62,5/100, élevé (stable sur 7 jours)"),
        (snapshot(risk=40, level="medium"), "fr", "40/100, moyen"),  # no history, no trend
    ],
)
def test_risk_line(account: AccountSnapshot, locale: Locale, line: str) -> None:
    assert risk_line(account, locale) == line


def test_email_alert_in_french() -> None:
    email = render_email(
        AlertMessage("immediate", ACCOUNT, (CHAMPION_ALERT,), folded=(REVIEW_ALERT,)),
        locale="fr",
        timezone="Europe/Paris",
        base_url=BASE,
    )
    assert email.subject == "[kamwatch] Critique\u00a0: Acme SA — Claire Martin (champion) a quitté le compte"
    for body in (email.text, email.html):
        assert "Claire Martin (champion) a quitté le compte il y a 3 jours" in body
        assert "Principaux facteurs" in body
        assert "Également sur ce compte" in body
        assert "https://kamwatch.example.com/widget/accounts/acme" in body
    assert "Ouvrir le compte\u00a0: https://kamwatch.example.com/widget/accounts/acme" in email.text
    assert '<html lang="fr">' in email.html


def test_email_html_is_escaped_and_text_is_not() -> None:
    account = snapshot(DROP, name="Dupont & <Fils>", account_id="dupont/fils", level="high", risk=60)
    email = render_email(
        AlertMessage("immediate", account, (REVIEW_ALERT,)), locale="en", timezone="UTC", base_url=BASE
    )
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
                        100 * i + j, f"acc-{i}:r{j}", "business_review_missed", "warning", f"t{j}", f"t{j} fr", ago(1)
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
        ("en", "[kamwatch] Daily digest, 2026-11-21: 4 alerts on 2 accounts"),
        ("fr", "[kamwatch] Résumé du 21/11/2026\u00a0: 4 alertes sur 2 comptes"),
    ],
)
def test_digest_email(locale: Locale, subject: str) -> None:
    email = render_digest_email(digest(2, 2), locale=locale, timezone="Europe/Paris", base_url=BASE)
    assert email.subject == subject
    for body in (email.text, email.html):
        assert "Account 0" in body
        assert "Account 1" in body
        assert account_url(BASE, "acc-1") in body
        assert (MISSED.message_en if locale == "en" else MISSED.message_fr) in body
    if locale == "fr":
        assert "Revue d'affaires manquée" in email.text
        assert "Revue d&#39;affaires manquée" in email.html
        assert "Résolue\u00a0: Risque élevé (62/100)" in email.text


def test_digest_singular_in_french() -> None:
    email = render_digest_email(digest(1, 1), locale="fr", timezone="UTC", base_url=BASE)
    assert email.subject.endswith("1 alerte sur 1 compte")


def test_digest_slack_has_buttons_per_alert_and_respects_the_block_limit() -> None:
    small = render_digest_slack(digest(2, 2), locale="en", timezone="UTC", base_url=BASE)
    assert {b["value"] for b in buttons(small) if b["action_id"] == "alert_ack"} == {"0", "1", "100", "101"}
    actions = [b for b in small["blocks"] if b["type"] == "actions"]
    assert all(len({e["action_id"] for e in b["elements"]}) == len(b["elements"]) for b in actions)
    assert len({b["block_id"] for b in actions}) == len(actions) == 4
    big = render_digest_slack(digest(10, 5), locale="fr", timezone="UTC", base_url=BASE)
    assert len(big["blocks"]) <= 50
    shown = sum(1 for b in buttons(big) if b["action_id"] == "alert_ack")
    assert big["blocks"][-1]["elements"][0]["text"] == f"… et {50 - shown} de plus"


def test_money_rounds_to_whole_units() -> None:
    payload = slack(
        AlertMessage("immediate", snapshot(arr=Decimal("1234567.89"), currency="USD"), (LEVEL_ALERT,)), "en"
    )
    assert "USD 1,234,568" in texts(payload)
