"""Running a kamwatch service as a real process for a test: its own metrics port, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import SecretStr

from services.platform.settings import Settings

KAMWATCH = Path(sys.executable).with_name("kamwatch")
T = TypeVar("T")


async def until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout_s: float, what: str, every_s: float = 0.1
) -> T:
    """Poll ``probe`` until ``done`` holds of its value (returned); fail after ``timeout_s`` with the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout_s:.0f} s")
        await asyncio.sleep(every_s)


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

    async def readiness(self) -> int:
        """The status of /readyz (0: no answer); a probe may take seconds (the service asks its dependencies)."""
        try:
            return (await self.client.get("/readyz", timeout=10)).status_code
        except httpx.TransportError:
            return 0


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``KAMWATCH_*`` variables of every setting given explicitly (dicts and lists as JSON)."""
    env = {"KAMWATCH_DATA_DIR": str(settings.data_dir)}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"KAMWATCH_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env


@asynccontextmanager
async def kamwatch_service(
    settings: Settings, command: str, *, env: Mapping[str, str] | None = None, stderr: Path | None = None
) -> AsyncIterator[Service]:
    """``kamwatch COMMAND`` with ``settings`` (those given explicitly) and ``env``, /metrics on a free port of
    127.0.0.1; its standard error goes to ``stderr`` when given (otherwise to a file of its own, never to a pipe
    nobody reads: a full pipe would block the service). A service still running 20 s after SIGTERM fails the
    test with its stack (faulthandler on SIGABRT) and the end of its standard error."""
    port = free_port()
    environment = {
        **os.environ,
        **settings_env(settings),
        "KAMWATCH_METRICS_HOST": "127.0.0.1",
        "KAMWATCH_METRICS_PORT": str(port),
        "PYTHONFAULTHANDLER": "1",
        **(env or {}),
    }
    with contextlib.ExitStack() as files:
        if stderr is None:
            stderr = Path(files.enter_context(tempfile.TemporaryDirectory(prefix="kamwatch-service-"))) / "stderr"
        errors = files.enter_context(stderr.open("ab"))
        process = await asyncio.create_subprocess_exec(
            str(KAMWATCH), command, env=environment, stdout=asyncio.subprocess.DEVNULL, stderr=errors
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
                yield Service(process, client)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.send_signal(signal.SIGABRT)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), timeout=10)
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                tail = stderr.read_bytes()[-6000:].decode(errors="replace")
                raise AssertionError(
                    f"kamwatch {command} still ran 20 s after SIGTERM; its standard error ends:\n{tail}"
                ) from None
