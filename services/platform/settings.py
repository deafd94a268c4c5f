"""The one settings object: every knob comes from ``KAMWATCH_*`` environment variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import platformdirs
from limits import parse
from pydantic import Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOPICS: dict[str, str] = {
    "usage": "kamwatch.usage",
    "support_tickets": "kamwatch.support_tickets",
    "payments": "kamwatch.payments",
    "contacts": "kamwatch.contacts",
    "engagement": "kamwatch.engagement",
    "accounts": "kamwatch.accounts",
    "outcomes": "kamwatch.outcomes",
}


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("kamwatch"))


class Settings(BaseSettings):
    """Runtime configuration, read once at the service edge and passed down."""

    # An empty variable counts as unset: compose's ``${VAR:-}`` and templated manifests leave them empty.
    model_config = SettingsConfigDict(env_prefix="KAMWATCH_", env_file=None, extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL 14+ URL. Unset: an embedded pgserver PostgreSQL in data_dir.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Embedded database and state.")
    db_pool_size: PositiveInt = 10

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_group_id: str = "kamwatch-worker"
    kafka_topics: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TOPICS))
    kafka_dlq_topic: str = "kamwatch.dlq"
    kafka_max_records: PositiveInt = 2000
    kafka_batch_timeout_ms: PositiveInt = 200
    kafka_retry_backoff_s: float = Field(
        default=1.0, ge=0, description="Pause before a batch that failed (and is rewound) is read again."
    )
    kafka_create_topics: bool = Field(
        default=True,
        description="At start, create missing topics (events and DLQ) with the cluster's default partitions and "
        "replication; false: a missing topic stops the worker at start, named.",
    )
    kafka_dlq_max_bytes: PositiveInt = Field(
        default=1_000_000,
        description="Largest dead letter (value and headers) published whole to the DLQ topic; a larger one goes "
        "out truncated, with a reference to its full bytes in the database.",
    )
    kafka_dlq_lease_s: float = Field(
        default=120.0,
        ge=4,
        description="How long a worker holds the dead letters it is publishing: a killed worker's are published by "
        "another after this (checked against the DLQ topic first).",
    )
    kafka_lag_interval_s: float = Field(
        default=5.0, gt=0, description="How often consumer lag is measured from the brokers' end offsets."
    )
    kafka_stall_s: float = Field(
        default=60.0,
        gt=0,
        description="/readyz of a worker answers 503 once its partitions have had lag and no batch stored for "
        "this long, or a fetch error and no batch since, within this long.",
    )

    ingest_batch_size: PositiveInt = 5000
    event_time_earliest: date = Field(
        default=date(1970, 1, 1), description="Events dated before this day (UTC) are rejected (field `time`)."
    )
    event_time_max_future_s: float = Field(
        default=86400.0,
        ge=0,
        description="Events dated more than this many seconds after the ingesting clock are rejected (`time`).",
    )
    raw_event_retention_months: PositiveInt = 24

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    http_max_body_bytes: PositiveInt = 16 * 1024 * 1024
    http_max_events: PositiveInt = Field(
        default=5000, description="Most events in one POST /v1/events (413 beyond): bounds a request's memory."
    )
    http_ingest_concurrency: PositiveInt = Field(
        default=2, description="POST /v1/events handled at once per API process; others wait before their body is read."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of the API as KAMs reach it (links in alerts)."
    )
    cors_origins: list[str] = Field(default_factory=list, description="CRM origins allowed to call the API.")
    frame_ancestors: list[str] = Field(
        default_factory=lambda: ["'self'"], description="CSP frame-ancestors: CRM origins that may embed widgets."
    )
    widget_token_secret: SecretStr | None = Field(
        default=None, description="Key signing widget tokens. Unset: one is generated and kept in the database."
    )
    auth_failure_limit: str = Field(
        default="10/minute",
        description="Failed authentications allowed per client address (limits notation, e.g. 10/minute, "
        "100/hour); past it, 429 until the window moves on.",
    )
    session_ttl_s: PositiveInt = Field(default=12 * 3600, description="Lifetime of a page session (/login).")

    scoring_config: Path | None = Field(default=None, description="Scoring YAML. Unset: the shipped default.")
    worker_evaluates: bool = Field(
        default=True,
        description="Workers rescore touched accounts and sweep; false: `kamwatch evaluator` processes do it.",
    )
    evaluator_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU niceness of `kamwatch evaluator`: on a shared host, scoring yields the CPU to consuming.",
    )
    rescore_settle_s: float = Field(
        default=3.0,
        ge=0,
        description="Under load, the live rescorer drains once no batch has touched accounts for this long (a "
        "burst settled); idle, it drains at once.",
    )
    rescore_max_delay_s: float = Field(
        default=30.0, gt=0, description="... or at the latest this long after the oldest waiting batch."
    )
    rescore_pace: float = Field(
        default=9.0,
        ge=0,
        description="After each drain the live rescorer rests this many times as long as the drain took (scoring "
        "takes at most 1/(1+pace) of the time).",
    )
    sweep_interval_s: PositiveInt = Field(default=900, description="Time-driven evaluation period (worker).")
    sweep_shards: PositiveInt = Field(default=16, description="Shards a sweep is split in, shared by workers.")
    alert_rules: Path | None = Field(default=None, description="Alert rules YAML. Unset: the shipped default.")
    playbook: Path | None = Field(
        default=None, description="Playbook YAML (next step per driver). Unset: the shipped default."
    )
    notification_link_ttl_days: PositiveInt = Field(
        default=14, description="Days the account links in a notification stay valid (signed, bound to its reader)."
    )

    # alert delivery (kamwatch alerter) and Slack interactions
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token for chat.postMessage (KAM DMs, team channel); preferred to the webhook."
    )
    slack_api_base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL (tests).")
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Incoming webhook: every Slack message goes to its channel (when no bot token)."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Verifies POST /v1/slack/interactions. Unset: interactions are refused."
    )
    slack_team_channel: str | None = Field(
        default=None, description="Team channel for strategic critical alerts; overrides the rules' policy."
    )
    slack_team_channel_locale: Literal["en", "fr"] | None = Field(
        default=None, description="Language of the team channel's messages; overrides the rules' policy (en)."
    )
    slack_team_channel_timezone: str | None = Field(
        default=None, description="Time zone of the team channel's messages; overrides the rules' policy (UTC)."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server. Unset: the alerter's emails are undeliverable."
    )
    smtp_port: PositiveInt = 587
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (usually port 465).")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "kamwatch <kamwatch@localhost>"
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    alerter_poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest pause when the outbox has nothing due (a notification due at once wakes the alerter).",
    )
    alerter_retry_window_s: float = Field(
        default=86400.0, gt=0, description="Outage window: a notification is retried this long before it is failed."
    )
    alerter_backoff_base_s: float = Field(default=30.0, gt=0, description="First retry delay, doubled each time.")
    alerter_backoff_cap_s: float = Field(
        default=900.0, gt=0, description="Longest retry delay: at most this long from a server's recovery to sending."
    )
    alerter_concurrency: PositiveInt = Field(default=4, description="Notifications sent at once by one alerter.")
    alerter_escalation_interval_s: float = Field(default=300.0, gt=0, description="Period of the escalation check.")
    reporting_currency: str = Field(
        default="EUR", pattern=r"^[A-Z]{3}$", description="Currency of portfolio sums and the ARR metrics (ISO 4217)."
    )
    exchange_rates_file: Path | None = Field(
        default=None,
        description="YAML `rates: {USD: 0.92}`: one unit of each currency in the reporting currency. Unset: "
        "amounts in other currencies are shown apart, never added.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log records written (INFO and above carry no personal data)."
    )
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9108, description="Port of /metrics for the worker and the alerter.")

    @field_validator("auth_failure_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate limit such as 10/minute: {error}") from None
        return value

    @property
    def configured_widget_secret(self) -> str | None:
        return self.widget_token_secret.get_secret_value() if self.widget_token_secret is not None else None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"
