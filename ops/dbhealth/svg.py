"""Tiny server-side SVG charts: a line chart over time (growth and latency plots).

No JavaScript and nothing fetched from elsewhere: the markup goes inline into the page. All
text is escaped; numbers are formatted here. Text and axes use ``currentColor`` so that the
charts follow the admin's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#b7950b")
MARKERS_UP_TO = 60  # points; beyond this only the line is drawn

Number = float | int


@dataclass
class Series:
    """One line: ``points`` are (moment, value) pairs, oldest first."""

    label: str
    points: list[tuple[datetime, Number]] = field(default_factory=list)


def _plain(value: Number) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"


def _nice_step(span: float, ticks: int = 4, *, binary: bool = False) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` intervals; with
    ``binary``, round in units of 1024 (kB, MB…) so that byte axes read 256 kB, not 244.1 kB."""
    raw = span / ticks if span > 0 else 1.0
    if not binary:
        power = 10 ** math.floor(math.log10(raw))
        return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    unit = 1024 ** max(0, math.floor(math.log(raw, 1024)))
    scaled = raw / unit
    power = 10 ** math.floor(math.log10(scaled))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= scaled)
    step = math.ceil(step) if unit == 1 else step  # no fractions of a byte
    return unit * (1024 if step > 512 else step)  # 1000 kB reads better as 1 MB


def _frame(width: int, height: int, title: str) -> list[str]:
    label = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{label}" class="gh-chart">',
        f"<title>{label}</title>",
        f'<text x="8" y="16" font-size="13" font-weight="bold" fill="currentColor">{label}</text>',
    ]


def _empty(parts: list[str], width: int, height: int, message: str) -> SafeString:
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" font-size="12" '
        f'fill="currentColor" opacity="0.7">{escape(message)}</text></svg>'
    )
    return mark_safe("".join(parts))


def _time_label(moment: datetime, span_seconds: float) -> str:
    return moment.strftime("%H:%M" if span_seconds <= 2 * 86400 else "%Y-%m-%d")


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    value_format: Callable[[Number], str] = _plain,
    width: int = 720,
    height: int = 240,
    empty_message: str = "No data yet.",
    binary: bool = False,
) -> SafeString:
    """A line per series over time, y from zero, with a legend and native hover titles
    (``binary`` for byte values: gridlines at round kB/MB)."""
    left, right, top, bottom = 78, 16, 44, 30
    parts = _frame(width, height, title)
    drawn = [s for s in series if s.points]
    if not drawn:
        return _empty(parts, width, height, empty_message)

    moments = [p[0].timestamp() for s in drawn for p in s.points]
    values = [float(p[1]) for s in drawn for p in s.points]
    x_min, x_max = min(moments), max(moments)
    step = _nice_step(max(values) if max(values) > 0 else 1.0, binary=binary)
    y_max = step * max(1, math.ceil(max(values) / step)) if max(values) > 0 else step * 4
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(ts: float) -> float:
        return left + (plot_w / 2 if x_max == x_min else (ts - x_min) / (x_max - x_min) * plot_w)

    def y(value: float) -> float:
        return top + plot_h - max(0.0, value) / y_max * plot_h

    # Legend, on one line under the title.
    cursor = 8.0
    for index, s in enumerate(drawn):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{cursor:.0f}" y="24" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{cursor + 14:.0f}" y="33" font-size="11" fill="currentColor">{escape(s.label)}</text>')
        cursor += 24 + 6.5 * len(s.label)

    # Grid and y labels.
    tick = 0.0
    while tick <= y_max + step / 2:
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="currentColor" '
            f'stroke-opacity="{0.35 if tick == 0 else 0.12}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" fill="currentColor">'
            f"{escape(value_format(tick))}</text>"
        )
        tick += step

    # x labels: first, middle and last moments.
    span = x_max - x_min
    labelled = sorted({x_min, x_max, x_min + span / 2})
    for ts in labelled:
        anchor = "start" if ts == x_min and span else "end" if ts == x_max and span else "middle"
        moment = datetime.fromtimestamp(ts, tz=drawn[0].points[0][0].tzinfo)
        parts.append(
            f'<text x="{x(ts):.1f}" y="{height - 10}" text-anchor="{anchor}" font-size="11" fill="currentColor">'
            f"{escape(_time_label(moment, span))}</text>"
        )

    for index, s in enumerate(drawn):
        colour = PALETTE[index % len(PALETTE)]
        coords = [(x(m.timestamp()), y(float(v))) for m, v in s.points]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if len(coords) <= MARKERS_UP_TO:
            for (cx, cy), (moment, value) in zip(coords, s.points):
                tip = f"{s.label}: {value_format(value)} at {moment:%Y-%m-%d %H:%M}"
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"><title>{escape(tip)}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
