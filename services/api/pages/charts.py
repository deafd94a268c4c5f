"""Geometry of the inline SVG charts on the pages (no JavaScript, no chart library): plain numbers and path
strings the templates draw; the words on axes and markers come in already worded."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


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


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A horizontal stripe of the plot: the values of one level."""

    level: str
    top: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class Marker:
    """Something that happened at a moment: a vertical tick on the time axis with a short label (tooltip)."""

    x: float
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    path: str
    css: str


@dataclass(frozen=True, slots=True)
class TimeChart:
    """A plot box (``left``..``right`` by ``top``..``bottom``) in a ``width`` × ``height`` view box."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()
    bars: tuple[tuple[float, float, float, float], ...] = field(default=())
    last: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """Maps moments and values onto a plot box."""

    start: datetime
    end: datetime
    low: float
    high: float
    left: float
    top: float
    right: float
    bottom: float

    def x(self, moment: datetime) -> float:
        span = max((self.end - self.start).total_seconds(), 1.0)
        share = (moment - self.start).total_seconds() / span
        return self.left + min(max(share, 0.0), 1.0) * (self.right - self.left)

    def y(self, value: float) -> float:
        share = (value - self.low) / max(self.high - self.low, 1e-9)
        return self.bottom - min(max(share, 0.0), 1.0) * (self.bottom - self.top)

    def path(self, points: Sequence[tuple[datetime, float]]) -> str:
        coords = [(self.x(moment), self.y(value)) for moment, value in points]
        if len(coords) == 1:
            coords = [(self.left, coords[0][1]), coords[0]]
        return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords)


def date_ticks(frame: Frame, label: Callable[[date], str], *, most: int = 6) -> tuple[Tick, ...]:
    """Ticks on whole days, evenly spread, at most ``most`` of them, labelled by ``label``."""
    first, last = frame.start.date(), frame.end.date()
    days = max((last - first).days, 1)
    step = max(1, math.ceil(days / max(most - 1, 1)))
    for nice in (1, 2, 7, 14, 30, 61, 91, 182, 365):
        if nice >= step:
            step = nice
            break
    ticks = []
    day = first + timedelta(days=1) if step > 1 else first
    if step >= 30:
        day = date(day.year, day.month, 1) + timedelta(days=32)
        day = date(day.year, day.month, 1)
        if (day - first).days > step:
            day = date(first.year, first.month, 1)
    while day <= last:
        moment = datetime.combine(day, datetime.min.time(), tzinfo=frame.start.tzinfo)
        if moment >= frame.start:
            ticks.append(Tick(frame.x(moment), label(day)))
        if step >= 30:
            months = max(1, round(step / 30.4))
            month = day.month - 1 + months
            day = date(day.year + month // 12, month % 12 + 1, 1)
        else:
            day += timedelta(days=step)
    return tuple(ticks)


def risk_chart(
    points: Sequence[tuple[datetime, float]],
    cut_offs: Sequence[tuple[str, float, str]],
    *,
    start: datetime,
    end: datetime,
    day_label: Callable[[date], str],
    markers: Sequence[tuple[datetime, str, str]] = (),
    components: Sequence[tuple[str, Sequence[tuple[datetime, float]], str]] = (),
    width: int = 640,
    height: int = 260,
) -> TimeChart | None:
    """Risk over time (0-100) on the level bands (``cut_offs``: level, lowest risk, its label; ascending), with
    dated ticks, markers (moment, kind, label) and optionally component lines; None without a point."""
    if not points:
        return None
    frame = Frame(start, end, 0.0, 100.0, 48.0, 10.0, width - 10.0, height - 30.0)
    bands = []
    bounds = [*cut_offs[1:], ("", 100.0, "")]
    for (level, low, label), (_, high, _) in zip(cut_offs, bounds, strict=True):
        top = frame.y(high)
        bands.append(Band(level, top, frame.y(low) - top, label))
    series = [Series(name, frame.path(values), css) for name, values, css in components if values]
    series.append(Series("risk", frame.path(points), "risk"))
    last = points[-1]
    return TimeChart(
        width,
        height,
        frame.left,
        frame.top,
        frame.right,
        frame.bottom,
        tuple(series),
        date_ticks(frame, day_label),
        tuple(Tick(frame.y(v), str(v)) for v in (0, 25, 50, 75, 100)),
        tuple(bands),
        tuple(Marker(frame.x(moment), kind, label) for moment, kind, label in markers if start <= moment <= end),
        last=(frame.x(last[0]), frame.y(last[1])),
    )


def usage_chart(
    days: Sequence[tuple[date, float]],
    baseline: Sequence[tuple[date, float]],
    *,
    day_label: Callable[[date], str],
    value_label: Callable[[float], str],
    width: int = 640,
    height: int = 180,
) -> TimeChart | None:
    """Daily usage as bars against its baseline (a line); None without a day."""
    if not days:
        return None
    first, last = days[0][0], days[-1][0]
    tz = None
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    top_value = max([v for _, v in days] + [v for _, v in baseline] + [1.0])
    ceiling = _nice_ceiling(top_value)
    frame = Frame(start, end, 0.0, ceiling, 56.0, 10.0, width - 10.0, height - 30.0)
    slot = (frame.right - frame.left) / max((last - first).days + 1, 1)
    bars = tuple(
        (
            frame.x(datetime.combine(day, datetime.min.time())) + slot * 0.1,
            frame.y(value),
            slot * 0.8,
            frame.bottom - frame.y(value),
        )
        for day, value in days
    )
    line = [(datetime.combine(day, datetime.min.time()) + timedelta(hours=12), value) for day, value in baseline]
    series = (Series("baseline", frame.path(line), "baseline"),) if line else ()
    return TimeChart(
        width,
        height,
        frame.left,
        frame.top,
        frame.right,
        frame.bottom,
        series,
        date_ticks(frame, day_label),
        tuple(Tick(frame.y(v), value_label(v)) for v in (0.0, ceiling / 2, ceiling)),
        bars=bars,
    )


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × a power of ten at or above ``value``."""
    magnitude = 10 ** math.floor(math.log10(max(value, 1e-9)))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)
