"""The portfolio and the ARR-at-risk metric in one reporting currency with the operator's rates: converted where
a rate is given, kept apart in their own currency where not, never two currencies added."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.api.views import portfolio_document
from services.platform.currency import ExchangeRates, RatesFileError, load_rates
from services.platform.metrics import Metrics
from services.platform.observability import arr_at_risk_by_tier

RATES = ExchangeRates("EUR", {"USD": Decimal("0.9"), "GBP": Decimal("1.2")}, "2026-11-30")


def group(kam: str, tier: str, level: str, currency: str, arr: str, accounts: int = 1) -> dict[str, Any]:
    return {
        "owner_kam_id": kam,
        "kam_name": kam.title(),
        "tier": tier,
        "level": level,
        "currency": currency,
        "accounts": accounts,
        "arr": Decimal(arr),
    }


def outcome(kam: str, tier: str, kind: str, currency: str, before: str, after: str | None) -> dict[str, Any]:
    return {
        "owner_kam_id": kam,
        "kam_name": kam.title(),
        "tier": tier,
        "outcome": kind,
        "currency": currency,
        "n": 1,
        "arr_before": Decimal(before),
        "arr_after": None if after is None else Decimal(after),
    }


GROUPS = [
    group("lea", "strategic", "critical", "EUR", "100000"),
    group("lea", "strategic", "high", "USD", "100000"),
    group("lea", "key", "low", "GBP", "50000"),
    group("tom", "key", "high", "JPY", "9000000"),
    group("tom", "standard", "medium", "EUR", "20000"),
]
OUTCOMES = [
    outcome("lea", "strategic", "churned", "USD", "100000", None),
    outcome("lea", "key", "expanded", "GBP", "50000", "60000"),
    outcome("tom", "key", "renewed", "EUR", "40000", "40000"),
]


def document() -> dict[str, Any]:
    return portfolio_document(GROUPS, OUTCOMES, date(2026, 1, 1), date(2026, 12, 1), RATES)


def test_the_portfolio_sums_in_the_reporting_currency_with_the_given_rates() -> None:
    reporting = document()["reporting"]

    # 100,000 EUR + 100,000 USD x 0.9 + 50,000 GBP x 1.2 + 20,000 EUR; the yen has no rate
    assert reporting["arr"] == {"currency": "EUR", "amount": "270000.0", "unconverted": {"JPY": "9000000"}}
    assert reporting["arr_at_risk"] == {"currency": "EUR", "amount": "190000.0", "unconverted": {"JPY": "9000000"}}
    # churned 90,000 EUR; NRR = (0 + 72,000 + 40,000) / (90,000 + 60,000 + 40,000)
    assert reporting["lost_arr"]["amount"] == "90000.0"
    assert reporting["net_revenue_retention"] == round(112000 / 190000, 4)


def test_per_kam_and_tier_in_the_reporting_currency_with_the_original_currencies_beside() -> None:
    found = document()
    lea = next(g for g in found["by_kam"] if g["key"] == "lea")
    tom = next(g for g in found["by_kam"] if g["key"] == "tom")
    strategic = next(g for g in found["by_tier"] if g["key"] == "strategic")

    assert lea["arr"] == {"EUR": "100000", "GBP": "50000", "USD": "100000"}  # original currencies kept
    assert lea["reporting"]["arr_at_risk"] == {"currency": "EUR", "amount": "190000.0", "unconverted": {}}
    assert lea["reporting"]["net_revenue_retention"] == round(72000 / 150000, 4)
    assert tom["reporting"]["arr_at_risk"] == {"currency": "EUR", "amount": "0", "unconverted": {"JPY": "9000000"}}
    assert tom["reporting"]["net_revenue_retention"] == 1.0
    assert strategic["reporting"]["lost_arr"] == {"currency": "EUR", "amount": "90000.0", "unconverted": {}}
    assert [g["key"] for g in found["by_tier"]] == ["strategic", "key", "standard"]


def test_without_rates_nothing_is_added_across_currencies() -> None:
    alone = portfolio_document(GROUPS, OUTCOMES, date(2026, 1, 1), date(2026, 12, 1), ExchangeRates("EUR"))

    assert alone["reporting"]["arr"] == {
        "currency": "EUR",
        "amount": "120000",
        "unconverted": {"GBP": "50000", "JPY": "9000000", "USD": "100000"},
    }


def exposed(metrics: Metrics) -> dict[tuple[str, str], float]:
    body, _ = metrics.exposition()
    found = {}
    for line in body.decode().splitlines():
        if line.startswith("kamwatch_arr_at_risk{"):
            labels, value = line.removeprefix("kamwatch_arr_at_risk{").split("} ")
            pairs = dict(part.split("=") for part in labels.split(","))
            found[(pairs["tier"].strip('"'), pairs["currency"].strip('"'))] = float(value)
    return found


def test_the_metric_is_converted_and_labelled_by_currency() -> None:
    rows = [SimpleNamespace(**g) for g in GROUPS]
    metrics = Metrics.create()
    metrics.set_portfolio({}, arr_at_risk_by_tier(rows, RATES), RATES.reporting)

    assert exposed(metrics) == {
        ("strategic", "EUR"): 190000.0,  # 100,000 EUR + 100,000 USD at 0.9
        ("key", "EUR"): 0.0,
        ("key", "JPY"): 9000000.0,  # no rate: its own series, not added to the euros
        ("standard", "EUR"): 0.0,
    }
    # a currency gone reads 0, not its last value
    metrics.set_portfolio({}, {}, "EUR")
    assert exposed(metrics)[("key", "JPY")] == 0.0


def test_the_rates_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "rates.yaml"
    good.write_text("as_of: '2026-11-30'\nrates:\n  USD: 0.9\n  EUR: 1\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rates:\n  usd: 0.9\n")
    negative = tmp_path / "negative.yaml"
    negative.write_text("rates:\n  USD: -1\n")

    loaded = load_rates("EUR", good)
    assert loaded.convert(Decimal(10), "USD") == Decimal("9.0")
    assert loaded.convert(Decimal(10), "EUR") == Decimal(10)
    assert loaded.convert(Decimal(10), "GBP") is None
    with pytest.raises(RatesFileError, match="usd"):
        load_rates("EUR", bad)
    with pytest.raises(RatesFileError, match=r"rates\.USD"):
        load_rates("EUR", negative)
    with pytest.raises(ValueError, match="ISO 4217"):
        load_rates("euro", None)
