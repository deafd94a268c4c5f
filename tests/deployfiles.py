"""Reading deploy/: dashboards, rule files and the PromQL inside them, and which metrics the code exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from services.platform.metrics import FASTSTREAM_METRIC_NAMES, METRIC_NAMES, Metrics

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
COMPOSE = DEPLOY / "compose.yaml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
KAMWATCH_SUBCOMMANDS = frozenset({"migrate", "worker", "alerter", "api"})

# Grafana's macros are not PromQL: give them a value Prometheus accepts.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

_METRIC_IDENTIFIER = re.compile(r"\b(?:kamwatch|faststream)_[a-z_]+\b")
# Quoted strings are label values or regexes, never metric names.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SUFFIXES_BY_KIND = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": (),
}


def load_dashboard(path: Path) -> dict[str, Any]:
    board = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(board, dict)
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(path: Path) -> list[str]:
    return [target["expr"] for panel in panels(load_dashboard(path)) for target in panel.get("targets", [])]


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_expressions() -> list[str]:
    return [str(rule["expr"]) for rule in load_rules()]


def metric_identifiers(expr: str) -> set[str]:
    """kamwatch_* and faststream_* identifiers in a PromQL expression (sample names, suffixes included)."""
    return set(_METRIC_IDENTIFIER.findall(_QUOTED.sub('""', expr)))


def exported_kinds() -> dict[str, str]:
    """Metric name (as written in PromQL: counters with _total) -> type, from real registries.

    Built from the code itself: Metrics plus FastStream's Kafka middleware on the same registry, as the worker
    does, so that the names cannot drift from what a scrape returns.
    """
    metrics = Metrics.create()
    KafkaPrometheusMiddleware(registry=metrics.instrument_registry, app_name="kamwatch-worker")
    kinds = {}
    for family in metrics.instrument_registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        kinds[name] = family.type
    assert set(kinds) == METRIC_NAMES | FASTSTREAM_METRIC_NAMES
    return kinds


def exported_metric(identifier: str, kinds: dict[str, str]) -> str | None:
    """The exported metric a sample name belongs to (kamwatch_x_bucket -> kamwatch_x), None if unknown."""
    if identifier in kinds:
        return identifier
    for name, kind in kinds.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        if any(identifier == family + suffix for suffix in _SUFFIXES_BY_KIND[kind]):
            return name
    return None


def with_macros_replaced(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


_COMPOSE_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: ``${NAME}``, ``${NAME:-default}`` (unset or empty), ``${NAME-default}`` (unset),
    ``${NAME:?error}``, ``$$`` for a dollar."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and not value:
            raise KeyError(f"{name}: {arg}")
        return value or ""

    return _COMPOSE_VARIABLE.sub(substitute, value)


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """The environment compose gives ``service``'s container, the operator's ``variables`` (their shell or
    ``.env``) interpolated."""
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    environment: dict[str, Any] = document["services"][service].get("environment", {})
    return {name: interpolate(str(value), variables) for name, value in environment.items()}
