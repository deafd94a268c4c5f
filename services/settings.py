"""The one settings object: every knob comes from ``KAMWATCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, PositiveInt
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

    model_config = SettingsConfigDict(env_prefix="KAMWATCH_", env_file=None, extra="ignore")

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
    kafka_retry_backoff_s: float = 1.0

    ingest_batch_size: PositiveInt = 5000
    raw_event_retention_months: PositiveInt = 24

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    http_max_body_bytes: PositiveInt = 16 * 1024 * 1024

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"
