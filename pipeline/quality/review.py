"""Review flags: which segments need a human look, and where in time they are (Ray-free).

A segment is flagged when one of its no-reference metrics passes a threshold of the job's
`review` settings (ReviewSpec). The flags are taken when the video's manifest is written, from
the metrics the light stage measured (or a reused chunk's record), so a reused segment is judged
by the thresholds of the run that writes its row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from pipeline.config import ReviewSpec

# metric -> the ReviewSpec threshold it is checked against; "min_" flags values below, "max_" above.
THRESHOLDS = {
    "lr_psnr": "min_lr_psnr",
    "tfs": "max_tfs",
    "flicker": "max_flicker",
    "light_delta": "max_light_delta",
}
# The frames the light stage locates in each segment: where each of these metrics is worst.
WORST_METRICS = ("tfs", "flicker", "lr_psnr")
TEMPORAL_METRICS = ("flicker", "tfs")  # they show between frames; flicker first: the sharper of the two
NO_FRAME = -1  # a worst frame that was not measured (failed segment; tfs or flicker of a one-frame segment)


def passes(metric: str, value: float | None, spec: ReviewSpec) -> bool:
    """Whether `value` of `metric` is past its threshold; a missing metric or threshold flags nothing."""
    field = THRESHOLDS[metric]
    threshold = getattr(spec, field)
    if threshold is None or value is None or math.isnan(value):
        return False
    return value < threshold if field.startswith("min_") else value > threshold


def review_flags(metrics: Mapping[str, float | None], spec: ReviewSpec) -> dict[str, bool]:
    """flag_<metric> for each threshold, and `flagged` when any of them is set."""
    flags = {f"flag_{metric}": passes(metric, metrics.get(metric), spec) for metric in THRESHOLDS}
    return {**flags, "flagged": any(flags.values())}


def segment_review(row: Mapping[str, Any], spec: ReviewSpec) -> dict[str, Any]:
    """A segment row's review columns for its manifest: its flags (none on a failed segment: the failure
    is what to look at), and its worst frames (null where not measured)."""
    ok = row["status"] == "ok"
    flags = review_flags({m: float(row[m]) if ok and row[m] is not None else None for m in THRESHOLDS}, spec)
    frames = {f"{m}_worst_frame": int(row[f"{m}_worst_frame"]) for m in WORST_METRICS}
    return {**flags, **{name: None if frame == NO_FRAME else frame for name, frame in frames.items()}}


def flag_thresholds(spec: ReviewSpec) -> dict[str, float | None]:
    """The video row's record of the thresholds its flags were taken with."""
    return {field: getattr(spec, field) for field in THRESHOLDS.values()}


def unlocated() -> dict[str, Any]:
    """The timing fields of a segment row before the light stage locates it."""
    return {
        "start_s": math.nan,
        "end_s": math.nan,
        **{f"{m}_worst_frame": NO_FRAME for m in WORST_METRICS},
        **{f"{m}_worst_s": math.nan for m in WORST_METRICS},
    }


def locate(
    pts: Sequence[int], time_base: Fraction, video_start_s: float, core_start: int, worst: Mapping[str, int]
) -> dict[str, float]:
    """Times in seconds from the video's first frame: the segment's first and last core frame
    (`pts`, in `time_base`), and each `<metric>_worst_frame` in `worst` (a video frame index)."""
    times = [float(p * time_base) - video_start_s for p in pts]
    located = {"start_s": times[0], "end_s": times[-1]}
    for name, frame in worst.items():
        located[name.replace("_frame", "_s")] = times[frame - core_start] if frame != NO_FRAME else math.nan
    return located


def timecode(seconds: float | None) -> str:
    """HH:MM:SS.mmm (what players and editing tools show); '?' when unknown."""
    if seconds is None or math.isnan(seconds):
        return "?"
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def review_frame(segment: Mapping[str, Any]) -> tuple[int, float] | None:
    """The frame to show for a flagged segment, (video frame index, seconds): where flicker or tfs is
    worst when that is flagged (flicker shows between frames), else where the output departs most from
    the input."""
    flagged = [m for m in TEMPORAL_METRICS if segment.get(f"flag_{m}")]
    for metric in (*flagged, "lr_psnr", *(m for m in TEMPORAL_METRICS if m not in flagged)):
        frame, seconds = segment.get(f"{metric}_worst_frame"), segment.get(f"{metric}_worst_s")
        if frame is not None and frame != NO_FRAME and seconds is not None and not math.isnan(seconds):
            return int(frame), float(seconds)
    return None
