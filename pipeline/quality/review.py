"""Review flags: which segments need a human look, and where in time they are (Ray-free).

A segment is flagged when one of its no-reference metrics passes a threshold of the job's
`review` settings (ReviewSpec). The flags are taken when the video's manifest is written, from
the metrics the light stage measured (or a reused chunk's record), so a reused segment is judged
by the thresholds of the run that writes its row. `review_frame` and `timecode` serve the readers
of finished manifests (`pssr status`, `pssr report`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipeline.config import ReviewSpec
from pipeline.segment import SegmentRecord

# metric -> the ReviewSpec threshold it is checked against; "min_" flags values below, "max_" above.
THRESHOLDS = {
    "lr_psnr": "min_lr_psnr",
    "tfs": "max_tfs",
    "flicker": "max_flicker",
    "light_delta": "max_light_delta",
}
TEMPORAL_METRICS = ("flicker", "tfs")  # they show between frames; flicker first: the sharper of the two


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


def review_segment(segment: SegmentRecord, spec: ReviewSpec) -> None:
    """Set a segment's flags for its manifest row; none on a failed segment: the failure is what
    to look at."""
    ok = segment.status == "ok"
    flags = review_flags({metric: getattr(segment, metric) if ok else None for metric in THRESHOLDS}, spec)
    for name, flag in flags.items():
        setattr(segment, name, flag)


def locate(segment: SegmentRecord) -> None:
    """Set when the segment's first and last core frames and its worst frames are shown, in
    seconds from the video's first frame (from its core frames' pts)."""
    times = [float(int(p) * segment.time_base) - segment.video_start_s for p in segment.pts]

    def at(frame: int | None) -> float | None:
        return None if frame is None else times[frame - segment.core_start]

    segment.start_s, segment.end_s = times[0], times[-1]
    segment.tfs_worst_s = at(segment.tfs_worst_frame)
    segment.flicker_worst_s = at(segment.flicker_worst_frame)
    segment.lr_psnr_worst_s = at(segment.lr_psnr_worst_frame)


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
        if frame is not None and seconds is not None and not math.isnan(seconds):
            return int(frame), float(seconds)
    return None
