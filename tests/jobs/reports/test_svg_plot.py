"""Inline SVG plots (jobs/reports/svg_plot.py): well-formed, with axes, ticks, threshold and flags."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from jobs.reports.svg_plot import HEIGHT, LEFT, TOP, WIDTH, Span, nice_ticks, segment_plot

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [(0.0, 4.0, [0, 1, 2, 3, 4]), (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (37.1, 49.4, [37.5, 40, 42.5, 45, 47.5]),
     (-0.3, 0.3, [-0.2, 0.0, 0.2])],
)  # fmt: skip
def test_nice_ticks(lo, hi, expected):
    assert nice_ticks(lo, hi) == pytest.approx(expected)


def spans() -> list[Span]:
    return [Span(0.0, 0.96, 0.4), Span(1.0, 1.96, 1.6, flagged=True), Span(2.0, 2.5, None), Span(2.54, 3.96, 0.7)]


def test_a_plot_of_segments_over_time():
    svg = segment_plot(
        spans(), metric="tfs", title="TFS <per segment>", y_label="tfs", duration_s=4.0, threshold=1.0,
        threshold_label="max 1",
    )  # fmt: skip
    root = ET.fromstring(svg)  # well-formed XML, special characters escaped
    assert (root.get("width"), root.get("height"), root.get("data-metric")) == (str(WIDTH), str(HEIGHT), "tfs")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "TFS <per segment>" in texts and "time (s)" in texts and "tfs" in texts and "max 1" in texts
    assert {"0", "1", "2", "3", "4"} <= set(texts)  # x ticks over the whole duration
    # One marker per measured segment, the flagged one in red, with a band under it; a gap where none.
    circles = list(root.iter(f"{SVG}circle"))
    assert [c.get("fill") for c in circles] == ["#1f5fa8", "#d62728", "#1f5fa8"]
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "flag-band"]) == 1
    series = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "series").get("d")
    assert series.count("M") == 2  # the unmeasured segment breaks the line
    # Values map onto the axes: the flagged value lies above the threshold line (smaller y).
    threshold = next(e for e in root.iter(f"{SVG}line") if e.get("class") == "threshold")
    assert float(circles[1].get("cy")) < float(threshold.get("y1")) < float(circles[0].get("cy"))
    assert all(TOP <= float(c.get("cy")) <= HEIGHT and float(c.get("cx")) >= LEFT for c in circles)


def test_a_plot_with_nothing_measured_still_draws_axes():
    root = ET.fromstring(segment_plot([Span(0, 1, None)], metric="x", title="t", y_label="y", duration_s=0.0))
    assert not list(root.iter(f"{SVG}circle")) and any(t.text == "time (s)" for t in root.iter(f"{SVG}text"))


def test_a_constant_series_gets_a_visible_range():
    root = ET.fromstring(segment_plot([Span(0, 1, 0.5), Span(1, 2, 0.5)], metric="x", title="t", y_label="y",
                                      duration_s=2.0))  # fmt: skip
    ys = {float(c.get("cy")) for c in root.iter(f"{SVG}circle")}
    assert len(ys) == 1 and all(math.isfinite(y) and TOP < y < HEIGHT for y in ys)


def test_small_values_get_short_tick_labels():
    """flicker's ~1e-5: exponent labels, not 0.000025 (which would run into the axis label)."""
    root = ET.fromstring(segment_plot([Span(0, 1, 2e-5), Span(1, 2, 9e-5)], metric="flicker", title="t",
                                      y_label="flicker", duration_s=2.0))  # fmt: skip
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert "4e-05" in labels and all(len(label) <= 7 for label in labels)
