"""SIGTERM stops an asyncio program by cancelling it at an await, never by an exception raised mid-bytecode."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.platform.database import cancelled_by_sigterm, exit_on_sigterm


def test_sigterm_cancels_the_program_at_its_next_await_then_exits_143() -> None:
    steps: list[str] = []

    async def program() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        # Plain bytecode after the signal: a handler raising here would cut this loop short.
        total = sum(range(2_000_000))
        steps.append(f"computed {total > 0}")
        try:
            await asyncio.sleep(30)
        finally:
            steps.append("cleaned up")

    saved = signal.getsignal(signal.SIGTERM)
    try:
        exit_on_sigterm()
        with pytest.raises(SystemExit) as exited:
            asyncio.run(cancelled_by_sigterm(program()))
        assert exited.value.code == 128 + signal.SIGTERM
        assert steps == ["computed True", "cleaned up"]
        # after the loop, SIGTERM exits cleanly again (atexit hooks run) rather than killing outright
        assert callable(signal.getsignal(signal.SIGTERM))
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_a_program_that_ends_keeps_its_result_and_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def cancelled() -> None:
        current = asyncio.current_task()
        assert current is not None
        current.cancel()
        await asyncio.sleep(1)

    saved = signal.getsignal(signal.SIGTERM)
    try:
        assert asyncio.run(cancelled_by_sigterm(answer())) == 42
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(cancelled_by_sigterm(cancelled()))
    finally:
        signal.signal(signal.SIGTERM, saved)
