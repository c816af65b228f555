"""Per-segment metric plots as inline SVG for the HTML report: no plotting library, no script.

Each segment is a horizontal step over its time range at its value, with a marker at its middle;
flagged segments get a red marker and a shaded band, and a threshold a dashed line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 72, 28, 44  # margins around the plot area, px (right: threshold label)
LINE, FLAG, THRESHOLD, AXIS = "#1f5fa8", "#d62728", "#e07b00", "#444444"


@dataclass(frozen=True)
class Span:
    """One segment: its time range in seconds and its value (None: not measured)."""

    start: float
    end: float
    value: float | None
    flagged: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    return [(first + i) * step for i in range(math.floor(hi / step + 1e-9) - first + 1)]


def _label(value: float, ticks: Sequence[float]) -> str:
    """A tick label with as many decimals as the step needs (0.25 -> 2, 5 -> 0); steps under 0.001 in
    exponent form (2.5e-05, not 0.000025), short enough to leave room for the axis label."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    if step < 1e-3:
        return f"{value:g}"
    decimals = next(d for d in range(10) if abs(step * 10**d - round(step * 10**d)) < 1e-6 * 10**d)
    return f"{value:.{decimals}f}"


def _value_range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 1e-3)
    return lo - pad, hi + pad


def segment_plot(
    spans: Sequence[Span],
    *,
    metric: str,
    title: str,
    y_label: str,
    duration_s: float,
    threshold: float | None = None,
    threshold_label: str = "",
) -> str:
    """An SVG line plot of one metric per segment over the video's time (seconds from its first frame)."""
    values = [s.value for s in spans if s.value is not None and math.isfinite(s.value)]
    y_lo, y_hi = _value_range(values + ([threshold] if threshold is not None else []) or [0.0])
    x_hi = max([duration_s] + [s.end for s in spans]) or 1.0
    x_ticks, y_ticks = nice_ticks(0.0, x_hi), nice_ticks(y_lo, y_hi)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * t / x_hi

    def y(v: float) -> float:
        return TOP + plot_h * (y_hi - v) / (y_hi - y_lo)

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="{escape(metric)}" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">'
        ),
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for span in spans:  # bands first, under everything else
        if span.flagged:
            left = x(span.start)
            parts.append(
                f'<rect class="flag-band" x="{left:.1f}" y="{TOP}" width="{max(x(span.end) - left, 3):.1f}" '
                f'height="{plot_h}" fill="{FLAG}" fill-opacity="0.15"/>'
            )
    for tick in y_ticks:
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" stroke="#dddddd"/>'
            f'<text x="{LEFT - 7}" y="{y(tick) + 4:.1f}" text-anchor="end">{_label(tick, y_ticks)}</text>'
        )
    for tick in x_ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{TOP + plot_h}" x2="{x(tick):.1f}" y2="{TOP + plot_h + 4}" stroke="{AXIS}"/>'
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(tick, x_ticks)}</text>'
        )
    parts.append(
        f'<path d="M{LEFT},{TOP} V{TOP + plot_h} H{LEFT + plot_w}" fill="none" stroke="{AXIS}"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">time (s)</text>'
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{LEFT}" y1="{y(threshold):.1f}" x2="{LEFT + plot_w}" y2="{y(threshold):.1f}" '
            f'stroke="{THRESHOLD}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + plot_w + 4}" y="{y(threshold) + 4:.1f}" fill="{THRESHOLD}">'
            f"{escape(threshold_label)}</text>"
        )
    path, pen_down = [], False
    for span in spans:
        if span.value is None or not math.isfinite(span.value):
            pen_down = False  # a gap where a segment was not measured
            continue
        level = y(span.value)
        path.append(f"{'L' if pen_down else 'M'}{x(span.start):.1f},{level:.1f} L{x(span.end):.1f},{level:.1f}")
        pen_down = True
    if path:
        parts.append(f'<path class="series" d="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for span in spans:
        if span.value is not None and math.isfinite(span.value):
            colour = FLAG if span.flagged else LINE
            parts.append(
                f'<circle cx="{x((span.start + span.end) / 2):.1f}" cy="{y(span.value):.1f}" '
                f'r="{4 if span.flagged else 3}" fill="{colour}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
