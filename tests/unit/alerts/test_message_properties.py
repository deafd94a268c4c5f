"""Properties of every rendered message, over generated alerts, accounts, readers and send times:

- no "0 days" / "0 jour": relative times read "today", "yesterday", "3 days ago";
- no amount without its currency (ARR and invoice amounts never show as bare numbers);
- a critical alert on an account whose level is below critical always says why, next to the risk line;
- Slack: any string in any field (account, contact and KAM names) shows as written, and the message stays valid
  Block Kit (mrkdwn escaped, within Slack's limits).
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_symbol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.messages import (
    AlertItem,
    AlertMessage,
    Audience,
    Digest,
    DigestSection,
    MessageKind,
    render_digest_email,
    render_digest_slack,
    render_email,
    render_slack,
    slack_escape,
)
from alerts.model import AccountSnapshot
from alerts.phrasing import PHRASED_CODES, Reader, Role, driver_line, severity_reason
from alerts.playbook import load_playbook
from schemas.vocabulary import LEVELS, Driver, Locale
from services.flows.links import NoLinks, UnsignedLinks
from tests.unit.alerts.helpers import AS_OF

PLAYBOOK = load_playbook()
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
ZERO_DAYS = re.compile(r"(?<![\d.,\u202f\u00a0])0[\s\u00a0]+(day|days|jour|jours)\b")
RULES = {
    "champion_left": "relationship.champion_left",
    "sponsor_left": "relationship.sponsor_left",
    "payment_late": "payment.overdue",
    "payment_failed": "payment.written_off",
    "usage_drop": "usage.silent",
    "urgent_ticket_open": "support.urgent_open",
    "renewal_at_risk": "renewal.near",
    "risk_level": "",
    "risk_jump": "",
}

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s != ""
)
small = st.integers(min_value=0, max_value=400)
counts = st.integers(min_value=1, max_value=30)
amounts = st.integers(min_value=100_000, max_value=99_999_999).map(lambda cents: Decimal(cents) / 100)
moments = st.integers(min_value=-400 * 24, max_value=10 * 24).map(lambda h: AS_OF + timedelta(hours=h))


def evidence_for(code: str) -> st.SearchStrategy[dict[str, Any]]:
    """Evidence shaped like the health engine's for each driver code, any values in range."""
    day = st.integers(-30, 400).map(lambda d: (AS_OF.date() - timedelta(days=d)).isoformat())
    shapes: dict[str, dict[str, Any]] = {
        "usage.drop": {"drop_pct": st.integers(1, 100), "weeks_in_a_row": st.integers(1, 8)},
        "usage.users_drop": {
            "drop_pct": st.integers(1, 100),
            "weeks_in_a_row": st.integers(1, 8),
            "recent_daily_users": st.floats(0, 500, allow_nan=False),
            "baseline_daily_users": st.floats(0.1, 500, allow_nan=False),
        },
        "usage.slide": {
            "decline_pct": st.integers(1, 100),
            "weeks": st.integers(1, 52),
            "recent_weekly": st.floats(0, 1e6, allow_nan=False),
            "earlier_weekly": st.floats(0, 1e6, allow_nan=False),
        },
        "usage.silent": {"days_since_activity": small, "last_active_day": day},
        "support.surge": {"tickets": counts, "window_days": counts, "ratio": st.floats(1, 20, allow_nan=False)},
        "support.urgent_open": {"tickets": counts, "oldest_days": small},
        "support.escalations": {"escalations": st.integers(0, 9), "reopenings": st.integers(0, 9)},
        "support.low_csat": {"tickets": counts, "rated": counts, "worst_csat": st.integers(1, 5)},
        "payment.overdue": {
            "invoices": counts,
            "max_days_overdue": st.integers(1, 400),
            "usual_delay_days": st.integers(0, 60),
            "amount": amounts.map(str),
        },
        "payment.failed": {"failures": counts, "invoices": counts, "unpaid_invoices": st.integers(0, 9)},
        "payment.disputed": {"invoices": counts, "amount": amounts.map(str)},
        "payment.written_off": {"invoices": counts, "amount": amounts.map(str)},
        "relationship.champion_left": {
            "name": st.one_of(st.none(), names),
            "departures": st.integers(1, 4),
            "successor": st.sampled_from(["named", "pending", "none"]),
            "sole_decision_level": st.booleans(),
        },
        "relationship.sponsor_left": {
            "name": st.one_of(st.none(), names),
            "departures": st.integers(1, 4),
            "successor": st.sampled_from(["named", "pending", "none"]),
            "sole_decision_level": st.booleans(),
        },
        "relationship.decision_maker_left": {
            "name": st.one_of(st.none(), names),
            "departures": st.integers(1, 4),
            "successor": st.sampled_from(["named", "pending", "none"]),
            "sole_decision_level": st.booleans(),
        },
        "relationship.new_executive_unengaged": {"contacts": counts},
        "relationship.single_threaded": {"active_contacts": st.integers(0, 9)},
        "relationship.detractor": {"detractors": counts},
        "engagement.meetings_missed": {"missed": counts, "attended": st.integers(0, 9), "window_days": counts},
        "engagement.no_business_review": {"last_review": st.one_of(st.none(), moments.map(lambda m: m.isoformat()))},
        "engagement.nps_detractor": {
            "nps_score": st.integers(0, 6),
            "surveyed_at": moments.map(lambda m: m.isoformat()),
        },
        "engagement.no_reply_streak": {"emails": counts},
        "renewal.near": {
            "renewal_date": st.integers(0, 90).map(lambda d: (AS_OF.date() + timedelta(days=d)).isoformat())
        },
    }
    shape = shapes.get(code, {})
    return st.fixed_dictionaries(shape) if shape else st.just({})


@st.composite
def drivers(draw: st.DrawFn, code: str | None = None) -> Driver:
    chosen = code or draw(st.sampled_from(sorted(PHRASED_CODES)))
    return Driver(
        component=chosen.split(".")[0],
        code=chosen,
        severity=draw(st.sampled_from(["info", "warning", "critical"])),
        points=draw(st.floats(1, 100, allow_nan=False)),
        evidence=draw(evidence_for(chosen)),
        since=draw(st.one_of(st.none(), moments)),
        message_en="engine's words",
        message_fr="mots du moteur",
    )


@st.composite
def accounts(draw: st.DrawFn) -> AccountSnapshot:
    risk = draw(st.floats(0, 100, allow_nan=False).map(lambda r: round(r, 1)))
    return AccountSnapshot(
        account_id=draw(names),
        name=draw(names),
        tier=draw(st.sampled_from(["strategic", "key", "standard"])),
        arr=draw(amounts),
        currency=draw(st.sampled_from(CURRENCIES)),
        renewal_date=draw(st.one_of(st.none(), st.integers(-30, 400).map(lambda d: AS_OF.date() + timedelta(days=d)))),
        owner_kam_id="kam-lea",
        risk=risk,
        level=draw(st.sampled_from(LEVELS)),
        risk_7d_ago=draw(st.one_of(st.none(), st.floats(0, 100, allow_nan=False).map(lambda r: round(r, 1)))),
        level_since=None,
        drivers=tuple(draw(st.lists(drivers(), max_size=4))),
        as_of=AS_OF,
    )


@st.composite
def items(draw: st.DrawFn, alert_id: int) -> AlertItem:
    rule = draw(st.sampled_from(sorted(RULES)))
    code = RULES[rule]
    return AlertItem(
        alert_id=alert_id,
        dedup_key=f"acme:{rule}:{alert_id}",
        rule=rule,
        severity=draw(st.sampled_from(["info", "warning", "critical"])),
        title_en="stored title, 0 days",
        title_fr="titre stocké, 0 jour",
        fired_at=draw(moments),
        subject=None,
        drivers=tuple(draw(st.lists(drivers(code), min_size=1, max_size=2))) if code else (),
    )


@st.composite
def messages(draw: st.DrawFn) -> AlertMessage:
    n = draw(st.integers(1, 3))
    alerts = tuple(draw(items(i)) for i in range(1, n + 1))
    folded = tuple(draw(st.lists(items(10), max_size=1)))
    kind: MessageKind = draw(st.sampled_from(["immediate", "escalation", "reminder", "resolved"]))
    return AlertMessage(kind, draw(accounts()), alerts, folded, kam_name=draw(st.one_of(st.none(), names)))


@st.composite
def audiences(draw: st.DrawFn) -> Audience:
    team = draw(st.booleans())
    reader = Reader(
        draw(st.sampled_from(["en", "fr"])),
        draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"])),
        AS_OF + timedelta(hours=draw(st.integers(0, 72))),
    )
    links = NoLinks() if team else UnsignedLinks("https://k.example")
    role: Role = "team" if team else draw(st.sampled_from(["owner", "manager"]))
    return Audience(reader, role, links, PLAYBOOK)


def rendered_texts(message: AlertMessage, audience: Audience) -> list[str]:
    email = render_email(message, audience)
    return [json.dumps(render_slack(message, audience), ensure_ascii=False), email.subject, email.text]


def money_words(account: AccountSnapshot, locale: Locale) -> list[tuple[Decimal, str]]:
    found = [(account.arr, account.currency)]
    for d in (*account.drivers,):
        if "amount" in d.evidence:
            found.append((Decimal(str(d.evidence["amount"])), account.currency))
    return found


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(messages(), audiences())
def test_no_zero_days_and_no_amount_without_its_currency(message: AlertMessage, audience: Audience) -> None:
    locale = audience.reader.locale
    for text in rendered_texts(message, audience):
        assert not ZERO_DAYS.search(text), text
        for amount, _ in money_words(message.account, locale):
            assert str(amount) not in text  # never the bare number
    symbol = get_currency_symbol(message.account.currency, locale)
    assert symbol in render_email(message, audience).text  # the ARR, with its currency
    for d in (*message.account.drivers, *(d for a in message.alerts for d in a.drivers)):
        if "amount" in d.evidence:
            assert symbol in driver_line(d, audience.reader, message.account.currency)


@PROPERTY
@given(messages(), audiences())
def test_a_critical_alert_never_sits_under_a_lower_risk_line_without_saying_why(
    message: AlertMessage, audience: Audience
) -> None:
    if message.kind == "resolved":
        return
    why = severity_reason("critical", message.account, audience.reader)
    slack = json.dumps(render_slack(message, audience), ensure_ascii=False)
    email = render_email(message, audience).text
    for alert in message.alerts:
        if alert.severity == "critical" and message.account.level != "critical":
            assert why is not None
            assert why in slack
            assert why in email
    if message.account.level == "critical":
        assert why is None


@PROPERTY
@given(messages(), audiences(), st.lists(accounts(), min_size=1, max_size=3))
def test_digests_too(message: AlertMessage, audience: Audience, others: list[AccountSnapshot]) -> None:
    sections = tuple(DigestSection(a, message.alerts, message.folded) for a in (message.account, *others))
    digest = Digest(date(2026, 11, 21), sections)
    email = render_digest_email(digest, audience)
    for text in (json.dumps(render_digest_slack(digest, audience), ensure_ascii=False), email.subject, email.text):
        assert not ZERO_DAYS.search(text)
        for section in sections:
            assert str(section.account.arr) not in text


def _unescaped(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _valid_mrkdwn(text: str) -> bool:
    """No raw control character: no link, mention or markup Slack would read into a value."""
    without_entities = re.sub(r"&(amp|lt|gt);", "", text)
    return not re.search(r"[&<>]", without_entities)


def _text_objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") in ("plain_text", "mrkdwn") and "text" in node else []
        return found + [o for v in node.values() for o in _text_objects(v)]
    if isinstance(node, list):
        return [o for v in node for o in _text_objects(v)]
    return []


@PROPERTY
@given(names, names, names, audiences(), st.sampled_from(["immediate", "escalation", "reminder", "resolved"]))
def test_slack_shows_any_string_as_written_in_valid_block_kit(
    account_name: str, contact: str, kam_name: str, audience: Audience, kind: Any
) -> None:
    champion = Driver(
        "relationship",
        "relationship.champion_left",
        "critical",
        80,
        {"name": contact, "departures": 1, "successor": "pending"},
        AS_OF - timedelta(days=2),
        "",
        "",
    )
    account = AccountSnapshot(
        "acme",
        account_name,
        "strategic",
        Decimal("480000"),
        "EUR",
        None,
        "kam-lea",
        70,
        "high",
        60,
        None,
        (champion,),
        AS_OF,
    )
    item = AlertItem(7, "acme:champion_left:c", "champion_left", "critical", "t", "t", AS_OF, "c", (champion,))
    payloads = [
        render_slack(AlertMessage(kind, account, (item,), kam_name=kam_name), audience),
        render_digest_slack(Digest(AS_OF.date(), (DigestSection(account, (item,)),)), audience),
    ]
    for payload in payloads:
        json.dumps(payload)
        assert len(payload["blocks"]) <= 50
        assert payload["mrkdwn"] is False
        assert _valid_mrkdwn(payload["text"])
        objects = _text_objects(payload["blocks"])
        plain = [o["text"] for o in objects if o["type"] == "plain_text"]
        for o in objects:
            assert len(o["text"]) <= 3000
            if o["type"] == "mrkdwn":
                assert _valid_mrkdwn(o["text"])
                assert account_name not in o["text"] or account_name == slack_escape(account_name)
        headers = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "header"]
        assert all(len(h) <= 150 for h in headers)
        assert any(account_name in t for t in plain)
        assert any(contact in t for t in plain)
    assert account_name in _unescaped(payloads[0]["text"])  # the notification's fallback names the account
    if kind == "escalation":
        assert any(kam_name in o["text"] for o in _text_objects(payloads[0]["blocks"]) if o["type"] == "plain_text")


@given(st.text())
def test_slack_escape_round_trips_and_leaves_no_control_character(text: str) -> None:
    escaped = slack_escape(text)
    assert _valid_mrkdwn(escaped)
    assert _unescaped(escaped) == text
