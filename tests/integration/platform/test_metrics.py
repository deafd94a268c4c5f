"""services.platform.metrics: the registry, exposition, multiprocess mode and the standalone /metrics server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import get_args

import httpx
import pytest
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, values
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from schemas.vocabulary import LEVELS, TIERS, Level, Tier
from services.platform.metrics import (
    FASTSTREAM_METRIC_NAMES,
    METRIC_DOCS,
    METRIC_NAMES,
    METRIC_SPECS,
    MULTIPROC_ENV,
    Metrics,
    docs_table,
    serve_metrics,
)

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests choose the mode themselves, whatever the environment running them."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)


def samples(body: bytes) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(body.decode()) for sample in family.samples]


def value(body: bytes, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` whose labels include ``labels``, None when absent."""
    found = [s.value for s in samples(body) if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, f"{name}{labels} is ambiguous: {found}"
    return found[0] if found else None


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Names as written in PromQL: counters with _total, histograms by their base name."""
    names = set()
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_recorded_values_are_exposed_with_their_labels() -> None:
    metrics = Metrics.create()
    metrics.events_total.labels(channel="kamwatch.usage", type="kamwatch.usage.v1", result="accepted").inc(3)
    metrics.events_total.labels(channel="http", type="unknown", result="rejected").inc()
    metrics.ingest_batch_size.labels(ingress="kafka").observe(120)
    metrics.consumer_lag.labels(topic="kamwatch.usage", partition="3").set(42)
    metrics.http_requests_total.labels(route="/v1/accounts/{account_id}/health", method="GET", status="200").inc()
    metrics.set_portfolio({("critical", "strategic"): 2}, {("strategic", "EUR"): 960_000.0}, "EUR")

    body, content_type = metrics.exposition()

    assert content_type.startswith("text/plain")
    assert value(body, "kamwatch_events_total", channel="kamwatch.usage", result="accepted") == 3
    assert value(body, "kamwatch_events_total", channel="http", type="unknown", result="rejected") == 1
    assert value(body, "kamwatch_ingest_batch_size_count", ingress="kafka") == 1
    assert value(body, "kamwatch_ingest_batch_size_sum", ingress="kafka") == 120
    assert value(body, "kamwatch_ingest_batch_size_bucket", ingress="kafka", le="250.0") == 1
    assert value(body, "kamwatch_consumer_lag", topic="kamwatch.usage", partition="3") == 42
    assert value(body, "kamwatch_http_requests_total", route="/v1/accounts/{account_id}/health", status="200") == 1
    assert value(body, "kamwatch_accounts", level="critical", tier="strategic") == 2
    # Every other (level, tier) is published as 0, not left stale or missing.
    assert value(body, "kamwatch_accounts", level="low", tier="key") == 0
    assert value(body, "kamwatch_arr_at_risk", tier="strategic", currency="EUR") == 960_000
    assert value(body, "kamwatch_arr_at_risk", tier="standard", currency="EUR") == 0
    # Known bounded label values start at 0 so that increase() sees the first dead letter.
    assert value(body, "kamwatch_dead_letters_total", ingress="kafka") == 0
    assert value(body, "kamwatch_notifications_total", channel="slack", result="failed") == 0


def test_every_declared_metric_is_an_attribute_and_is_exported() -> None:
    metrics = Metrics.create()
    for spec in METRIC_SPECS:
        # Attribute name = metric name without the kamwatch_ prefix.
        metric = getattr(metrics, spec.name.removeprefix("kamwatch_"))
        child = metric.labels(*(f"x-{label}" for label in spec.labels)) if spec.labels else metric
        if spec.kind == "counter":
            child.inc()
        elif spec.kind == "gauge":
            child.set(1)
        else:
            child.observe(0.5)

    assert exposed_names(metrics.registry) == METRIC_NAMES
    sample_names = {sample.name for sample in samples(metrics.exposition()[0])}
    for spec in METRIC_SPECS:
        expected = {f"{spec.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        assert (expected if spec.kind == "histogram" else {spec.name}) <= sample_names, spec.name


def test_specs_are_documented_and_bounded() -> None:
    table = docs_table()
    for spec in METRIC_SPECS:
        assert spec.name.startswith("kamwatch_")
        assert METRIC_DOCS[spec.name]
        assert "\n" not in spec.doc
        assert f"`{spec.name}`" in table
        # Labels must stay bounded: nothing identifies an account or a person.
        assert not {"account_id", "account", "kam_id", "subject", "user_id"} & set(spec.labels)
    assert len(METRIC_SPECS) == len(METRIC_NAMES)


def test_label_vocabularies_match_the_domain() -> None:
    assert set(LEVELS) == set(get_args(Level))
    assert set(TIERS) == set(get_args(Tier))


def test_two_instances_on_two_registries_do_not_clash() -> None:
    first, second = Metrics.create(), Metrics.create(CollectorRegistry())
    first.sweep_accounts_total.inc(5)
    second.sweep_accounts_total.inc(2)

    assert value(first.exposition()[0], "kamwatch_sweep_accounts_total") == 5
    assert value(second.exposition()[0], "kamwatch_sweep_accounts_total") == 2
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics.create(first.registry)


def test_openmetrics_is_negotiated() -> None:
    metrics = Metrics.create()
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")

    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_faststream_metric_names_match_the_installed_middleware() -> None:
    metrics = Metrics.create()
    before = exposed_names(metrics.instrument_registry)

    KafkaPrometheusMiddleware(registry=metrics.instrument_registry, app_name="kamwatch-worker")

    assert exposed_names(metrics.instrument_registry) - before == FASTSTREAM_METRIC_NAMES


def test_multiprocess_values_are_collected_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "multiproc"
    directory.mkdir()
    child = textwrap.dedent(
        """
        import sys
        from services.platform.metrics import Metrics

        metrics = Metrics.create()
        assert metrics.multiprocess
        count, timestamp = int(sys.argv[1]), float(sys.argv[2])
        metrics.events_total.labels(channel="http", type="kamwatch.usage.v1", result="accepted").inc(count)
        metrics.last_event_timestamp_seconds.labels(ingress="http").set(timestamp)
        metrics.db_pool_size.set(10)
        metrics.http_request_seconds.labels(route="/v1/events", method="POST").observe(0.02)
        """
    )
    env = {**os.environ, MULTIPROC_ENV: str(directory), "PYTHONPATH": str(REPO)}
    for count, timestamp in ((3, 1_700_000_000.0), (4, 1_700_000_100.0)):
        subprocess.run([sys.executable, "-c", child, str(count), str(timestamp)], env=env, check=True, cwd=REPO)

    # prometheus_client picks its storage at import: emulate a process started with the variable set.
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    monkeypatch.setattr(values, "ValueClass", values.get_value_class())  # type: ignore[no-untyped-call]
    metrics = Metrics.create()
    body, _ = metrics.exposition()

    assert metrics.multiprocess
    assert value(body, "kamwatch_events_total", channel="http", result="accepted") == 7
    assert value(body, "kamwatch_last_event_timestamp_seconds", ingress="http") == 1_700_000_100
    assert value(body, "kamwatch_db_pool_size") == 20
    assert value(body, "kamwatch_http_request_seconds_count", route="/v1/events") == 2
    # The collecting registry holds only the MultiProcessCollector: no process-local duplicates.
    assert len([s for s in samples(body) if s.name == "kamwatch_db_pool_size"]) == 1

    metrics.db_pool_size.set(5)
    assert value(metrics.exposition()[0], "kamwatch_db_pool_size") == 25
    metrics.close()  # livesum: a process marked dead no longer counts
    assert value(metrics.exposition()[0], "kamwatch_db_pool_size") == 20


def test_multiprocess_variable_set_too_late_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)

    with pytest.raises(RuntimeError, match="before the process starts"):
        Metrics.create()


async def test_standalone_server_serves_metrics_and_probes() -> None:
    metrics = Metrics.create()
    metrics.outbox_pending.set(4)
    ready = True

    async def check() -> bool:
        return ready

    server = await serve_metrics(metrics.registry, "127.0.0.1", 0, ready=check)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            assert value(scraped.content, "kamwatch_outbox_pending") == 4
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            ready = False
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/nope")).status_code == 404
    finally:
        started = time.monotonic()
        await server.aclose()
        assert time.monotonic() - started < 2
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(server.url)
