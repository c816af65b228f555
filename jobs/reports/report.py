"""`pssr report OUTPUT`: one self-contained HTML file for people reviewing a job's results.

Inline CSS, plots as inline SVG, crops as PNG data: URIs; no script, nothing fetched, so it opens
offline and can be mailed or archived with the job. From the latest manifest rows of each video
(as `pssr status`): the job summary; per video, tfs, flicker, lr_psnr and detail_gain per segment
over time; per flagged segment, the input upscaled bicubic next to the output at its review frame.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape
from typing import Any

from jobs.reports.status import FlaggedSegment, JobStatus, summarize
from jobs.reports.svg_plot import Span, segment_plot
from pipeline.manifest.files import read_latest
from pipeline.media import MediaError
from pipeline.media.still import frame_at, png_bytes
from pipeline.quality.crops import review_crop
from pipeline.quality.review import review_frame, timecode
from pipeline.storage import Storage, StorageError

log = logging.getLogger(__name__)

DEFAULT_MAX_CROPS = 12  # per video: a badly flagged long video would otherwise make a huge page

# metric -> (plot title, y axis label, video-row threshold column or None)
PLOTS = {
    "tfs": ("Temporal Fidelity Score (lower is better)", "tfs", "max_tfs"),
    "flicker": ("Flicker of the added detail along the motion (lower is better)", "flicker", "max_flicker"),
    "lr_psnr": ("Fidelity to the input: PSNR(D(O), I) (higher is better)", "lr_psnr (dB)", "min_lr_psnr"),
    "detail_gain": ("Detail gain: mean |O - B(I)|", "detail_gain", None),
}

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 36px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; } td.n { text-align: right; }
.ok { color: #1a7f37; } .flagged { color: #b35900; } .failed { color: #c62828; }
.status { font-weight: bold; } .error { color: #c62828; font-family: monospace; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
.crop { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; }
.crop img { image-rendering: pixelated; border: 1px solid #888; margin-right: 4px; }
.crop figcaption { font-size: 12px; max-width: 700px; } .pair { display: flex; }
.pair div { font-size: 12px; text-align: center; }
"""


def build_report(
    storage: Storage, output: str, max_crops: int = DEFAULT_MAX_CROPS, echo: Callable[[str], None] = print
) -> tuple[str, JobStatus]:
    """The report's HTML, and the status it summarises."""
    videos, segments = read_latest(storage, output)
    status = summarize(output, videos, segments)
    flagged_by_video: dict[str, list[FlaggedSegment]] = {}
    for segment in status.flagged_segments:
        flagged_by_video.setdefault(segment.video_key, []).append(segment)
    body = [_summary(status)]
    for row, video in zip(videos, status.videos):
        rows = [s for s in segments if s["video_key"] == row["video_key"]]
        body.append(_video_section(storage, row, video, rows, flagged_by_video.get(row["video_key"], []), max_crops))
        echo(f"report: {row['video_key']}: {video['status']}, {video['segments_flagged']} segment(s) flagged")
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>PS-SR report: {escape(output)}</title><style>{CSS}</style></head><body>"
        f"<h1>PS-SR report</h1><p>Output <code>{escape(output)}</code>, generated {generated}.</p>"
        + "".join(body)
        + "</body></html>\n",
        status,
    )


def _summary(status: JobStatus) -> str:
    t = status.totals()
    rows = "".join(
        f"<tr><td>{escape(v['video_key'])}</td><td class='status {v['status']}'>{v['status']}</td>"
        f"<td class='n'>{v['frames']}</td><td>{timecode(v['duration_s'])}</td><td class='n'>{v['segments']}</td>"
        f"<td class='n'>{v['segments_flagged']}</td><td class='n'>{v['wall_s']:.1f}</td>"
        f"<td>{escape(v['finished_at'])}</td><td>{escape(v['job_id'])}</td>"
        f"<td class='error'>{escape(v['error'] or '')}</td></tr>"
        for v in status.videos
    )
    return (
        "<section id='summary'><h2>Summary</h2>"
        f"<p>{t['videos']} video(s): <span class='ok'>{t['ok']} ok</span>, "
        f"<span class='flagged'>{t['flagged']} flagged</span>, <span class='failed'>{t['failed']} failed</span>; "
        f"{t['frames']} frames, {timecode(t['duration_s'])} of video; {t['segments_flagged']} segment(s) to review."
        "</p><table><tr><th>video</th><th>status</th><th>frames</th><th>duration</th><th>segments</th>"
        "<th>flagged</th><th>wall s</th><th>finished (UTC)</th><th>job</th><th>error</th></tr>"
        f"{rows}</table></section>"
    )


def _video_section(
    storage: Storage,
    row: dict[str, Any],
    video: dict[str, Any],
    segments: list[dict[str, Any]],
    flagged: list[FlaggedSegment],
    max_crops: int,
) -> str:
    key = row["video_key"]
    facts = [f"{row['width']}x{row['height']} x{row['scale']}" if row["width"] else f"x{row['scale']}"]
    facts += [f"{video['frames']} frames", timecode(video["duration_s"]), f"{row['segments']} segment(s)"]
    if row.get("timecode"):
        facts.append(f"timecode {escape(row['timecode'])}")
    parts = [
        f"<section class='video' data-video='{escape(key, quote=True)}'>"
        f"<h2>{escape(key)} <span class='status {video['status']}'>{video['status']}</span></h2>"
        f"<p>Input <code>{escape(row['input_uri'])}</code>"
        + (f", output <code>{escape(row['output_uri'])}</code>" if row["output_uri"] else "")
        + f"; {', '.join(facts)}; job {escape(row['job_id'])}.</p>"
    ]
    if row["error"]:
        parts.append(f"<p class='error'>{escape(row['error'])}</p>")
    if segments:
        duration = row["duration_out_s"] or row["duration_in_s"] or 0.0
        parts.append("<div class='plots'>")
        for metric, (title, label, column) in PLOTS.items():
            threshold = row[column] if column else None
            limit = "" if threshold is None else f"{column.split('_')[0]} {threshold:g}"
            spans = [
                Span(s["start_s"], s["end_s"], s[metric], bool(s["flagged"]))
                for s in segments
                if s["start_s"] is not None
            ]
            parts.append(
                segment_plot(
                    spans, metric=metric, title=title, y_label=label, duration_s=duration, threshold=threshold,
                    threshold_label=limit,
                )
            )  # fmt: skip
        parts.append("</div>")
    if flagged:
        parts.append(_flagged_table(flagged))
        parts.append(_crops(storage, row, segments, flagged, max_crops))
    parts.append("</section>")
    return "".join(parts)


def _flagged_table(flagged: list[FlaggedSegment]) -> str:
    rows = "".join(
        f"<tr><td class='n'>{s.segment_index}</td><td>{s.times}</td><td>{s.frames[0]}-{s.frames[1] - 1}</td>"
        f"<td>{escape(s.describe())}</td></tr>"
        for s in flagged
    )
    return (
        f"<h3>Flagged segments ({len(flagged)})</h3><table class='flagged-segments'><tr><th>segment</th>"
        f"<th>time</th><th>frames</th><th>flags</th></tr>{rows}</table>"
    )


def _crops(
    storage: Storage, row: dict[str, Any], segments: list[dict[str, Any]], flagged: list[FlaggedSegment], limit: int
) -> str:
    if row["status"] != "ok":
        what = "its output was removed (input gone)" if row["status"] == "removed" else "the video failed"
        return f"<p>No crops: {what}, so there is no output to show.</p>"
    # Crops of another version of the input would show frames the job never saw.
    try:
        current = storage.stat(row["input_uri"])
        gone = None if current else "is gone"
        changed = current and current.version != row["input_version"]
        reason = gone or (f"changed since job {row['job_id']}" if changed else None)
    except StorageError as exc:
        reason = str(exc)
    if reason:
        log.warning("report: no crops for %s: input %s", row["video_key"], reason)
        return f"<p class='error'>No crops: the input {escape(reason)}.</p>"
    by_index = {s["segment_index"]: s for s in segments}
    parts = [_crop_figure(storage, row, by_index[flag.segment_index], flag) for flag in flagged[:limit]]
    if len(flagged) > limit:
        parts.append(f"<p>{len(flagged) - limit} more flagged segment(s) without crops (--max-crops {limit}).</p>")
    return "<div class='crops'>" + "".join(parts) + "</div>"


def _crop_figure(storage: Storage, row: dict[str, Any], segment: dict[str, Any], flag: FlaggedSegment) -> str:
    located = review_frame(segment)
    if located is None:
        return f"<p>Segment {flag.segment_index}: no frame located (a manifest from before review frames).</p>"
    frame, seconds = located
    scale = int(row["scale"])
    try:
        with storage.open_read(row["input_uri"]) as source:
            lr = frame_at(source, seconds)
        with storage.open_read(row["output_uri"]) as source:
            out = frame_at(source, seconds)
        crop = review_crop(lr, out, scale)
    except (MediaError, StorageError, ValueError) as exc:
        log.warning("report: %s segment %d: no crop: %s", row["video_key"], flag.segment_index, exc)
        return f"<p class='error'>Segment {flag.segment_index}: no crop: {escape(str(exc))}</p>"
    height, width = crop.output.shape[:2]
    zoom = 2 if max(width, height) <= 200 else 1  # small crops shown at twice their size, pixels kept sharp
    images = "".join(
        f"<div><img class='{name}' alt='{name} at {timecode(seconds)}' width='{width * zoom}' "
        f"height='{height * zoom}' src='data:image/png;base64,{base64.b64encode(png_bytes(pixels)).decode()}'>"
        f"<br>{caption}</div>"
        for name, pixels, caption in (
            ("bicubic", crop.bicubic, f"input, bicubic x{scale}"),
            ("output", crop.output, "output"),
        )
    )
    return (
        f"<figure class='crop' data-segment='{flag.segment_index}' data-frame='{frame}' data-x='{crop.x}' "
        f"data-y='{crop.y}'><div class='pair'>{images}"
        f"</div><figcaption>Segment {flag.segment_index}, frame {frame} at {timecode(seconds)}: "
        f"{escape(flag.describe())}. Window {width}x{height} at ({crop.x}, {crop.y}) of the output, where it "
        "differs most from bicubic; input frame as stored (before any deinterlacing).</figcaption></figure>"
    )
