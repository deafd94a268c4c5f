"""Pure rendering of notifications for their reader: Slack Block Kit payloads and multipart emails.

The words come from ``alerts.phrasing`` (the catalogue, at the send time); the Jinja2 templates
(``alerts/templates``, HTML autoescaped) only lay them out. Slack text is built with one rule: whatever comes from
outside (account, contact and KAM names, reasons) goes in ``plain_text`` objects, shown as written; ``mrkdwn``
only carries our own words, and any value in it goes through ``slack_escape``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Literal, Protocol

import jinja2

from alerts.model import AccountSnapshot
from alerts.phrasing import (
    Reader,
    Role,
    act_by,
    alert_headline,
    colon,
    day,
    driver_line,
    facts,
    first_seen,
    next_step_line,
    role_footer,
    rule_name,
    severity_reason,
    severity_word,
)
from alerts.playbook import Playbook, step_for_alert
from alerts.rules import top_drivers
from schemas.vocabulary import SEVERITY_RANK, Driver, Severity

MessageKind = Literal["immediate", "escalation", "reminder", "resolved"]
Verdict = Literal["useful", "false_alarm"]

ACK_ACTION = "alert_ack"
SNOOZE_ACTION = "alert_snooze_7d"
USEFUL_ACTION = "alert_useful"
FALSE_ALARM_ACTION = "alert_false_alarm"
OPEN_ACTION = "alert_open"
VERDICT_OF_ACTION: dict[str, Verdict] = {USEFUL_ACTION: "useful", FALSE_ALARM_ACTION: "false_alarm"}

# Slack refuses more than 50 blocks, header text over 150 characters and section text over 3000.
_MAX_BLOCKS = 50
_MAX_HEADER = 150
_MAX_TEXT = 3000
_EMOJI: dict[Severity, str] = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
_RESOLVED_EMOJI = "✅"
_NEW_EMOJI = "🆕"


class Links(Protocol):
    """Where a message's links lead, for its reader: the account page (with its actions), and a feedback
    confirmation. None: no link for this reader (the team channel: each member asks for their own)."""

    def account(self, account_id: str) -> str | None: ...

    def feedback(self, account_id: str, alert_id: int, verdict: Verdict) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One alert as a message shows it: its rule, severity, subject and drivers as they stand, and the title
    stored with it (shown only when nothing better can be said)."""

    alert_id: int
    dedup_key: str
    rule: str
    severity: Severity
    title_en: str
    title_fr: str
    fired_at: datetime
    subject: str | None = None
    drivers: tuple[Driver, ...] = ()
    state: str = "firing"


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A message about one account: ``alerts`` first (the buttons act on them), then those folded into them.

    ``new_since_last`` / ``resolved_since_last`` say what changed since the previous message to this recipient
    about this account; ``kam_name`` is the owner KAM an escalation is about.
    """

    kind: MessageKind
    account: AccountSnapshot
    alerts: tuple[AlertItem, ...]
    folded: tuple[AlertItem, ...] = ()
    new_since_last: tuple[AlertItem, ...] = ()
    resolved_since_last: tuple[AlertItem, ...] = ()
    kam_name: str | None = None


@dataclass(frozen=True, slots=True)
class DigestSection:
    account: AccountSnapshot
    alerts: tuple[AlertItem, ...]
    resolved: tuple[AlertItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """One KAM's daily digest: a section per account, most severe accounts first as given."""

    day: date
    sections: tuple[DigestSection, ...]


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a message is rendered for: the reader (language, time zone, send time), their role, their links."""

    reader: Reader
    role: Role
    links: Links
    playbook: Playbook | None = None


def slack_escape(text: str) -> str:
    """The three characters Slack's mrkdwn gives a meaning to (links, mentions), as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- what a message says -------------------------------------------------------------------------------------


def _item(item: AlertItem, account: AccountSnapshot, audience: Audience) -> dict[str, Any]:
    reader, links = audience.reader, audience.links
    step = None
    if audience.playbook is not None:
        found = step_for_alert(audience.playbook, item.drivers, account.drivers, account.tier, item.fired_at)
        step = next_step_line(found, reader) if found is not None else None
    return {
        "alert_id": item.alert_id,
        "emoji": _EMOJI[item.severity],
        "sev": item.severity,
        "severity": severity_word(item.severity, reader.locale),
        "act": act_by(item.severity, reader),
        "rule": rule_name(item.rule, reader.locale),
        "headline": alert_headline(item.rule, item.drivers, account, reader),
        "since": first_seen(item.fired_at, reader),
        "reason": severity_reason(item.severity, account, reader),
        "next_step": step,
        "useful_url": links.feedback(account.account_id, item.alert_id, "useful"),
        "false_alarm_url": links.feedback(account.account_id, item.alert_id, "false_alarm"),
    }


def _words(reader: Reader) -> dict[str, str]:
    _ = reader.gettext
    return {
        "drivers": _("Top drivers"),
        "also": _("Also on this account"),
        "since_last": _("Since the last message"),
        "new": _("New"),
        "resolved": _("Resolved"),
        "ack": _("Acknowledge"),
        "snooze": _("Snooze 7 days"),
        "useful": _("Useful"),
        "false_alarm": _("False alarm"),
        "open": _("Open"),
        "open_account": _("Open the account"),
        "was_useful": _("Was this alert useful?"),
        "actions_hint": _("Acknowledge, snooze or rate each alert on the account's page (Open)."),
        "team_open_hint": _("Open gives you your own link to the account, if it is one of yours."),
    }


def _intro(message: AlertMessage, reader: Reader) -> str | None:
    if message.kind == "escalation":
        if message.kam_name:
            return reader.gettext("{owner} has not acknowledged this critical alert in time.", owner=message.kam_name)
        return reader.gettext("The account owner has not acknowledged this critical alert in time.")
    if message.kind == "reminder":
        return reader.gettext("This critical alert is still not acknowledged; your manager has been told.")
    if message.kind == "resolved":
        return reader.gettext("The condition behind this alert has cleared.")
    return None


def _kind_word(message: AlertMessage, reader: Reader) -> str:
    if message.kind == "escalation":
        return reader.gettext("Escalation")
    if message.kind == "reminder":
        return reader.gettext("Reminder")
    if message.kind == "resolved":
        return reader.gettext("Resolved")
    return severity_word(message.alerts[0].severity, reader.locale) if message.alerts else reader.gettext("Alert")


def _context(message: AlertMessage, audience: Audience) -> dict[str, Any]:
    reader = audience.reader
    account = message.account
    items = [_item(a, account, audience) for a in message.alerts]
    main = items[0]["headline"] if items else reader.gettext("Account")
    headline = f"{account.name} — {main}"
    worst: Severity = max((a.severity for a in message.alerts), key=SEVERITY_RANK.__getitem__, default="info")
    actionable = message.kind != "resolved"
    return {
        "lang": reader.locale,
        "w": _words(reader),
        "kind": message.kind,
        "headline": headline,
        "emoji": _RESOLVED_EMOJI if message.kind == "resolved" else _EMOJI[worst],
        "subject": f"[kamwatch] {_kind_word(message, reader)}{colon(reader)} {headline}",
        "intro": _intro(message, reader),
        "kind_word": _kind_word(message, reader),
        "facts": facts(account, reader),
        "drivers": [driver_line(d, reader, account.currency) for d in top_drivers(account.drivers)],
        "alerts": items,
        "folded": [_item(a, account, audience) for a in message.folded],
        "new": [_item(a, account, audience) for a in message.new_since_last],
        "resolved": [_item(a, account, audience) for a in message.resolved_since_last],
        "url": audience.links.account(account.account_id),
        "account_id": account.account_id,
        "actionable": actionable,
        "colon": colon(reader),
        "footer": role_footer(audience.role, reader, owner_name=message.kam_name),
    }


def _digest_context(digest: Digest, audience: Audience) -> dict[str, Any]:
    reader = audience.reader
    alerts = sum(len(s.alerts) for s in digest.sections)
    accounts = len(digest.sections)
    headline = reader.gettext(
        "Daily summary, {day}{colon} {alerts} on {accounts}",
        day=day(digest.day, reader),
        colon=colon(reader),
        alerts=reader.ngettext("{n} alert", "{n} alerts", alerts),
        accounts=reader.ngettext("{n} account", "{n} accounts", accounts),
    )
    if alerts == 0:
        headline = reader.gettext(
            "Daily summary, {day}{colon} {cleared}",
            day=day(digest.day, reader),
            colon=colon(reader),
            cleared=reader.ngettext(
                "{n} alert cleared", "{n} alerts cleared", sum(len(s.resolved) for s in digest.sections)
            ),
        )
    return {
        "lang": reader.locale,
        "w": _words(reader),
        "headline": headline,
        "subject": f"[kamwatch] {headline}",
        "colon": colon(reader),
        "alert_count": alerts,
        "footer": role_footer(audience.role, reader, digest=True),
        "sections": [
            {
                "name": s.account.name,
                "account_id": s.account.account_id,
                "url": audience.links.account(s.account.account_id),
                "facts": facts(s.account, reader),
                "drivers": [driver_line(d, reader, s.account.currency) for d in top_drivers(s.account.drivers)],
                "alerts": [_item(a, s.account, audience) for a in s.alerts],
                "resolved": [_item(a, s.account, audience) for a in s.resolved],
            }
            for s in digest.sections
        ],
    }


# --- Slack -------------------------------------------------------------------------------------------------


def render_slack(message: AlertMessage, audience: Audience) -> dict[str, Any]:
    """A ``chat.postMessage``-ready payload (``text`` fallback + ``blocks``), without the ``channel``."""
    ctx = _context(message, audience)
    w = ctx["w"]
    blocks: list[dict[str, Any]] = [_header(f"{ctx['emoji']} {ctx['headline']}")]
    if ctx["intro"]:
        blocks.append(_section_plain(f"{ctx['kind_word']}{ctx['colon']} {ctx['intro']}"))
    blocks.append({"type": "section", "fields": _fact_fields(ctx["facts"])})
    if ctx["drivers"]:
        blocks.append(_section_plain(f"{w['drivers']}{ctx['colon']}\n" + "\n".join(f"• {d}" for d in ctx["drivers"])))
    for item in ctx["alerts"]:
        blocks.append(_section_plain(_item_text(item, ctx, resolved=not ctx["actionable"])))
        blocks.append(_actions(item["alert_id"], ctx, actionable=ctx["actionable"]))
    if ctx["folded"]:
        lines = "\n".join(f"• {i['emoji']} {i['headline']}" for i in ctx["folded"])
        blocks.append(_section_plain(f"{w['also']}{ctx['colon']}\n{lines}"))
    changes = [f"{_NEW_EMOJI} {w['new']}{ctx['colon']} {i['headline']}" for i in ctx["new"]]
    changes += [f"{_RESOLVED_EMOJI} {w['resolved']}{ctx['colon']} {i['headline']}" for i in ctx["resolved"]]
    if changes:
        blocks.append(_section_plain(f"{w['since_last']}{ctx['colon']}\n" + "\n".join(changes)))
    if not message.alerts:
        blocks.append({"type": "actions", "elements": [_open_button(ctx, w)]})
    footer = ctx["footer"] if ctx["url"] is not None else f"{ctx['footer']} {w['team_open_hint']}"
    blocks.append({"type": "context", "elements": [_plain(footer)]})
    return _message_body(ctx["subject"], blocks)


def _message_body(subject: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """``text`` is the notification's fallback, which Slack reads as mrkdwn unless told otherwise: escaped, and
    its markup off, so it shows as written."""
    return {"text": slack_escape(subject), "mrkdwn": False, "blocks": blocks[:_MAX_BLOCKS]}


def _fact_fields(facts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The account's name as written (plain text); our own facts with their label in bold."""
    (name_label, name), *ours = facts
    return [_plain(f"{name_label}\n{name}"), *(_mrkdwn(f"*{slack_escape(k)}*\n{slack_escape(v)}") for k, v in ours)]


def _item_text(item: dict[str, Any], ctx: dict[str, Any], *, resolved: bool = False) -> str:
    """An alert in plain text: severity (and what it asks), headline, why, rule and age, next step."""
    if resolved:
        lines = [f"{_RESOLVED_EMOJI} {ctx['w']['resolved']}{ctx['colon']} {item['headline']}"]
    else:
        lines = [f"{item['emoji']} {item['severity']} — {item['act']}{ctx['colon']} {item['headline']}"]
        if item["reason"]:
            lines.append(item["reason"])
    lines.append(f"{item['rule']} · {item['since']}")
    if item["next_step"]:
        lines.append(f"➡️ {item['next_step']}")
    return "\n".join(lines)


def render_digest_slack(digest: Digest, audience: Audience) -> dict[str, Any]:
    """One Slack message for the whole digest; alerts beyond Slack's block limit are counted, not shown."""
    ctx = _digest_context(digest, audience)
    w, colon = ctx["w"], ctx["colon"]
    blocks: list[dict[str, Any]] = [_header(ctx["headline"])]
    shown = 0
    # Keep room for the closing "n more" line and the footer.
    room = _MAX_BLOCKS - 3
    for section in ctx["sections"]:
        if len(blocks) + 3 > room:
            break
        blocks.append({"type": "divider"})
        summary = " · ".join(f"{k} {v}" for k, v in section["facts"][1:])
        blocks.append(_section_plain(f"{section['name']}\n{summary}"))
        for item in section["alerts"]:
            if len(blocks) + 2 > room:
                break
            blocks.append(_section_plain(_item_text(item, ctx)))
            blocks.append(
                _actions(item["alert_id"], {**ctx, "url": section["url"], "account_id": section["account_id"]})
            )
            shown += 1
        resolved = [f"{_RESOLVED_EMOJI} {w['resolved']}{colon} {i['headline']}" for i in section["resolved"]]
        if resolved and len(blocks) + 1 <= room:
            blocks.append(_section_plain("\n".join(resolved)))
            if not section["alerts"]:
                blocks.append({"type": "actions", "elements": [_open_button({**ctx, **section}, w)]})
    hidden = ctx["alert_count"] - shown
    if hidden > 0:
        more = audience.reader.ngettext("… and {n} more alert", "… and {n} more alerts", hidden)
        blocks.append({"type": "context", "elements": [_plain(more)]})
    blocks.append({"type": "context", "elements": [_plain(ctx["footer"])]})
    return _message_body(ctx["subject"], blocks)


def _plain(text: str, limit: int = _MAX_TEXT) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    """Only our own words, any value in them through ``slack_escape``."""
    return {"type": "mrkdwn", "text": text[:_MAX_TEXT]}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(text, _MAX_HEADER)}


def _section_plain(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _plain(text)}


def _button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": _plain(label, 75), "action_id": action_id, "value": value}
    if style is not None:
        button["style"] = style
    return button


def _open_button(ctx: dict[str, Any], w: dict[str, str]) -> dict[str, Any]:
    """A link button to the reader's own page; where a message has no reader of its own (the team channel), a
    button that asks kamwatch for a link for whoever clicks."""
    if ctx["url"] is None:
        return _button(w["open"], OPEN_ACTION, ctx["account_id"])
    return {"type": "button", "text": _plain(w["open"], 75), "action_id": OPEN_ACTION, "url": ctx["url"]}


def _actions(alert_id: int, ctx: dict[str, Any], *, actionable: bool = True) -> dict[str, Any]:
    w = ctx["w"]
    value = str(alert_id)
    elements = []
    if actionable:
        elements += [
            _button(w["ack"], ACK_ACTION, value, "primary"),
            _button(w["snooze"], SNOOZE_ACTION, value),
            _button(w["useful"], USEFUL_ACTION, value),
            _button(w["false_alarm"], FALSE_ALARM_ACTION, value),
        ]
    elements.append(_open_button(ctx, w))
    # action_ids repeat from alert to alert; Slack wants them unique per block, and block_id tells alerts apart.
    return {"type": "actions", "block_id": f"alert_{alert_id}", "elements": elements}


# --- email -------------------------------------------------------------------------------------------------


@cache
def _templates() -> jinja2.Environment:
    # PackageLoader finds the templates inside the installed package as well as in the source tree.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("alerts", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(message: AlertMessage, audience: Audience) -> Email:
    """Subject, plain-text and HTML bodies of a message about one account."""
    ctx = _context(message, audience)
    env = _templates()
    return Email(
        subject=ctx["subject"],
        text=env.get_template("alert.txt.j2").render(ctx),
        html=env.get_template("alert.html.j2").render(ctx),
    )


def render_digest_email(digest: Digest, audience: Audience) -> Email:
    ctx = _digest_context(digest, audience)
    env = _templates()
    return Email(
        subject=ctx["subject"],
        text=env.get_template("digest.txt.j2").render(ctx),
        html=env.get_template("digest.html.j2").render(ctx),
    )
