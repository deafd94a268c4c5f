"""The vocabulary of the pages in the reader's language (through the one catalogue): levels, tiers, states,
components, contact roles, and the one-line wording of each signal of an account's timeline."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from alerts import phrasing
from schemas.i18n import format_day, format_money, format_number, translate
from schemas.vocabulary import LEVELS, SEVERITIES, TIERS, Locale


def level_word(level: str | None, locale: Locale) -> str:
    """The messages' word, capitalised as a label."""
    if level in LEVELS:
        return phrasing.level_word(level, locale).capitalize()
    return translate(locale, "Not scored")


def tier_word(tier: str, locale: Locale) -> str:
    return phrasing.tier_word(tier, locale).capitalize() if tier in TIERS else tier


def severity_word(severity: str, locale: Locale) -> str:
    return phrasing.severity_word(severity, locale) if severity in SEVERITIES else severity


def state_word(state: str, locale: Locale) -> str:
    words = {
        "firing": translate(locale, "open"),
        "acknowledged": translate(locale, "acknowledged"),
        "resolved": translate(locale, "resolved"),
        "feedback:useful": translate(locale, "found it useful"),
        "feedback:false_alarm": translate(locale, "called it a false alarm"),
    }
    return words.get(state, state)


def component_word(component: str, locale: Locale) -> str:
    words = {
        "usage": translate(locale, "Usage"),
        "support": translate(locale, "Support"),
        "payment": translate(locale, "Payment"),
        "relationship": translate(locale, "Relationship"),
        "engagement": translate(locale, "Engagement"),
        "renewal": translate(locale, "Renewal"),
    }
    return words.get(component, component)


def role_word(role: str | None, locale: Locale) -> str:
    words = {
        "executive_sponsor": translate(locale, "executive sponsor"),
        "champion": translate(locale, "champion"),
        "decision_maker": translate(locale, "decision maker"),
        "technical_evaluator": translate(locale, "technical evaluator"),
        "influencer": translate(locale, "influencer"),
        "user": translate(locale, "user"),
        "detractor": translate(locale, "detractor"),
    }
    return words.get(role or "", role or "")


def outcome_word(outcome: str, locale: Locale) -> str:
    words = {
        "renewed": translate(locale, "renewed"),
        "expanded": translate(locale, "expanded"),
        "downgraded": translate(locale, "downgraded"),
        "churned": translate(locale, "lost"),
    }
    return words.get(outcome, outcome)


def via_word(via: str, locale: Locale) -> str:
    words = {
        "engine": "kamwatch",
        "api": translate(locale, "the API"),
        "slack": "Slack",
        "cli": translate(locale, "the command line"),
        "widget": translate(locale, "the CRM widget"),
        "page": translate(locale, "the account page"),
        "email": translate(locale, "email"),
    }
    return words.get(via, via)


def channel_word(channel: str, locale: Locale) -> str:
    words = {
        "slack": translate(locale, "Slack message"),
        "email": translate(locale, "email"),
        "team_channel": translate(locale, "team channel"),
    }
    return words.get(channel, channel)


def _priority(priority: str | None, locale: Locale) -> str:
    words = {
        "low": translate(locale, "low priority"),
        "normal": translate(locale, "normal priority"),
        "high": translate(locale, "high priority"),
        "urgent": translate(locale, "urgent"),
    }
    return words.get(priority or "", priority or "")


def _amount(data: Mapping[str, Any], locale: Locale) -> str:
    try:
        return format_money(Decimal(str(data.get("amount"))), str(data.get("currency") or ""), locale)
    except (InvalidOperation, ValueError, KeyError, TypeError):
        return str(data.get("amount", ""))


def _day(value: Any, locale: Locale) -> str:
    try:
        return format_day(date.fromisoformat(str(value)), locale)
    except ValueError:
        return str(value)


def _ticket(data: Mapping[str, Any], locale: Locale) -> str:
    fields = {"id": data.get("ticket_id", ""), "priority": _priority(data.get("priority"), locale)}
    status = data.get("status")
    sentences = {
        "opened": translate(locale, "Ticket {id} opened ({priority})", **fields),
        "updated": translate(locale, "Ticket {id} updated ({priority})", **fields),
        "escalated": translate(locale, "Ticket {id} escalated ({priority})", **fields),
        "reopened": translate(locale, "Ticket {id} reopened ({priority})", **fields),
        "resolved": translate(locale, "Ticket {id} resolved", **fields),
        "closed": translate(locale, "Ticket {id} closed", **fields),
    }
    text = sentences.get(str(status), f"{fields['id']} {status}")
    if data.get("category"):
        text += f" · {data['category']}"
    if data.get("csat") is not None:
        text += " · " + translate(locale, "satisfaction {score}/5", score=data["csat"])
    return text


def _invoice(data: Mapping[str, Any], locale: Locale) -> str:
    fields = {
        "id": data.get("invoice_id", ""),
        "amount": _amount(data, locale),
        "due": _day(data.get("due_date"), locale),
    }
    sentences = {
        "issued": translate(locale, "Invoice {id} issued: {amount}, due {due}", **fields),
        "paid": translate(locale, "Invoice {id} paid ({amount})", **fields),
        "failed": translate(locale, "Payment of invoice {id} failed ({amount})", **fields),
        "disputed": translate(locale, "Invoice {id} disputed ({amount})", **fields),
        "refunded": translate(locale, "Invoice {id} refunded ({amount})", **fields),
        "written_off": translate(locale, "Invoice {id} written off ({amount})", **fields),
    }
    return sentences.get(str(data.get("status")), f"{fields['id']} {data.get('status')}")


def _contact(data: Mapping[str, Any], locale: Locale) -> str:
    who = str(data.get("name") or data.get("contact_id") or "")
    fields = {"who": who, "role": role_word(data.get("role"), locale)}
    sentences = {
        "added": translate(locale, "New contact {who} ({role})", **fields),
        "updated": translate(locale, "Contact {who} updated ({role})", **fields),
        "role_changed": translate(
            locale,
            "{who} is now {role} (was {previous})",
            previous=role_word(data.get("previous_role"), locale),
            **fields,
        ),
        "removed": translate(locale, "Contact {who} removed ({role})", **fields),
        "left_company": translate(locale, "{who} left the company ({role})", **fields),
    }
    return sentences.get(str(data.get("change")), f"{who} {data.get('change')}")


def _engagement(data: Mapping[str, Any], locale: Locale) -> str:
    kinds = {
        "meeting": translate(locale, "Meeting"),
        "business_review": translate(locale, "Business review"),
        "email": translate(locale, "Email"),
        "event": translate(locale, "Event"),
        "training": translate(locale, "Training"),
        "nps_survey": translate(locale, "NPS survey"),
    }
    outcomes = {
        "attended": translate(locale, "attended"),
        "declined": translate(locale, "declined"),
        "no_show": translate(locale, "no-show"),
        "cancelled": translate(locale, "cancelled"),
        "replied": translate(locale, "replied"),
        "no_reply": translate(locale, "no reply"),
        "responded": translate(locale, "answered"),
    }
    kind = kinds.get(str(data.get("kind")), str(data.get("kind")))
    if data.get("nps_score") is not None:
        return translate(locale, "NPS survey answered: {score}/10", score=data["nps_score"])
    outcome = outcomes.get(str(data.get("outcome")), str(data.get("outcome")))
    return translate(locale, "{kind}: {outcome}", kind=kind, outcome=outcome)


def _profile(data: Mapping[str, Any], locale: Locale) -> str:
    parts = [translate(locale, "Account profile updated")]
    if data.get("arr") is not None:
        parts.append(translate(locale, "ARR {amount}", amount=_amount({"amount": data["arr"], **data}, locale)))
    if data.get("tier"):
        parts.append(tier_word(str(data["tier"]), locale))
    if data.get("renewal_date"):
        parts.append(translate(locale, "renewal {day}", day=_day(data["renewal_date"], locale)))
    return " · ".join(parts)


def _outcome(data: Mapping[str, Any], locale: Locale) -> str:
    text = translate(locale, "Outcome: {outcome}", outcome=outcome_word(str(data.get("outcome")), locale))
    if data.get("reason"):
        text += f" ({data['reason']})"
    return text


def event_sentence(type_: str, data: Mapping[str, Any], locale: Locale) -> str:
    """One line on a raw event, in the reader's language."""
    if type_ == "kamwatch.support_ticket.v1":
        return _ticket(data, locale)
    if type_ == "kamwatch.payment.v1":
        return _invoice(data, locale)
    if type_ == "kamwatch.contact_change.v1":
        return _contact(data, locale)
    if type_ == "kamwatch.engagement.v1":
        return _engagement(data, locale)
    if type_ == "kamwatch.account.v1":
        return _profile(data, locale)
    if type_ == "kamwatch.outcome.v1":
        return _outcome(data, locale)
    if type_ == "kamwatch.usage.v1":
        return translate(
            locale, "Product usage: {quantity}", quantity=format_number(float(data.get("quantity", 1)), locale)
        )
    return type_


def signal_kind(type_: str, locale: Locale) -> str:
    """The short category of a timeline line."""
    kinds = {
        "kamwatch.support_ticket.v1": translate(locale, "Support"),
        "kamwatch.payment.v1": translate(locale, "Billing"),
        "kamwatch.contact_change.v1": translate(locale, "Contacts"),
        "kamwatch.engagement.v1": translate(locale, "Engagement"),
        "kamwatch.account.v1": translate(locale, "CRM"),
        "kamwatch.outcome.v1": translate(locale, "Outcome"),
        "kamwatch.usage.v1": translate(locale, "Usage"),
        "alert": translate(locale, "Alert"),
        "alert_transition": translate(locale, "Alert"),
        "level_change": translate(locale, "Risk"),
        "override": translate(locale, "Override"),
    }
    return kinds.get(type_, type_)
