"""One catalogue for everything a KAM reads (pages, Slack, email), and the locale-aware wording of numbers,
money, dates and relative days (Babel, CLDR data).

Messages are written in English in the code and templates, marked ``translate(locale, "…")`` /
``translate_plural(locale, "…", "…", n)`` in Python and ``{% trans %}`` / ``_()`` in Jinja2 templates (with
``translations(locale)`` installed); their French lives in
``schemas/locales/fr/LC_MESSAGES/kamwatch.po`` (``make messages`` adds new ones; a unit test fails when one
has no French). Placeholders are ``str.format`` fields (``{name}``), filled after translation.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale as BabelLocale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.numbers import format_percent as babel_format_percent
from babel.support import Translations

from schemas.vocabulary import LOCALES, Locale

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "kamwatch"


def catalogue_path(locale: Locale) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: Locale) -> stdlib_gettext.NullTranslations:
    """The catalogue of ``locale``, compiled in memory from its .po file (English is the source: no file)."""
    path = catalogue_path(locale)
    if not path.exists():
        return stdlib_gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


def translate(locale: Locale, message: str, **fields: Any) -> str:
    """``message`` in ``locale``, its ``{fields}`` filled."""
    text = translations(locale).gettext(message)
    return text.format(**fields) if fields else text


def translate_plural(locale: Locale, singular: str, plural: str, n: int, **fields: Any) -> str:
    """The singular or plural form for ``n`` by the rules of ``locale`` (French: 0 and 1 are singular), with
    ``{n}`` and the other ``{fields}`` filled."""
    return translations(locale).ngettext(singular, plural, n).format(n=n, **fields)


def _cldr(locale: Locale) -> BabelLocale:
    return BabelLocale.parse(locale)


def format_number(value: float | Decimal, locale: Locale, *, digits: int = 1, signed: bool = False) -> str:
    """``86.2`` / ``86,2``; at most ``digits`` decimals, none shown when zero; ``signed`` adds + to a rise."""
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    if signed:
        pattern = f"+{pattern};-{pattern}"
    return format_decimal(value, format=pattern, locale=_cldr(locale))


def format_money(amount: Decimal | float, currency: str, locale: Locale, *, cents: bool = False) -> str:
    """``€12,500`` / ``12 500 €`` (``cents``: ``12 500,00 €``), the currency always shown."""
    cldr = _cldr(locale)
    pattern = cldr.currency_formats["standard"].pattern
    if not cents:
        pattern = pattern.replace(".00", "")
    return format_currency(amount, currency, format=pattern, locale=cldr, currency_digits=False)


def format_percent(value: float | Decimal, locale: Locale) -> str:
    """A share as a whole percentage: ``46%`` / ``46 %`` (``value`` 0.46)."""
    return babel_format_percent(value, locale=_cldr(locale))


def format_day(day: date, locale: Locale, *, style: str = "medium") -> str:
    """``Nov 11, 2026`` / ``11 nov. 2026`` (``style``: short, medium, long, full)."""
    return babel_format_date(day, format=style, locale=_cldr(locale))


def format_moment(moment: datetime, locale: Locale, timezone: str, *, style: str = "medium") -> str:
    """A date and time in the reader's time zone and language."""
    return babel_format_datetime(moment, format=style, tzinfo=ZoneInfo(timezone), locale=_cldr(locale))


def colon(locale: Locale) -> str:
    """A colon as the language writes it: French puts a no-break space before it."""
    return "\u00a0:" if locale == "fr" else ":"


def relative_days(days: int, locale: Locale) -> str:
    """A whole number of days from today as a person says it: ``today``, ``yesterday``, ``3 days ago``,
    ``tomorrow``, ``in 3 days`` (never ``0 days``)."""
    if days == 0:
        return translate(locale, "today")
    if days == -1:
        return translate(locale, "yesterday")
    if days == 1:
        return translate(locale, "tomorrow")
    if days < 0:
        return translate_plural(locale, "{n} day ago", "{n} days ago", -days)
    return translate_plural(locale, "in {n} day", "in {n} days", days)


__all__ = [
    "LOCALES",
    "colon",
    "format_day",
    "format_moment",
    "format_money",
    "format_number",
    "format_percent",
    "relative_days",
    "translate",
    "translate_plural",
    "translations",
]
