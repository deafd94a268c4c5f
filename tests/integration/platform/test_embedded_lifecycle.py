"""The embedded PostgreSQL stops when the last kamwatch process using it exits, however it exits: SIGTERM runs
the clean-up; a process killed outright leaves it running, and the next kamwatch command finds the orphan, joins
it and stops it when it exits in turn. Real processes on a fresh data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import KAMWATCH, free_port

pytestmark = pytest.mark.processes


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAMWATCH_DATABASE_URL"}
    return {**env, "KAMWATCH_DATA_DIR": str(data_dir)}


def api(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(KAMWATCH), "api", "--port", str(port)],
        env=environment(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "kamwatch api exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("kamwatch api never became ready")


def postgres_pid(data_dir: Path) -> int | None:
    marker = data_dir / "pgdata" / "postmaster.pid"
    try:
        return int(marker.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_stopped(pid: int, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.1)
    return False


def test_sigterm_stops_the_embedded_postgresql_with_its_last_user(tmp_path: Path) -> None:
    process, _ = api(tmp_path)
    server = postgres_pid(tmp_path)
    assert server is not None
    assert running(server)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0 or process.returncode == 128 + signal.SIGTERM

    assert wait_stopped(server)


def test_an_orphan_left_by_a_killed_process_is_joined_and_stopped_by_the_next_command(tmp_path: Path) -> None:
    process, _ = api(tmp_path)
    server = postgres_pid(tmp_path)
    assert server is not None
    process.kill()  # SIGKILL: no clean-up at all
    process.wait(timeout=30)
    assert running(server)  # the orphan

    migrate = subprocess.run(
        [str(KAMWATCH), "migrate"], env=environment(tmp_path), capture_output=True, timeout=120, check=False
    )

    assert migrate.returncode == 0, migrate.stderr.decode()
    assert b"exited without leaving" in migrate.stderr
    assert wait_stopped(server)
