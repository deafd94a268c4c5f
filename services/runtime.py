"""Process-wide runtime tuning applied once by each entry point."""

from __future__ import annotations

import gc
import os


def tune_gc() -> None:
    """Keep the cyclic GC off the hot path.

    Batches hold thousands of small validated models at once; with CPython's default thresholds the
    collector rescans them several times per batch (measured: parsing 3x slower). Long-lived objects
    created at start-up are frozen out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def yield_cpu(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness`` (0 leaves it), so that the host's other work goes first."""
    if niceness:
        os.nice(niceness)
