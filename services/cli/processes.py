"""The long-running programs: ``migrate``, ``api``, ``worker``, ``evaluator``, ``alerter``, ``demo``."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer

from services.cli.common import configure_logging, console, opened, run
from services.platform.clock import utc_now
from services.platform.settings import Settings


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    @app.command()
    def migrate() -> None:
        """Create or upgrade the database schema (idempotent)."""

        async def main(settings: Settings) -> None:
            async with opened(settings):
                console.print("schema is up to date")

        run(main)

    @app.command()
    def api(
        host: Annotated[str | None, typer.Option(help="Bind address (default KAMWATCH_API_HOST).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default KAMWATCH_API_PORT).")] = None,
        workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port.")] = 1,
    ) -> None:
        """Serve the HTTP API (and pages, /metrics, /healthz, /readyz)."""
        import uvicorn

        settings = Settings()
        configure_logging(settings.log_level)

        async def migrate_first() -> None:
            async with opened(settings):
                pass

        asyncio.run(migrate_first())
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Each process counts in files there and any of them answers /metrics for all (set before they start).
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kamwatch-metrics-")
        uvicorn.run(
            "services.api.app:app_from_environment",
            factory=True,
            host=host or settings.api_host,
            port=port or settings.api_port,
            workers=workers,
            log_level=settings.log_level.lower(),
        )

    @app.command()
    def worker() -> None:
        """Consume the Kafka topics (KAMWATCH_KAFKA_BOOTSTRAP_SERVERS) into the pipeline until stopped: rescore,
        sweep on schedule, open and resolve alerts (queued for `kamwatch alerter`)."""
        from services.worker.process import run_worker
        from services.worker.topics import KafkaSetupError

        try:
            run(run_worker)
        except KafkaSetupError as error:
            typer.echo(f"kamwatch worker: {error}", err=True)
            raise typer.Exit(2) from None

    @app.command()
    def evaluator() -> None:
        """Rescore the accounts ingestion touched, sweep on schedule and open alerts, apart from the Kafka
        consumers (with KAMWATCH_WORKER_EVALUATES=false on the workers), until stopped."""
        from services.worker.process import run_evaluator

        run(run_evaluator)

    @app.command()
    def alerter() -> None:
        """Deliver queued notifications (Slack, email) with retries, and escalate overdue critical alerts."""
        from services.alerter.delivery import run_alerter

        run(lambda settings: run_alerter(settings, clock=clock))

    @app.command()
    def demo(
        reset: Annotated[bool, typer.Option(help="Start afresh: drop the demo data first.")] = False,
        duration: Annotated[
            float | None, typer.Option(help="Stop after SECONDS of live stream (default: Ctrl-C).")
        ] = None,
        port: Annotated[int, typer.Option(help="API port (0 picks a free one).")] = 8000,
    ) -> None:
        """The whole system on the embedded database: a simulated portfolio, the API, a live stream."""
        from services.demo.run import PortUnavailable, run_demo

        try:
            run(lambda settings: run_demo(settings, reset=reset, duration=duration, port=port, clock=clock))
        except PortUnavailable as error:
            typer.echo(f"kamwatch demo: {error}", err=True)
            raise typer.Exit(1) from None
