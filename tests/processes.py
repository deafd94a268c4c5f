"""Running a kamwatch service as a real process for a test: its own metrics port, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.platform.settings import Settings

KAMWATCH = Path(sys.executable).with_name("kamwatch")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Service:
    process: asyncio.subprocess.Process
    client: httpx.AsyncClient
    """On the service's metrics port (/metrics, /healthz, /readyz)."""

    async def wait_until_serving(self) -> None:
        for _ in range(300):
            try:
                await self.client.get("/healthz")
                return
            except httpx.TransportError:
                assert self.process.returncode is None, "the service exited"
                await asyncio.sleep(0.1)
        raise AssertionError("the service never answered")


@asynccontextmanager
async def kamwatch_service(settings: Settings, command: str) -> AsyncIterator[Service]:
    """``kamwatch COMMAND`` on the test's database, with /metrics on a free port of 127.0.0.1."""
    port = free_port()
    env = {
        **os.environ,
        "KAMWATCH_DATABASE_URL": settings.database_url or "",
        "KAMWATCH_DATA_DIR": str(settings.data_dir),
        "KAMWATCH_METRICS_HOST": "127.0.0.1",
        "KAMWATCH_METRICS_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        str(KAMWATCH), command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            yield Service(process, client)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=20)
