"""Money across currencies: the reporting currency (``KAMWATCH_REPORTING_CURRENCY``) and the exchange rates the
operator supplies (``KAMWATCH_EXCHANGE_RATES_FILE``); no network service is asked.

Amounts are converted only with a known rate and never added across currencies otherwise: a sum in the
reporting currency keeps apart, in their own currency, what it could not convert.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.config_files import ConfigFileError, load_config_file
from services.platform.settings import Settings

_CODE = re.compile(r"[A-Z]{3}")


class RatesFileError(ConfigFileError):
    """An unreadable or invalid exchange rates file."""


def currency_code(value: str) -> str:
    """An ISO 4217 code (three capital letters), or ValueError."""
    if not _CODE.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (three capital letters)")
    return value


Rate = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class _RatesFile(BaseModel):
    """``rates``: what one unit of each currency is worth in the reporting currency."""

    model_config = ConfigDict(extra="forbid")

    rates: dict[str, Rate]
    as_of: str | None = Field(default=None, description="When the operator took these rates (shown, not used).")

    @field_validator("rates")
    @classmethod
    def _codes(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for code in rates:
            currency_code(code)
        return rates


@dataclass(frozen=True, slots=True)
class Converted:
    """A sum in the reporting currency, and what could not be converted (no rate), per original currency."""

    currency: str
    amount: Decimal
    unconverted: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExchangeRates:
    """Rates to the reporting currency (the reporting currency itself is worth 1)."""

    reporting: str
    rates: Mapping[str, Decimal] = field(default_factory=dict)
    as_of: str | None = None

    def rate(self, currency: str) -> Decimal | None:
        return Decimal(1) if currency == self.reporting else self.rates.get(currency)

    def convert(self, amount: Decimal, currency: str) -> Decimal | None:
        """``amount`` of ``currency`` in the reporting currency, None without a rate."""
        rate = self.rate(currency)
        return None if rate is None else amount * rate

    def total(self, sums: Mapping[str, Decimal] | Iterable[tuple[str, Decimal]]) -> Converted:
        """Amounts per currency summed in the reporting currency; those without a rate kept apart."""
        items = sums.items() if isinstance(sums, Mapping) else sums
        amount = Decimal(0)
        unconverted: dict[str, Decimal] = defaultdict(Decimal)
        for currency, value in items:
            converted = self.convert(Decimal(value), currency)
            if converted is None:
                unconverted[currency] += Decimal(value)
            else:
                amount += converted
        return Converted(self.reporting, amount, dict(sorted(unconverted.items())))


def load_rates(reporting: str, path: Path | None) -> ExchangeRates:
    """The reporting currency and the rates of ``path`` (YAML: ``rates: {USD: 0.92, GBP: 1.17}``, each the worth
    of one unit in the reporting currency; optional ``as_of``); no file: only the reporting currency converts."""
    currency_code(reporting)
    if path is None:
        return ExchangeRates(reporting)
    parsed = load_config_file(path, _RatesFile, what="exchange rates", error=RatesFileError)
    rates = {code: rate for code, rate in parsed.rates.items() if code != reporting}
    return ExchangeRates(reporting, rates, parsed.as_of)


def exchange_rates(settings: Settings) -> ExchangeRates:
    """The rates of the configured reporting currency and rates file (read at start: an invalid file stops it)."""
    return load_rates(settings.reporting_currency, settings.exchange_rates_file)
