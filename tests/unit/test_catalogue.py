"""The one catalogue: every string marked for translation in the code and templates has its French, with the
same placeholders; plurals follow French rules; numbers, money and days are worded by locale."""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from schemas.i18n import (
    catalogue_path,
    format_day,
    format_money,
    format_number,
    relative_days,
    translate,
    translate_plural,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "ingestion", "health_engine", "alerts", "services")
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/templates/**.j2", "jinja2"),
    ("**.py", "python"),
]
KEYWORDS = {"translate": (2,), "translate_plural": (2, 3), "_": None, "gettext": None, "ngettext": (1, 2)}


def marked() -> dict[str | tuple[str, ...], str]:
    """Every msgid marked in our packages, with where it is."""
    found: dict[str | tuple[str, ...], str] = {}
    for package in PACKAGES:
        options = {"**/templates/**": {"extensions": "jinja2.ext.i18n"}}
        for filename, lineno, message, _comments, _context in extract_from_dir(
            REPO / package, METHODS, options, keywords=KEYWORDS
        ):
            msgid = message if isinstance(message, str) else tuple(message)
            found.setdefault(msgid, f"{package}/{filename}:{lineno}")
    return found


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_marked_string_has_its_french_with_the_same_placeholders() -> None:
    with catalogue_path("fr").open("rb") as source:
        catalog = read_po(source)
    missing, mismatched = [], []
    for msgid, where in marked().items():
        entry = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        translated = None if entry is None or entry.fuzzy else entry.string
        forms = [translated] if isinstance(translated, str) else list(translated or ())
        if not forms or not all(forms):
            missing.append((msgid, where))
            continue
        sources = [msgid] if isinstance(msgid, str) else list(msgid)
        expected = set().union(*(fields(s) for s in sources))
        if any(fields(form) - expected for form in forms):
            mismatched.append((msgid, where))
    assert missing == [], "no French yet (run `make messages`, then translate in kamwatch.po)"
    assert mismatched == [], "a French placeholder the English does not have"


def test_the_catalogue_is_found_by_the_extraction() -> None:
    # the helpers of this module are marked like any other string
    assert "today" in marked()


def test_french_plurals_keep_the_singular_for_zero_and_one() -> None:
    assert translate_plural("fr", "{n} day ago", "{n} days ago", 1) == "il y a 1 jour"
    assert translate_plural("fr", "{n} day ago", "{n} days ago", 2) == "il y a 2 jours"
    assert translate_plural("en", "{n} day ago", "{n} days ago", 1) == "1 day ago"
    assert translate("en", "today") == "today"
    assert translate("fr", "today") == "aujourd'hui"


def test_relative_days_never_say_zero_days() -> None:
    words = {locale: [relative_days(d, locale) for d in (-3, -1, 0, 1, 2)] for locale in ("en", "fr")}
    assert words["en"] == ["3 days ago", "yesterday", "today", "tomorrow", "in 2 days"]
    assert words["fr"] == ["il y a 3 jours", "hier", "aujourd'hui", "demain", "dans 2 jours"]


def test_numbers_money_and_days_by_locale() -> None:
    assert format_number(86.2, "fr") == "86,2"
    assert format_number(12.1, "en", signed=True) == "+12.1"
    assert format_money(Decimal("12500"), "EUR", "en") == "€12,500"
    assert format_money(Decimal("12500"), "EUR", "fr").replace("\u202f", " ").replace("\xa0", " ") == "12 500 €"
    assert format_money(Decimal("12500.5"), "EUR", "fr", cents=True).replace("\u202f", " ").replace("\xa0", " ") == (
        "12 500,50 €"
    )
    assert format_day(date(2026, 11, 11), "fr") == "11 nov. 2026"
