"""Geometry of the inline SVG charts on the pages (no JavaScript, no chart library)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    path: str
    last_x: float
    last_y: float
    points: int


def line_chart(series: Sequence[tuple[datetime, float]], width: int, height: int, pad: int = 3) -> Chart | None:
    """A polyline of risk (0-100, up is worse) over time; None without at least one point."""
    if not series:
        return None
    start, end = series[0][0].timestamp(), series[-1][0].timestamp()
    span = max(end - start, 1.0)
    coords = [
        (pad + (moment.timestamp() - start) / span * (width - 2 * pad), pad + (1 - value / 100) * (height - 2 * pad))
        for moment, value in series
    ]
    if len(coords) == 1:
        coords = [(pad, coords[0][1]), (width - pad, coords[0][1])]
    path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    return Chart(width, height, path, coords[-1][0], coords[-1][1], len(series))


def gauge_arc(risk: float, radius: float = 40.0) -> tuple[str, str]:
    """Background and value arcs of a half-circle gauge centred at (50, 50): the value arc ends at ``risk``."""
    share = min(max(risk, 0.0), 100.0) / 100

    def point(fraction: float) -> str:
        angle = math.pi * (1 - fraction)
        return f"{50 + radius * math.cos(angle):.1f},{50 - radius * math.sin(angle):.1f}"

    background = f"M{point(0)} A{radius},{radius} 0 0 1 {point(1)}"
    value = f"M{point(0)} A{radius},{radius} 0 0 1 {point(share)}"
    return background, value
