"""Pure rendering of notifications in the recipient's locale: Slack Block Kit payloads and multipart emails.

The words are chosen here, in Python; the Jinja2 templates (``alerts/templates``, HTML autoescaped) only lay
them out, so a template never holds a sentence that would need translating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2

from alerts.model import AccountSnapshot
from alerts.rule_labels import rule_label
from alerts.rules import top_drivers
from schemas.vocabulary import Driver, Locale, Severity
from schemas.wording import LEVEL_WORDS, SEVERITY_WORDS, TIER_WORDS, money, number, pick, plural

MessageKind = Literal["immediate", "escalation", "reminder", "resolved"]

ACK_ACTION = "alert_ack"
SNOOZE_ACTION = "alert_snooze_7d"
OPEN_ACTION = "alert_open"

# Slack refuses more than 50 blocks and header text over 150 characters.
_MAX_BLOCKS = 50
_MAX_HEADER = 150
_EMOJI: dict[Severity, str] = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
_RESOLVED_EMOJI = "✅"
_NEW_EMOJI = "🆕"

_WORDS: dict[str, tuple[str, str]] = {
    "account": ("Account", "Compte"),
    "arr": ("ARR", "ARR"),
    "tier": ("Tier", "Catégorie"),
    "risk": ("Risk", "Risque"),
    "renewal": ("Renewal", "Renouvellement"),
    "drivers": ("Top drivers", "Principaux facteurs"),
    "also": ("Also on this account", "Également sur ce compte"),
    "since_last": ("Since the last message", "Depuis le dernier message"),
    "new": ("New", "Nouvelle alerte"),
    "resolved": ("Resolved", "Résolue"),
    "ack": ("Acknowledge", "Acquitter"),
    "snooze": ("Snooze 7 days", "Reporter de 7 jours"),
    "open": ("Open", "Ouvrir"),
    "open_account": ("Open the account", "Ouvrir le compte"),
    "fired": ("since", "depuis le"),
    "footer": (
        "You receive this because you own the account in kamwatch.",
        "Vous recevez ce message car vous êtes responsable de ce compte dans kamwatch.",
    ),
    "digest_footer": (
        "Acknowledge or snooze each alert from Slack or from the account page.",
        "Acquittez ou reportez chaque alerte depuis Slack ou depuis la page du compte.",
    ),
}

_KIND_WORDS: dict[MessageKind, tuple[str, str]] = {
    "immediate": ("Alert", "Alerte"),
    "escalation": ("Escalation", "Escalade"),
    "reminder": ("Reminder", "Rappel"),
    "resolved": ("Resolved", "Résolue"),
}


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One alert as a message shows it (``title_*`` from the rule, as stored with the alert)."""

    alert_id: int
    dedup_key: str
    rule: str
    severity: Severity
    title_en: str
    title_fr: str
    fired_at: datetime


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A message about one account: ``alerts`` first (the buttons act on them), then those folded into them.

    ``new_since_last`` / ``resolved_since_last`` say what changed since the previous message to this recipient
    about this account; ``kam_name`` is the KAM an escalation is about.
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


# --- shared wording ----------------------------------------------------------------------------------------


def account_url(base_url: str, account_id: str) -> str:
    return f"{base_url.rstrip('/')}/widget/accounts/{quote(account_id, safe='')}"


def risk_line(account: AccountSnapshot, locale: Locale) -> str:
    """``72/100, high (▲ +18 in 7 days)`` / ``72/100, élevé (▲ +18 en 7 jours)``."""
    text = f"{number(account.risk, locale)}/100, {pick(LEVEL_WORDS[account.level], locale)}"
    if account.risk_7d_ago is None:
        return text
    delta = round(account.risk - account.risk_7d_ago, 1)
    if abs(delta) < 0.5:
        return text + (" (stable over 7 days)" if locale == "en" else " (stable sur 7 jours)")
    arrow, sign = ("▲", "+") if delta > 0 else ("▼", "−")
    span = "in 7 days" if locale == "en" else "en 7 jours"
    return f"{text} ({arrow} {sign}{number(abs(delta), locale)} {span})"


def driver_lines(account: AccountSnapshot, locale: Locale) -> list[str]:
    """The top 3 drivers in words."""
    return [_driver_text(d, locale) for d in top_drivers(account.drivers)]


def _driver_text(driver: Driver, locale: Locale) -> str:
    return driver.message_en if locale == "en" else driver.message_fr


def _title(item: AlertItem, locale: Locale) -> str:
    return item.title_en if locale == "en" else item.title_fr


def _colon(locale: Locale) -> str:
    # French puts a (no-break) space before a colon.
    return ":" if locale == "en" else "\u00a0:"


def _when(moment: datetime, locale: Locale, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M") if locale == "en" else local.strftime("%d/%m/%Y %H:%M")


def _day(day: date, locale: Locale) -> str:
    return day.isoformat() if locale == "en" else day.strftime("%d/%m/%Y")


def _intro(message: AlertMessage, locale: Locale) -> str | None:
    who = message.kam_name or ("The account owner" if locale == "en" else "Le responsable du compte")
    if message.kind == "escalation":
        if locale == "en":
            return f"{who} has not acknowledged this critical alert in time."
        return f"{who} n'a pas acquitté cette alerte critique dans le délai prévu."
    if message.kind == "reminder":
        if locale == "en":
            return "This critical alert is still not acknowledged; your manager has been informed."
        return "Cette alerte critique n'est toujours pas acquittée\u00a0; votre responsable en a été informé."
    if message.kind == "resolved":
        if locale == "en":
            return "The condition behind this alert has cleared."
        return "La situation à l'origine de cette alerte est rétablie."
    return None


def _headline(message: AlertMessage, locale: Locale) -> str:
    main = message.alerts[0] if message.alerts else None
    title = _title(main, locale) if main is not None else pick(_WORDS["account"], locale)
    return f"{message.account.name} — {title}"


def _severity_word(message: AlertMessage, locale: Locale) -> str:
    if message.kind != "immediate" or not message.alerts:
        return pick(_KIND_WORDS[message.kind], locale)
    return pick(SEVERITY_WORDS[message.alerts[0].severity], locale)


def _emoji(message: AlertMessage) -> str:
    if message.kind == "resolved":
        return _RESOLVED_EMOJI
    return _EMOJI[message.alerts[0].severity] if message.alerts else _EMOJI["info"]


def _facts(account: AccountSnapshot, locale: Locale) -> list[tuple[str, str]]:
    facts = [
        (pick(_WORDS["account"], locale), account.name),
        (pick(_WORDS["arr"], locale), money(account.arr, account.currency, locale)),
        (pick(_WORDS["tier"], locale), pick(TIER_WORDS[account.tier], locale)),
        (pick(_WORDS["risk"], locale), risk_line(account, locale)),
    ]
    if account.renewal_date is not None:
        facts.append((pick(_WORDS["renewal"], locale), _day(account.renewal_date, locale)))
    return facts


def _item(item: AlertItem, locale: Locale, timezone: str) -> dict[str, Any]:
    return {
        "alert_id": item.alert_id,
        "emoji": _EMOJI[item.severity],
        "severity": pick(SEVERITY_WORDS[item.severity], locale),
        "rule": rule_label(item.rule, locale),
        "title": _title(item, locale),
        "since": f"{pick(_WORDS['fired'], locale)} {_when(item.fired_at, locale, timezone)}",
    }


def _context(message: AlertMessage, locale: Locale, timezone: str, base_url: str) -> dict[str, Any]:
    kind_word = pick(_KIND_WORDS[message.kind], locale)
    return {
        "lang": locale,
        "w": {key: pick(words, locale) for key, words in _WORDS.items()},
        "kind": message.kind,
        "headline": _headline(message, locale),
        "subject": f"[kamwatch] {_severity_word(message, locale)}{_colon(locale)} {_headline(message, locale)}",
        "intro": _intro(message, locale),
        "kind_word": kind_word,
        "facts": _facts(message.account, locale),
        "drivers": driver_lines(message.account, locale),
        "alerts": [_item(a, locale, timezone) for a in message.alerts],
        "folded": [_item(a, locale, timezone) for a in message.folded],
        "new": [_item(a, locale, timezone) for a in message.new_since_last],
        "resolved": [_item(a, locale, timezone) for a in message.resolved_since_last],
        "url": account_url(base_url, message.account.account_id),
        "actionable": message.kind != "resolved",
        "colon": _colon(locale),
    }


# --- Slack -------------------------------------------------------------------------------------------------


def render_slack(message: AlertMessage, *, locale: Locale, timezone: str, base_url: str) -> dict[str, Any]:
    """A ``chat.postMessage``-ready payload (``text`` fallback + ``blocks``), without the ``channel``."""
    ctx = _context(message, locale, timezone, base_url)
    w = ctx["w"]
    blocks: list[dict[str, Any]] = [_header(f"{_emoji(message)} {ctx['headline']}")]
    if ctx["intro"]:
        blocks.append(_section(f"*{ctx['kind_word']}*{ctx['colon']} {ctx['intro']}"))
    blocks.append({"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}") for k, v in ctx["facts"]]})
    if ctx["drivers"]:
        blocks.append(_section(f"*{w['drivers']}*\n" + "\n".join(f"• {line}" for line in ctx["drivers"])))
    for item in ctx["alerts"]:
        blocks.append(_section(f"{item['emoji']} *{item['title']}*\n_{item['rule']} · {item['since']}_"))
        blocks.append(_actions(item["alert_id"], ctx["url"], w, ctx["actionable"]))
    if ctx["folded"]:
        lines = "\n".join(f"• {i['emoji']} {i['title']}" for i in ctx["folded"])
        blocks.append(_section(f"*{w['also']}*\n{lines}"))
    changes = [f"{_NEW_EMOJI} {w['new']}{ctx['colon']} {i['title']}" for i in ctx["new"]]
    changes += [f"{_RESOLVED_EMOJI} {w['resolved']}{ctx['colon']} {i['title']}" for i in ctx["resolved"]]
    if changes:
        blocks.append(_section(f"*{w['since_last']}*\n" + "\n".join(changes)))
    if not message.alerts:
        blocks.append({"type": "actions", "elements": [_open_button(ctx["url"], w)]})
    return {"text": ctx["subject"], "blocks": blocks[:_MAX_BLOCKS]}


def render_digest_slack(digest: Digest, *, locale: Locale, timezone: str, base_url: str) -> dict[str, Any]:
    """One Slack message for the whole digest; alerts beyond Slack's block limit are counted, not shown."""
    ctx = _digest_context(digest, locale, timezone, base_url)
    w = ctx["w"]
    blocks: list[dict[str, Any]] = [_header(ctx["headline"])]
    shown = 0
    # Keep room for the closing "n more" line.
    room = _MAX_BLOCKS - 2
    for section in ctx["sections"]:
        if len(blocks) + 3 > room:
            break
        blocks.append({"type": "divider"})
        facts = " · ".join(v for _, v in section["facts"][1:])
        blocks.append(_section(f"*<{section['url']}|{section['name']}>*\n{facts}"))
        for item in section["alerts"]:
            if len(blocks) + 2 > room:
                break
            blocks.append(_section(f"{item['emoji']} *{item['title']}*\n_{item['rule']} · {item['since']}_"))
            blocks.append(_actions(item["alert_id"], section["url"], w, True))
            shown += 1
        resolved = [f"{_RESOLVED_EMOJI} {w['resolved']}{ctx['colon']} {i['title']}" for i in section["resolved"]]
        if resolved and len(blocks) + 1 <= room:
            blocks.append(_section("\n".join(resolved)))
    hidden = ctx["alert_count"] - shown
    if hidden > 0:
        more = f"… and {hidden} more" if locale == "en" else f"… et {hidden} de plus"
        blocks.append({"type": "context", "elements": [_mrkdwn(more)]})
    return {"text": ctx["subject"], "blocks": blocks}


def _header(text: str) -> dict[str, Any]:
    if len(text) > _MAX_HEADER:
        text = text[: _MAX_HEADER - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def _open_button(url: str, w: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": w["open"], "emoji": True},
        "action_id": OPEN_ACTION,
        "url": url,
    }


def _actions(alert_id: int, url: str, w: dict[str, str], actionable: bool) -> dict[str, Any]:
    elements = []
    if actionable:
        value = str(alert_id)
        elements += [_button(w["ack"], ACK_ACTION, value, "primary"), _button(w["snooze"], SNOOZE_ACTION, value)]
    elements.append(_open_button(url, w))
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


def render_email(message: AlertMessage, *, locale: Locale, timezone: str, base_url: str) -> Email:
    """Subject, plain-text and HTML bodies of a message about one account."""
    ctx = _context(message, locale, timezone, base_url)
    env = _templates()
    return Email(
        subject=ctx["subject"],
        text=env.get_template("alert.txt.j2").render(ctx),
        html=env.get_template("alert.html.j2").render(ctx),
    )


def render_digest_email(digest: Digest, *, locale: Locale, timezone: str, base_url: str) -> Email:
    ctx = _digest_context(digest, locale, timezone, base_url)
    env = _templates()
    return Email(
        subject=ctx["subject"],
        text=env.get_template("digest.txt.j2").render(ctx),
        html=env.get_template("digest.html.j2").render(ctx),
    )


def _digest_context(digest: Digest, locale: Locale, timezone: str, base_url: str) -> dict[str, Any]:
    alerts = sum(len(s.alerts) for s in digest.sections)
    accounts = len(digest.sections)
    colon = _colon(locale)
    if locale == "en":
        headline = f"Daily digest, {_day(digest.day, 'en')}{colon} {plural(alerts, 'alert', 'alerts', 'en')} on "
        headline += plural(accounts, "account", "accounts", "en")
    else:
        headline = f"Résumé du {_day(digest.day, 'fr')}{colon} {plural(alerts, 'alerte', 'alertes', 'fr')} sur "
        headline += plural(accounts, "compte", "comptes", "fr")
    return {
        "lang": locale,
        "w": {key: pick(words, locale) for key, words in _WORDS.items()},
        "headline": headline,
        "subject": f"[kamwatch] {headline}",
        "colon": colon,
        "alert_count": alerts,
        "sections": [
            {
                "name": s.account.name,
                "url": account_url(base_url, s.account.account_id),
                "facts": _facts(s.account, locale),
                "drivers": driver_lines(s.account, locale),
                "alerts": [_item(a, locale, timezone) for a in s.alerts],
                "resolved": [_item(a, locale, timezone) for a in s.resolved],
            }
            for s in digest.sections
        ],
    }
