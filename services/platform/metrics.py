"""The one Prometheus metrics definition of kamwatch, built on a registry passed in (never the global one).

Every metric is declared once in ``METRIC_SPECS`` (name, type, labels, one-line meaning); ``Metrics`` builds
them on a ``CollectorRegistry`` and the README table is generated from the same specs (``docs_table``).
Label values are bounded sets (topics, types, rules, tiers…): never an account id.

Multiprocess mode (several API worker processes): when ``PROMETHEUS_MULTIPROC_DIR`` is set, prometheus_client
writes values to files in that directory and ``Metrics.registry`` collects them from every process through a
``MultiProcessCollector``. prometheus_client chooses its storage when it is first imported, so the variable
must be set before the process starts (compose and Kubernetes set it in the container environment).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any, Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder, make_wsgi_app

from schemas.vocabulary import LEVELS, TIERS

MetricKind = Literal["counter", "gauge", "histogram"]
GaugeMode = Literal[
    "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Bounded label values known here, pre-initialised at 0 so that rate()/increase() see the first increment.
INGRESSES = ("kafka", "http", "replay")
NOTIFICATION_CHANNELS = ("slack", "email", "team_channel")
NOTIFICATION_RESULTS = ("sent", "retried", "failed", "undeliverable")
UNSENT_STATUSES = ("failed", "undeliverable")
RESCORE_TRIGGERS = ("event", "sweep")
QUARANTINE_STAGES = ("scoring", "alerting")
POOL_STATES = ("in_use", "idle")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_SIZE_BUCKETS = (1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
# Freshness spans seconds (live stream) to days (late CRM exports, replays).
_FRESHNESS_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)
_SWEEP_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its exposed name (as written in PromQL), type, labels and one-line meaning."""

    name: str
    kind: MetricKind
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = _LATENCY_BUCKETS
    # How gauges from several processes combine in multiprocess mode (ignored otherwise).
    multiprocess_mode: GaugeMode = "all"


METRIC_SPECS: tuple[MetricSpec, ...] = (
    # ingestion
    MetricSpec(
        "kamwatch_events_total",
        "counter",
        "Events ingested, by channel (Kafka topic, http or replay), CloudEvents type (or unknown) and result "
        "(accepted, duplicate, rejected).",
        ("channel", "type", "result"),
    ),
    MetricSpec(
        "kamwatch_dead_letters_total",
        "counter",
        "Records dead-lettered (unparseable or invalid), by ingress (kafka, http, replay).",
        ("ingress",),
    ),
    MetricSpec(
        "kamwatch_ingest_batch_size",
        "histogram",
        "Records per ingested batch (one database transaction), by ingress.",
        ("ingress",),
        _BATCH_SIZE_BUCKETS,
    ),
    MetricSpec(
        "kamwatch_ingest_batch_seconds",
        "histogram",
        "Time to process one batch, parse to commit, by ingress.",
        ("ingress",),
    ),
    MetricSpec(
        "kamwatch_consumer_lag",
        "gauge",
        "Kafka records not yet stored, by topic and partition: the end offset minus the next offset to store, "
        "measured every KAMWATCH_KAFKA_LAG_INTERVAL_S.",
        ("topic", "partition"),
        multiprocess_mode="livemax",
    ),
    MetricSpec(
        "kamwatch_dead_letters_unpublished",
        "gauge",
        "Kafka dead letters recorded but not yet published to the DLQ topic.",
        multiprocess_mode="livemax",
    ),
    MetricSpec(
        "kamwatch_event_freshness_seconds",
        "histogram",
        "Commit time minus event time of accepted events, by ingress.",
        ("ingress",),
        _FRESHNESS_BUCKETS,
    ),
    MetricSpec(
        "kamwatch_last_event_timestamp_seconds",
        "gauge",
        "Unix time of the last batch commit with accepted events, by ingress.",
        ("ingress",),
        multiprocess_mode="max",
    ),
    # health engine
    MetricSpec(
        "kamwatch_rescore_seconds",
        "histogram",
        "Time to rescore one drained part of the rescore queue (accounts touched by one or more batches).",
    ),
    MetricSpec(
        "kamwatch_rescored_accounts_total",
        "counter",
        "Accounts rescored, by trigger (event or sweep).",
        ("trigger",),
    ),
    MetricSpec(
        "kamwatch_sweep_seconds",
        "histogram",
        "Duration of one time-driven sweep (shard) run.",
        buckets=_SWEEP_BUCKETS,
    ),
    MetricSpec("kamwatch_sweep_accounts_total", "counter", "Accounts evaluated by time-driven sweeps."),
    MetricSpec(
        "kamwatch_sweep_last_success_timestamp_seconds",
        "gauge",
        "Unix time at which the last sweep completed successfully.",
        multiprocess_mode="max",
    ),
    MetricSpec(
        "kamwatch_accounts",
        "gauge",
        "Accounts by current risk level (low, medium, high, critical) and tier (strategic, key, standard).",
        ("level", "tier"),
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_arr_at_risk",
        "gauge",
        "Annual recurring revenue of the accounts at high or critical risk, by tier and currency: in the reporting "
        "currency (KAMWATCH_REPORTING_CURRENCY) where a rate converts it, else in its own; never two currencies "
        "added.",
        ("tier", "currency"),
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_quarantined_accounts",
        "gauge",
        "Accounts set aside because evaluating them failed (`kamwatch quarantine list`); readiness says degraded.",
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_quarantines_total",
        "counter",
        "Accounts set aside (or failing again) by stage (scoring, alerting).",
        ("stage",),
    ),
    # alerting
    MetricSpec("kamwatch_alerts_opened_total", "counter", "Alerts opened, by rule and severity.", ("rule", "severity")),
    MetricSpec(
        "kamwatch_alerts_escalated_total",
        "counter",
        "Alerts escalated (to the manager or team channel), by rule and severity.",
        ("rule", "severity"),
    ),
    MetricSpec(
        "kamwatch_alerts_resolved_total", "counter", "Alerts resolved, by rule and severity.", ("rule", "severity")
    ),
    MetricSpec(
        "kamwatch_notifications_total",
        "counter",
        "Notification delivery attempts, by channel (slack, email, team_channel) and result (sent, retried, failed "
        "after the outage window, undeliverable: no server configured for the channel or not one valid address).",
        ("channel", "result"),
    ),
    MetricSpec(
        "kamwatch_outbox_unsent",
        "gauge",
        "Notifications given up on, by status (failed, undeliverable), until `kamwatch notifications retry` "
        "re-sends them.",
        ("status",),
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_outbox_pending",
        "gauge",
        "Notifications waiting in the outbox.",
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_outbox_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending notification in the outbox (0 when empty).",
        multiprocess_mode="livemostrecent",
    ),
    MetricSpec(
        "kamwatch_alert_feedback_precision",
        "gauge",
        "Share of alerts KAMs marked useful among those with feedback, by rule.",
        ("rule",),
        multiprocess_mode="livemostrecent",
    ),
    # API
    MetricSpec(
        "kamwatch_http_requests_total",
        "counter",
        "HTTP requests answered, by route template, method and status code.",
        ("route", "method", "status"),
    ),
    MetricSpec(
        "kamwatch_http_request_seconds",
        "histogram",
        "HTTP request latency, by route template and method.",
        ("route", "method"),
    ),
    # database pool
    MetricSpec(
        "kamwatch_db_pool_connections",
        "gauge",
        "Database pool connections by state (in_use, idle), summed over processes.",
        ("state",),
        multiprocess_mode="livesum",
    ),
    MetricSpec(
        "kamwatch_db_pool_size",
        "gauge",
        "Configured database pool size, summed over processes.",
        multiprocess_mode="livesum",
    ),
)

METRIC_DOCS: dict[str, str] = {spec.name: spec.doc for spec in METRIC_SPECS}
METRIC_NAMES: frozenset[str] = frozenset(METRIC_DOCS)

# What faststream.kafka.prometheus.KafkaPrometheusMiddleware exports with its default "faststream" prefix
# (faststream/prometheus/container.py, faststream 0.7): labels app_name, broker, handler or destination,
# plus status or exception_type on some.
FASTSTREAM_METRIC_NAMES: frozenset[str] = frozenset(
    {
        "faststream_received_messages_total",
        "faststream_received_messages_size_bytes",
        "faststream_received_messages_in_process",
        "faststream_received_processed_messages_total",
        "faststream_received_processed_messages_duration_seconds",
        "faststream_received_processed_messages_exceptions_total",
        "faststream_published_messages_total",
        "faststream_published_messages_duration_seconds",
        "faststream_published_messages_exceptions_total",
    }
)

_SPECS_BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRIC_SPECS}


def multiprocess_dir() -> str | None:
    """The prometheus multiprocess directory, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every kamwatch metric, registered on one registry; attributes are the prometheus_client objects.

    ``registry`` is what to expose (``exposition``, ``serve_metrics``). ``instrument_registry`` is where the
    metric objects live: hand it to ``KafkaPrometheusMiddleware(registry=...)``. Both are the same registry
    except in multiprocess mode, where ``registry`` only holds the ``MultiProcessCollector``.
    """

    def __init__(self, registry: CollectorRegistry, *, multiprocess_mode: bool = False) -> None:
        """Prefer ``Metrics.create``; this registers the metrics on ``registry`` as given."""
        self.multiprocess = multiprocess_mode
        self.registry = registry
        # In multiprocess mode values go to the mmap files: a private registry then only catches duplicate names.
        self.instrument_registry = CollectorRegistry() if multiprocess_mode else registry

        # ingestion
        self.events_total = self._counter("kamwatch_events_total")
        self.dead_letters_total = self._counter("kamwatch_dead_letters_total")
        self.ingest_batch_size = self._histogram("kamwatch_ingest_batch_size")
        self.ingest_batch_seconds = self._histogram("kamwatch_ingest_batch_seconds")
        self.consumer_lag = self._gauge("kamwatch_consumer_lag")
        self.dead_letters_unpublished = self._gauge("kamwatch_dead_letters_unpublished")
        self.event_freshness_seconds = self._histogram("kamwatch_event_freshness_seconds")
        self.last_event_timestamp_seconds = self._gauge("kamwatch_last_event_timestamp_seconds")
        # health engine
        self.rescore_seconds = self._histogram("kamwatch_rescore_seconds")
        self.rescored_accounts_total = self._counter("kamwatch_rescored_accounts_total")
        self.sweep_seconds = self._histogram("kamwatch_sweep_seconds")
        self.sweep_accounts_total = self._counter("kamwatch_sweep_accounts_total")
        self.sweep_last_success_timestamp_seconds = self._gauge("kamwatch_sweep_last_success_timestamp_seconds")
        self.accounts = self._gauge("kamwatch_accounts")
        self.arr_at_risk = self._gauge("kamwatch_arr_at_risk")
        self._arr_series: set[tuple[str, str]] = set()
        self.quarantined_accounts = self._gauge("kamwatch_quarantined_accounts")
        self.quarantines_total = self._counter("kamwatch_quarantines_total")
        # alerting
        self.alerts_opened_total = self._counter("kamwatch_alerts_opened_total")
        self.alerts_escalated_total = self._counter("kamwatch_alerts_escalated_total")
        self.alerts_resolved_total = self._counter("kamwatch_alerts_resolved_total")
        self.notifications_total = self._counter("kamwatch_notifications_total")
        self.outbox_pending = self._gauge("kamwatch_outbox_pending")
        self.outbox_unsent = self._gauge("kamwatch_outbox_unsent")
        self.outbox_oldest_pending_age_seconds = self._gauge("kamwatch_outbox_oldest_pending_age_seconds")
        self.alert_feedback_precision = self._gauge("kamwatch_alert_feedback_precision")
        # API
        self.http_requests_total = self._counter("kamwatch_http_requests_total")
        self.http_request_seconds = self._histogram("kamwatch_http_request_seconds")
        # database pool
        self.db_pool_connections = self._gauge("kamwatch_db_pool_connections")
        self.db_pool_size = self._gauge("kamwatch_db_pool_size")

        self._initialise_known_labels()

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Metrics on ``registry`` (None: a new one); in multiprocess mode it collects every process's files."""
        directory = multiprocess_dir()
        if directory is None:
            return cls(registry if registry is not None else CollectorRegistry(), multiprocess_mode=False)
        if values.ValueClass is values.MutexValue:
            raise RuntimeError(
                f"{MULTIPROC_ENV} was set after prometheus_client was imported: set it in the environment "
                "before the process starts"
            )
        collecting = registry if registry is not None else CollectorRegistry()
        multiprocess.MultiProcessCollector(collecting, path=directory)  # type: ignore[no-untyped-call]
        return cls(collecting, multiprocess_mode=True)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The /metrics body and its content type, negotiated from the request's Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def set_portfolio(
        self,
        accounts: Mapping[tuple[str, str], int],
        arr_at_risk: Mapping[tuple[str, str], float],
        reporting_currency: str | None,
    ) -> None:
        """Set the portfolio gauges: account counts by (level, tier) and ARR at risk by (tier, currency); missing
        ones are 0.

        Setting every known combination (instead of clearing) leaves no gap a scrape could fall into; a currency
        seen before and gone now reads 0 rather than its last value. ``reporting_currency`` None (before the
        first reading): no ARR series yet.
        """
        for level in LEVELS:
            for tier in TIERS:
                self.accounts.labels(level=level, tier=tier).set(accounts.get((level, tier), 0))
        for (level_name, tier_name), count in accounts.items():
            if level_name not in LEVELS or tier_name not in TIERS:
                self.accounts.labels(level=level_name, tier=tier_name).set(count)
        if reporting_currency is not None:
            self._arr_series |= {(tier, reporting_currency) for tier in TIERS}
        self._arr_series |= set(arr_at_risk)
        for tier_name, currency in self._arr_series:
            self.arr_at_risk.labels(tier=tier_name, currency=currency).set(arr_at_risk.get((tier_name, currency), 0.0))

    def close(self) -> None:
        """At process exit in multiprocess mode: drop this process's live gauges (a no-op otherwise)."""
        directory = multiprocess_dir()
        if self.multiprocess and directory is not None:
            multiprocess.mark_process_dead(os.getpid(), path=directory)  # type: ignore[no-untyped-call]

    def _spec(self, name: str, kind: MetricKind) -> MetricSpec:
        spec = _SPECS_BY_NAME[name]
        if spec.kind != kind:
            raise TypeError(f"{name} is a {spec.kind}, not a {kind}")
        return spec

    def _counter(self, name: str) -> Counter:
        spec = self._spec(name, "counter")
        return Counter(spec.name, spec.doc, spec.labels, registry=self.instrument_registry)

    def _gauge(self, name: str) -> Gauge:
        spec = self._spec(name, "gauge")
        return Gauge(
            spec.name,
            spec.doc,
            spec.labels,
            registry=self.instrument_registry,
            multiprocess_mode=spec.multiprocess_mode,
        )

    def _histogram(self, name: str) -> Histogram:
        spec = self._spec(name, "histogram")
        return Histogram(spec.name, spec.doc, spec.labels, registry=self.instrument_registry, buckets=spec.buckets)

    def _initialise_known_labels(self) -> None:
        for ingress in INGRESSES:
            self.dead_letters_total.labels(ingress=ingress)
        for trigger in RESCORE_TRIGGERS:
            self.rescored_accounts_total.labels(trigger=trigger)
        for stage in QUARANTINE_STAGES:
            self.quarantines_total.labels(stage=stage)
        for channel in NOTIFICATION_CHANNELS:
            for result in NOTIFICATION_RESULTS:
                self.notifications_total.labels(channel=channel, result=result)
        if not self.multiprocess:
            # Gauges in multiprocess "mostrecent"/"livesum" modes would publish these zeros from every process;
            # there the owning code sets them.
            self.set_portfolio({}, {}, None)
            for state in POOL_STATES:
                self.db_pool_connections.labels(state=state)


def docs_table() -> str:
    """The README metrics table (markdown), generated from ``METRIC_SPECS``."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for spec in METRIC_SPECS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "—"
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.doc} |")
    return "\n".join(rows)


# --- standalone /metrics server (worker, alerter) ---------------------------------------------------------

ReadinessCheck = Callable[[], Coroutine[Any, Any, bool | str]]
"""Whether the service is ready; a string means ready, with that said (e.g. ``degraded: 2 accounts quarantined``)."""
_READINESS_TIMEOUT_S = 5.0


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # A slow scrape must not block a probe; handler threads must not keep the process alive.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes and probes every few seconds would flood the logs."""


@dataclass
class MetricsServer:
    """A running /metrics server: its bound address and how to stop it."""

    host: str
    port: int
    _server: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (blocks up to the server's poll interval)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    async def aclose(self) -> None:
        """``close`` without blocking the event loop."""
        await asyncio.to_thread(self.close)


def _metrics_app(
    registry: CollectorRegistry, loop: asyncio.AbstractEventLoop, ready: ReadinessCheck | None
) -> WSGIApplication:
    prometheus_app: WSGIApplication = make_wsgi_app(registry)

    def answer(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def is_ready() -> bool | str:
        if ready is None:
            return True
        try:
            # The check runs on the service's event loop: a wedged loop means not ready.
            return asyncio.run_coroutine_threadsafe(ready(), loop).result(timeout=_READINESS_TIMEOUT_S)
        except Exception:
            return False

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return prometheus_app(environ, start_response)
        if path == "/healthz":
            return answer(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            state = is_ready()
            if isinstance(state, str):
                return answer(start_response, "200 OK", state.encode() + b"\n")
            if state:
                return answer(start_response, "200 OK", b"ready\n")
            return answer(start_response, "503 Service Unavailable", b"not ready\n")
        return answer(start_response, "404 Not Found", b"not found: /metrics, /healthz, /readyz\n")

    return app


async def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, *, ready: ReadinessCheck | None = None
) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` (``ready()`` awaited on this loop) from a thread.

    A thread, not the event loop, answers scrapes so that they still work while the loop is busy; port 0
    picks a free port (see ``MetricsServer.port``). Stop it with ``close()`` or ``await aclose()``.
    """
    app = _metrics_app(registry, asyncio.get_running_loop(), ready)
    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.name = f"metrics-server-{server.server_port}"
    thread.start()
    return MetricsServer(host=host, port=server.server_port, _server=server, _thread=thread)
