"""Words and numbers as a person reads them, in English and French: levels, severities, tiers, numbers,
money and plurals."""

from __future__ import annotations

from decimal import Decimal

from schemas.vocabulary import Level, Locale, Severity, Tier

LEVEL_WORDS: dict[Level, tuple[str, str]] = {
    "low": ("low", "faible"),
    "medium": ("medium", "moyen"),
    "high": ("high", "élevé"),
    "critical": ("critical", "critique"),
}

LEVEL_TITLES: dict[Level, tuple[str, str]] = {
    "low": ("Low risk", "Risque faible"),
    "medium": ("Medium risk", "Risque moyen"),
    "high": ("High risk", "Risque élevé"),
    "critical": ("Critical risk", "Risque critique"),
}

SEVERITY_WORDS: dict[Severity, tuple[str, str]] = {
    "info": ("Info", "Info"),
    "warning": ("Warning", "Avertissement"),
    "critical": ("Critical", "Critique"),
}

TIER_WORDS: dict[Tier, tuple[str, str]] = {
    "strategic": ("strategic", "stratégique"),
    "key": ("key", "clé"),
    "standard": ("standard", "standard"),
}

# French groups thousands with a narrow no-break space (CLDR) so "480 000" never wraps.
_FR_GROUP = "\u202f"


def pick(words: tuple[str, str], locale: Locale) -> str:
    return words[0] if locale == "en" else words[1]


def number(value: float, locale: Locale) -> str:
    """One decimal at most: ``72``, ``72.5`` / ``72,5``."""
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",") if locale == "fr" else text


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """Whole units: ``EUR 480,000`` / ``480 000 EUR``."""
    whole = f"{amount.quantize(Decimal(1)):,}"
    return f"{whole.replace(',', _FR_GROUP)}\u00a0{currency}" if locale == "fr" else f"{currency} {whole}"


def plural(n: int, one: str, many: str, locale: Locale) -> str:
    """``1 alert``, ``2 alerts``; French keeps the singular for 0 and 1 (``0 alerte``)."""
    singular = n == 1 if locale == "en" else n < 2
    return f"{n} {one if singular else many}"
