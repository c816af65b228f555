"""`pssr status OUTPUT`: where a job's videos stand, from the manifests alone (no Ray, no models),
and what running jobs are doing, from the objects they rewrite as they go (pipeline/runs/live.py).

Manifests accumulate (every run adds rows for the videos it processed), so each video is shown as
its latest row says: ok, flagged (ok, with segments past a review threshold), or failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobs.run.progress import duration
from pipeline.manifest.files import manifest_root, read_latest
from pipeline.quality.review import THRESHOLDS, timecode
from pipeline.runs.live import read_live
from pipeline.storage import Storage

UNITS = {"lr_psnr": " dB", "tfs": "", "flicker": "", "light_delta": ""}
# A running job rewrites its progress every 30 s (jobs/run/reporters.py): silent this long, it may have died.
STALE_S = 300.0


@dataclass
class FlaggedSegment:
    video_key: str
    segment_index: int
    frames: tuple[int, int]  # core_start, core_end (exclusive)
    start_s: float | None
    end_s: float | None
    flags: dict[str, dict[str, float | None]]  # metric -> {"value": ..., "threshold": ...}

    @property
    def times(self) -> str:
        return f"{timecode(self.start_s)}-{timecode(self.end_s)}"

    def describe(self) -> str:
        """'tfs 1.52 > 1; lr_psnr 31.2 dB < 38': each flag with its value and threshold."""
        parts = []
        for metric, found in self.flags.items():
            below = THRESHOLDS[metric].startswith("min_")
            threshold = found["threshold"]
            limit = "" if threshold is None else f" {'<' if below else '>'} {threshold:g}"
            parts.append(f"{metric} {found['value']:.4g}{UNITS[metric]}{limit}")
        return "; ".join(parts)


@dataclass
class JobStatus:
    output: str
    videos: list[dict[str, Any]] = field(default_factory=list)
    flagged_segments: list[FlaggedSegment] = field(default_factory=list)
    running: list[dict[str, Any]] = field(default_factory=list)  # running jobs' progress (pipeline/runs/live.py)

    def count(self, status: str) -> int:
        return sum(v["status"] == status for v in self.videos)

    @property
    def any_failed(self) -> bool:
        return self.count("failed") > 0

    def totals(self) -> dict[str, Any]:
        return {
            "videos": len(self.videos),
            "ok": self.count("ok"),
            "flagged": self.count("flagged"),
            "failed": self.count("failed"),
            "removed": self.count("removed"),
            "frames": sum(v["frames"] for v in self.videos),
            "duration_s": sum(v["duration_s"] for v in self.videos),
            "segments_flagged": len(self.flagged_segments),
        }


def job_status(storage: Storage, output: str) -> JobStatus:
    """Each video's latest manifest row under `output`, the flagged segments of those rows, and the
    progress of the jobs running there."""
    status = summarize(output, *read_latest(storage, output))
    status.running = read_live(storage, output)
    return status


def summarize(output: str, videos: list[dict[str, Any]], segments: list[dict[str, Any]]) -> JobStatus:
    """The status of the latest rows (`read_latest`) of the videos under `output`."""
    by_key = {v["video_key"]: v for v in videos}
    # Manifests written before review flags existed read back with nulls here: not flagged.
    flagged = [_flagged(row, by_key[row["video_key"]]) for row in segments if row["flagged"]]
    counts = {key: 0 for key in by_key}
    for segment in flagged:
        counts[segment.video_key] += 1
    return JobStatus(output, [_video_status(row, counts[row["video_key"]]) for row in videos], flagged)


def _video_status(row: dict[str, Any], flagged: int) -> dict[str, Any]:
    status = row["status"] if row["status"] != "ok" else "flagged" if flagged else "ok"
    return {
        "video_key": row["video_key"],
        "status": status,
        "frames": row["frames_in"] if row["status"] == "failed" else row["frames_out"],
        "duration_s": row["duration_in_s"] if row["status"] == "failed" else row["duration_out_s"],
        "segments": row["segments"],
        "timecode": row.get("timecode"),  # the source's start timecode (manifests from before it: absent)
        "segments_flagged": flagged,
        "wall_s": row["wall_s"],
        "job_id": row["job_id"],
        "finished_at": row["finished_at"].isoformat(timespec="seconds"),
        "output_uri": row["output_uri"],
        "error": row["error"],
        "attempt": row["attempt"],
        # pssr sync's cap reached: it leaves this input version alone (manifests from before the cap: null).
        "gave_up": row["status"] == "failed" and bool(row["max_attempts"]) and (row["attempt"] or 0) >= row["max_attempts"],
    }


def _flagged(segment: dict[str, Any], video: dict[str, Any]) -> FlaggedSegment:
    flags = {
        metric: {"value": segment[metric], "threshold": video[field]}
        for metric, field in THRESHOLDS.items()
        if segment.get(f"flag_{metric}")
    }
    return FlaggedSegment(
        segment["video_key"],
        segment["segment_index"],
        (segment["core_start"], segment["core_end"]),
        segment["start_s"],
        segment["end_s"],
        flags,
    )


def _table(header: Sequence[str], rows: list[Sequence[str]], right: set[int]) -> list[str]:
    """Plain-text columns: numbers (`right`) aligned right, the rest left."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def cell(i: int, text: object) -> str:
        return str(text).rjust(widths[i]) if i in right else str(text).ljust(widths[i])

    return ["  ".join(cell(i, text) for i, text in enumerate(row)).rstrip() for row in [header, *rows]]


def print_running(running: list[dict[str, Any]], echo: Callable[[str], None], now: datetime | None = None) -> None:
    """Each running job's line (frames, rate, ETA, when it last wrote) and a line per unfinished video."""
    now = now or datetime.now(timezone.utc)
    for job in running:
        since = (now - datetime.fromisoformat(job["updated_at"])).total_seconds()
        quiet = f"; no update for {duration(since)}: it may have stopped" if since > STALE_S else ""
        rate = "-" if job["frames_per_s"] is None else f"{job['frames_per_s']:.1f}"
        echo(
            f"running: job {job['job_id']} (since {job['started_at']}), frames {job['frames_done']}/"
            f"{job['frames_total']}, {rate} frames/s, ETA {duration(job['eta_s'])}; "
            f"videos {job['videos_ok'] + job['videos_failed'] + job['videos_skipped']}/{job['videos_total']} "
            f"done; updated {duration(since)} ago{quiet}"
        )
        rows = [
            (v["video"], f"{v['frames_done']}/{v['frames']}", f"{100 * v['frames_done'] // max(v['frames'], 1)}%",
             f"{v['segments_done']}/{v['segments']}")
            for v in job["videos"]
        ]  # fmt: skip
        for line in _table(("video", "frames", "done", "segments"), rows, right={1, 2, 3}) if rows else []:
            echo(f"  {line}")


def print_status(status: JobStatus, echo: Callable[[str], None], flagged: bool = False) -> None:
    """The running jobs, the table of videos, the totals, the failed videos' errors and (with
    `flagged`) the segments to review."""
    print_running(status.running, echo)
    if not status.videos:
        return
    rows = [
        (v["video_key"], v["status"], v["frames"], timecode(v["duration_s"]), v["segments"],
         v["segments_flagged"], f"{v['wall_s']:.1f}", v["finished_at"], v["job_id"])
        for v in status.videos
    ]  # fmt: skip
    header = ("video", "status", "frames", "duration", "segments", "flagged", "wall_s", "finished (UTC)", "job")
    if any(v["timecode"] for v in status.videos):  # the source's start timecode, for archives that have one
        header += ("timecode",)
        rows = [(*row, v["timecode"] or "-") for row, v in zip(rows, status.videos)]
    for line in _table(header, rows, right={2, 4, 5, 6}):
        echo(line)
    t = status.totals()
    echo(
        f"{t['videos']} video(s): {t['ok']} ok, {t['flagged']} flagged, {t['failed']} failed"
        + (f", {t['removed']} removed (input gone)" if t["removed"] else "")
        + "; "
        f"{t['frames']} frames, {timecode(t['duration_s'])} of video; {t['segments_flagged']} segment(s) flagged"
    )
    failed = [v for v in status.videos if v["status"] == "failed"]
    if failed:
        echo("failed:")
        for video in failed:
            echo(f"  {video['video_key']}: {video['error']}")
    gave_up = [v for v in status.videos if v["gave_up"]]
    if gave_up:
        echo("given up by pssr sync until their input changes:")
        for video in gave_up:
            echo(f"  {video['video_key']}: failed {video['attempt']} times")
    if flagged:
        echo(f"flagged segments ({len(status.flagged_segments)}):")
        seg_rows = [
            (s.video_key, s.segment_index, s.times, f"{s.frames[0]}-{s.frames[1] - 1}", s.describe())
            for s in status.flagged_segments
        ]
        for line in _table(("video", "segment", "time", "frames", "flags"), seg_rows, right={1}):
            echo(f"  {line}")


def status_json(status: JobStatus, flagged: bool = False) -> str:
    document: dict[str, Any] = {
        "output": status.output, "videos": status.videos, "totals": status.totals(), "running": status.running
    }
    if flagged:
        document["flagged_segments"] = [{**asdict(s), "time": s.times} for s in status.flagged_segments]
    return json.dumps(document, indent=2)


def no_manifests_message(output: str) -> str:
    return f"{output}: no manifests under {manifest_root(output)} (no job has finished a video there)"
