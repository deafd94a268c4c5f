"""The words of notifications, as a person would write them, in the reader's language and time zone.

Everything is phrased at send time (``Reader.now``) from structured data (driver codes and evidence, the alert's
rule, severity and subject, the account's risk and level), through the catalogue (``schemas.i18n``: gettext
with Babel for numbers, money, days and plurals), so a message never reads "left 0 days ago" nor shows an
amount without its currency.

The severity story (docs/alerts.md): an alert's severity says how soon its KAM must act (critical: today;
warning: this week, in the digest; info: to know), the account's level says how much risk it carries overall.
A critical alert on an account whose level is below critical is an acute signal that calls for action on its
own; its message says so next to the risk line (``severity_reason``), so the headline, the risk line and the
driver lines never contradict each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.model import AccountSnapshot
from alerts.playbook import NextStep
from schemas.i18n import colon as locale_colon
from schemas.i18n import (
    format_day,
    format_moment,
    format_money,
    format_number,
    format_percent,
    relative_days,
    translate,
    translate_plural,
)
from schemas.vocabulary import Driver, Level, Locale, Severity, Tier

Role = Literal["owner", "manager", "team"]
"""Who reads a message: the account's owner KAM, a manager the alert was escalated to, the team channel."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads, in which language and time zone, and when (the send time: relative days count from it)."""

    locale: Locale
    timezone: str
    now: datetime

    def days_since(self, moment: datetime) -> int:
        """Whole calendar days, in the reader's time zone, from ``moment`` to now (negative: in the future)."""
        zone = ZoneInfo(self.timezone)
        return (self.now.astimezone(zone).date() - moment.astimezone(zone).date()).days

    def days_until(self, day: date) -> int:
        return (day - self.now.astimezone(ZoneInfo(self.timezone)).date()).days

    def gettext(self, message: str, **fields: object) -> str:
        return translate(self.locale, message, **fields)

    def ngettext(self, singular: str, plural: str, n: int, **fields: object) -> str:
        return translate_plural(self.locale, singular, plural, n, **fields)


# --- vocabulary ----------------------------------------------------------------------------------------------


def level_word(level: Level, locale: Locale) -> str:
    words = {
        "low": translate(locale, "low"),
        "medium": translate(locale, "medium"),
        "high": translate(locale, "high"),
        "critical": translate(locale, "critical"),
    }
    return words[level]


def level_title(level: Level, locale: Locale) -> str:
    words = {
        "low": translate(locale, "Low risk"),
        "medium": translate(locale, "Medium risk"),
        "high": translate(locale, "High risk"),
        "critical": translate(locale, "Critical risk"),
    }
    return words[level]


def severity_word(severity: Severity, locale: Locale) -> str:
    words = {
        "info": translate(locale, "Info"),
        "warning": translate(locale, "Warning"),
        "critical": translate(locale, "Critical"),
    }
    return words[severity]


def tier_word(tier: Tier, locale: Locale) -> str:
    words = {
        "strategic": translate(locale, "strategic"),
        "key": translate(locale, "key"),
        "standard": translate(locale, "standard"),
    }
    return words[tier]


def rule_name(rule: str, locale: Locale) -> str:
    """An alert rule's name (the rule's id for one this module does not know)."""
    names = {
        "risk_level": translate(locale, "Risk level"),
        "risk_jump": translate(locale, "Risk jump"),
        "usage_drop": translate(locale, "Usage drop"),
        "usage_slide": translate(locale, "Slow usage slide"),
        "ticket_surge": translate(locale, "Support ticket surge"),
        "urgent_ticket_open": translate(locale, "Urgent ticket open"),
        "payment_late": translate(locale, "Late payment"),
        "payment_failed": translate(locale, "Payment failed"),
        "champion_left": translate(locale, "Champion left"),
        "sponsor_left": translate(locale, "Executive sponsor left"),
        "decision_maker_left": translate(locale, "Decision maker left"),
        "new_executive_unengaged": translate(locale, "New executive not engaged"),
        "single_threaded": translate(locale, "Single-threaded account"),
        "business_review_missed": translate(locale, "Business review missed"),
        "nps_detractor": translate(locale, "NPS detractor"),
        "renewal_at_risk": translate(locale, "Renewal at risk"),
    }
    return names.get(rule, rule)


def number(value: float, reader: Reader) -> str:
    return format_number(value, reader.locale)


def money(amount: Decimal, currency: str, reader: Reader) -> str:
    """With its currency always; cents only when there are some."""
    cents = amount != amount.to_integral_value()
    return format_money(amount, currency, reader.locale, cents=cents)


def day(value: date, reader: Reader) -> str:
    return format_day(value, reader.locale)


def moment(value: datetime, reader: Reader) -> str:
    return format_moment(value, reader.locale, reader.timezone, style="short")


def ago(value: datetime, reader: Reader) -> str:
    """``today``, ``yesterday``, ``3 days ago`` (a moment in the future reads ``today``: it is not past yet)."""
    return relative_days(-max(0, reader.days_since(value)), reader.locale)


def colon(reader: Reader) -> str:
    return locale_colon(reader.locale)


# --- the account ---------------------------------------------------------------------------------------------


def risk_line(account: AccountSnapshot, reader: Reader) -> str:
    """``72.5/100, high (▲ +18 in 7 days)`` / ``72,5/100, élevé (▲ +18 en 7 jours)``."""
    text = reader.gettext(
        "{risk}/100, {level}", risk=number(account.risk, reader), level=level_word(account.level, reader.locale)
    )
    if account.risk_7d_ago is None:
        return text
    delta = round(account.risk - account.risk_7d_ago, 1)
    if abs(delta) < 0.5:
        return text + " " + reader.gettext("(stable over 7 days)")
    arrow = "▲" if delta > 0 else "▼"
    change = format_number(delta, reader.locale, signed=True).replace("-", "−")
    return text + " " + reader.gettext("({arrow} {change} in 7 days)", arrow=arrow, change=change)


def facts(account: AccountSnapshot, reader: Reader) -> list[tuple[str, str]]:
    """Label and value of what a message says about the account (the account's name first)."""
    found = [
        (reader.gettext("Account"), account.name),
        (reader.gettext("ARR"), money(account.arr, account.currency, reader)),
        (reader.gettext("Tier"), tier_word(account.tier, reader.locale)),
        (reader.gettext("Risk"), risk_line(account, reader)),
    ]
    if account.renewal_date is not None:
        when = relative_days(reader.days_until(account.renewal_date), reader.locale)
        found.append((reader.gettext("Renewal"), f"{day(account.renewal_date, reader)} ({when})"))
    return found


def severity_reason(severity: Severity, account: AccountSnapshot, reader: Reader) -> str | None:
    """Why an alert is more severe than the account's level, when it is (else None)."""
    if severity != "critical" or account.level == "critical":
        return None
    return reader.gettext(
        "Critical: this signal alone calls for action today, even though the account's overall risk is "
        "{level} ({risk}/100).",
        level=level_word(account.level, reader.locale),
        risk=number(account.risk, reader),
    )


def act_by(severity: Severity, reader: Reader) -> str:
    """What the severity asks of the KAM."""
    words = {
        "critical": reader.gettext("Act today"),
        "warning": reader.gettext("Act this week"),
        "info": reader.gettext("For your information"),
    }
    return words[severity]


# --- drivers -------------------------------------------------------------------------------------------------


def driver_line(driver: Driver, reader: Reader, currency: str) -> str:
    """One driver in words, from its code and evidence at the reader's now; the engine's own message for a
    code this module does not know (or evidence it cannot read)."""
    phrase = _PHRASES.get(driver.code)
    if phrase is not None:
        try:
            return phrase(driver, reader, currency)
        except (KeyError, TypeError, ValueError, InvalidOperation):
            pass
    return driver.message_fr if reader.locale == "fr" else driver.message_en


def _int(driver: Driver, key: str) -> int:
    value = driver.evidence[key]
    if value is None or isinstance(value, bool):
        raise ValueError(key)
    return int(value)


def _pct(driver: Driver, reader: Reader) -> str:
    return format_percent(_int(driver, "drop_pct") / 100, reader.locale)


def _weeks(driver: Driver, reader: Reader) -> str:
    weeks = int(driver.evidence.get("weeks_in_a_row") or 1)
    return "" if weeks < 2 else reader.ngettext(", {n} week in a row", ", {n} weeks in a row", weeks)


def _usage_drop(d: Driver, r: Reader, currency: str) -> str:
    return r.gettext("Usage down {pct} against the usual level", pct=_pct(d, r)) + _weeks(d, r)


def _users_drop(d: Driver, r: Reader, currency: str) -> str:
    now = number(float(d.evidence["recent_daily_users"] or 0), r)
    usual = number(float(d.evidence["baseline_daily_users"] or 0), r)
    text = r.gettext("Active users down {pct} ({now} a day, usually {usual})", pct=_pct(d, r), now=now, usual=usual)
    return text + _weeks(d, r)


def _slide(d: Driver, r: Reader, currency: str) -> str:
    pct = format_percent(_int(d, "decline_pct") / 100, r.locale)
    return r.ngettext(
        "Usage down {pct} over {n} week, a slow slide",
        "Usage down {pct} over {n} weeks, a slow slide",
        _int(d, "weeks"),
        pct=pct,
    )


def _silent(d: Driver, r: Reader, currency: str) -> str:
    last = date.fromisoformat(str(d.evidence["last_active_day"]))
    when = relative_days(min(0, r.days_until(last)), r.locale)
    return r.gettext("Last product activity {when}", when=when)


def _surge(d: Driver, r: Reader, currency: str) -> str:
    tickets, days = _int(d, "tickets"), _int(d, "window_days")
    opened = r.ngettext("{n} ticket opened", "{n} tickets opened", tickets)
    window = r.ngettext("in the last day", "in the last {n} days", days)
    rate = r.gettext("{ratio}× the usual rate", ratio=number(float(d.evidence["ratio"] or 0), r))
    return f"{opened} {window}, {rate}"


def _urgent_open(d: Driver, r: Reader, currency: str) -> str:
    tickets = _int(d, "tickets")
    text = r.ngettext("{n} urgent or high-priority ticket open", "{n} urgent or high-priority tickets open", tickets)
    if d.since is None:
        return text
    return text + ", " + r.gettext("the oldest opened {when}", when=ago(d.since, r))


def _escalations(d: Driver, r: Reader, currency: str) -> str:
    parts = []
    if (esc := _int(d, "escalations")) > 0:
        parts.append(r.ngettext("{n} escalation", "{n} escalations", esc))
    if (reo := _int(d, "reopenings")) > 0:
        parts.append(r.ngettext("{n} reopening", "{n} reopenings", reo))
    if not parts:
        raise ValueError("nothing to say")
    what = parts[0] if len(parts) == 1 else r.gettext("{first} and {second}", first=parts[0], second=parts[1])
    return r.gettext("{what} on recent or open tickets", what=what)


def _low_csat(d: Driver, r: Reader, currency: str) -> str:
    return r.ngettext(
        "{low} of {n} rated ticket scored low (lowest {worst}/5)",
        "{low} of {n} rated tickets scored low (lowest {worst}/5)",
        _int(d, "rated"),
        low=_int(d, "tickets"),
        worst=_int(d, "worst_csat"),
    )


def _overdue(d: Driver, r: Reader, currency: str) -> str:
    invoices, worst = _int(d, "invoices"), _int(d, "max_days_overdue")
    amount = money(Decimal(str(d.evidence["amount"])), currency, r)
    text = r.ngettext("{n} overdue invoice ({amount})", "{n} overdue invoices ({amount})", invoices, amount=amount)
    text += ", " + r.ngettext("up to {n} day late", "up to {n} days late", worst)
    usual = int(d.evidence.get("usual_delay_days") or 0)
    if usual > 0:
        return text + " " + r.ngettext("(usually paid {n} day late)", "(usually paid {n} days late)", usual)
    return text + " " + r.gettext("(usually paid on time)")


def _failed(d: Driver, r: Reader, currency: str) -> str:
    failures, invoices, unpaid = _int(d, "failures"), _int(d, "invoices"), _int(d, "unpaid_invoices")
    text = r.ngettext("{n} failed payment", "{n} failed payments", failures)
    text += " " + r.ngettext("on {n} invoice", "on {n} invoices", invoices)
    if unpaid > 0:
        text += ", " + r.ngettext("{n} still unpaid", "{n} still unpaid", unpaid)
    return text


def _disputed(d: Driver, r: Reader, currency: str) -> str:
    amount = money(Decimal(str(d.evidence["amount"])), currency, r)
    return r.ngettext(
        "{n} disputed invoice, {amount}", "{n} disputed invoices, {amount} in total", _int(d, "invoices"), amount=amount
    )


def _written_off(d: Driver, r: Reader, currency: str) -> str:
    amount = money(Decimal(str(d.evidence["amount"])), currency, r)
    return r.ngettext(
        "{n} invoice written off, {amount}",
        "{n} invoices written off, {amount} in total",
        _int(d, "invoices"),
        amount=amount,
    )


def _departure(role: str) -> Callable[[Driver, Reader, str], str]:
    def phrase(d: Driver, r: Reader, currency: str) -> str:
        if d.since is None:
            raise ValueError("no departure date")
        name = d.evidence.get("name")
        when = ago(d.since, r)
        roles = {
            "champion": (r.gettext("Champion {name} left {when}"), r.gettext("The champion left {when}")),
            "sponsor": (
                r.gettext("Executive sponsor {name} left {when}"),
                r.gettext("The executive sponsor left {when}"),
            ),
            "decision_maker": (
                r.gettext("Decision maker {name} left {when}"),
                r.gettext("The decision maker left {when}"),
            ),
        }
        named, anonymous = roles[role]
        text = named.format(name=name, when=when) if name else anonymous.format(when=when)
        successor = d.evidence.get("successor")
        if successor == "none":
            text += ", " + r.gettext("no successor named yet")
        elif successor == "named":
            text += ", " + r.gettext("a successor has been named")
        if d.evidence.get("sole_decision_level") is True:
            text += ", " + r.gettext("the only contact who decided")
        more = int(d.evidence.get("departures") or 1) - 1
        if more > 0:
            text += " " + r.ngettext("(and {n} other departure)", "(and {n} other departures)", more)
        return text

    return phrase


def _no_champion(d: Driver, r: Reader, currency: str) -> str:
    return r.gettext("No active champion")


def _no_sponsor(d: Driver, r: Reader, currency: str) -> str:
    return r.gettext("No active executive sponsor")


def _new_executive(d: Driver, r: Reader, currency: str) -> str:
    text = r.ngettext(
        "{n} new executive or decision maker not met yet",
        "{n} new executives or decision makers not met yet",
        _int(d, "contacts"),
    )
    if d.since is None:
        return text
    return text + ", " + r.gettext("the first one arrived {when}", when=ago(d.since, r))


def _single_threaded(d: Driver, r: Reader, currency: str) -> str:
    active = _int(d, "active_contacts")
    if active == 0:
        return r.gettext("No active contact left")
    if active == 1:
        return r.gettext("Single-threaded: one active contact only")
    return r.ngettext(
        "No active contact who decides ({n} active contact)",
        "No active contact who decides ({n} active contacts)",
        active,
    )


def _detractor(d: Driver, r: Reader, currency: str) -> str:
    return r.ngettext(
        "{n} active detractor among the contacts", "{n} active detractors among the contacts", _int(d, "detractors")
    )


def _meetings_missed(d: Driver, r: Reader, currency: str) -> str:
    missed, attended, days = _int(d, "missed"), _int(d, "attended"), _int(d, "window_days")
    text = r.ngettext(
        "{missed} of {n} meeting or review declined, missed or cancelled",
        "{missed} of {n} meetings and reviews declined, missed or cancelled",
        missed + attended,
        missed=missed,
    )
    return text + " " + r.ngettext("in the last day", "in the last {n} days", days)


def _no_business_review(d: Driver, r: Reader, currency: str) -> str:
    last = d.evidence.get("last_review")
    if not last:
        return r.gettext("No business review attended yet")
    return r.gettext("Last business review attended {when}", when=ago(datetime.fromisoformat(str(last)), r))


def _nps(d: Driver, r: Reader, currency: str) -> str:
    text = r.gettext("Latest NPS score {score}/10 (detractor)", score=_int(d, "nps_score"))
    surveyed = d.evidence.get("surveyed_at")
    if not surveyed:
        return text
    return text + ", " + r.gettext("answered {when}", when=ago(datetime.fromisoformat(str(surveyed)), r))


def _no_reply(d: Driver, r: Reader, currency: str) -> str:
    return r.ngettext("{n} email without a reply", "{n} emails in a row without a reply", _int(d, "emails"))


def _renewal(d: Driver, r: Reader, currency: str) -> str:
    renewal = date.fromisoformat(str(d.evidence["renewal_date"]))
    when = relative_days(r.days_until(renewal), r.locale)
    return r.gettext("Renewal {when} ({day})", when=when, day=day(renewal, r))


_PHRASES: dict[str, Callable[[Driver, Reader, str], str]] = {
    "usage.drop": _usage_drop,
    "usage.users_drop": _users_drop,
    "usage.slide": _slide,
    "usage.silent": _silent,
    "support.surge": _surge,
    "support.urgent_open": _urgent_open,
    "support.escalations": _escalations,
    "support.low_csat": _low_csat,
    "payment.overdue": _overdue,
    "payment.failed": _failed,
    "payment.disputed": _disputed,
    "payment.written_off": _written_off,
    "relationship.champion_left": _departure("champion"),
    "relationship.sponsor_left": _departure("sponsor"),
    "relationship.decision_maker_left": _departure("decision_maker"),
    "relationship.no_champion": _no_champion,
    "relationship.no_sponsor": _no_sponsor,
    "relationship.new_executive_unengaged": _new_executive,
    "relationship.single_threaded": _single_threaded,
    "relationship.detractor": _detractor,
    "engagement.meetings_missed": _meetings_missed,
    "engagement.no_business_review": _no_business_review,
    "engagement.nps_detractor": _nps,
    "engagement.no_reply_streak": _no_reply,
    "renewal.near": _renewal,
}
PHRASED_CODES = frozenset(_PHRASES)


def strongest(drivers: Sequence[Driver]) -> Driver | None:
    return min(drivers, key=lambda d: (-d.points, d.code), default=None)


# --- alerts --------------------------------------------------------------------------------------------------


def alert_headline(rule: str, drivers: Sequence[Driver], account: AccountSnapshot, reader: Reader) -> str:
    """What an alert is about, in words of now: its strongest driver for a driver rule, the account's level,
    jump or renewal for the others; the rule's name when nothing better is known (never the title stored when
    the alert fired: its words belonged to that moment)."""
    fallback = rule_name(rule, reader.locale)
    if rule == "risk_level":
        return f"{level_title(account.level, reader.locale)} ({number(account.risk, reader)}/100)"
    if rule == "risk_jump":
        if account.risk_7d_ago is None or account.risk <= account.risk_7d_ago:
            return fallback
        return reader.gettext(
            "Risk up {points} points in 7 days ({before} → {now})",
            points=number(account.risk - account.risk_7d_ago, reader),
            before=number(account.risk_7d_ago, reader),
            now=number(account.risk, reader),
        )
    if rule == "renewal_at_risk":
        if account.renewal_date is None:
            return fallback
        return reader.gettext(
            "Renewal {when} ({day}) with {level} risk",
            when=relative_days(reader.days_until(account.renewal_date), reader.locale),
            day=day(account.renewal_date, reader),
            level=level_word(account.level, reader.locale),
        )
    top = strongest(drivers)
    if top is None:
        return fallback
    return driver_line(top, reader, account.currency)


def first_seen(fired_at: datetime, reader: Reader) -> str:
    return reader.gettext("first seen {when}", when=ago(fired_at, reader))


def step_text(step: NextStep, reader: Reader) -> str:
    """``Call the finance contact about the late invoice, by Nov 27, 2026 (in 7 days)``."""
    action = reader.gettext(step.action)
    if step.due_at is None:
        due = reader.ngettext("within {n} day", "within {n} days", step.due_days)
    else:
        due_day = step.due_at.astimezone(ZoneInfo(reader.timezone)).date()
        days = reader.days_until(due_day)
        when = relative_days(days, reader.locale)
        if days < 0:
            due = reader.gettext("was due {day} ({when})", day=day(due_day, reader), when=when)
        else:
            due = reader.gettext("by {day} ({when})", day=day(due_day, reader), when=when)
    return f"{action}, {due}"


def next_step_line(step: NextStep, reader: Reader) -> str:
    """``Next step: Call the finance contact about the late invoice, by Nov 27, 2026 (in 7 days)``."""
    return reader.gettext("Next step{colon} {step}", colon=colon(reader), step=step_text(step, reader))


# --- who reads -----------------------------------------------------------------------------------------------


def role_footer(role: Role, reader: Reader, *, owner_name: str | None = None, digest: bool = False) -> str:
    if role == "manager":
        if owner_name:
            return reader.gettext(
                "You receive this as the manager of {owner}, who owns this account in kamwatch.", owner=owner_name
            )
        return reader.gettext("You receive this as the manager of this account's owner in kamwatch.")
    if role == "team":
        return reader.gettext("Posted to the team channel: critical alerts on strategic accounts.")
    if digest:
        return reader.gettext("You receive this daily summary because you own these accounts in kamwatch.")
    return reader.gettext("You receive this because you own this account in kamwatch.")
