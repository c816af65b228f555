"""Where a running job stands: its events (fed by the reporters, jobs/run/reporters.py) counted into
videos, segments and frames done and to do, frames/s over a moving window, and the ETA."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

RATE_WINDOW_S = 60.0  # frames/s over about this last stretch of time


@dataclass(frozen=True)
class Snapshot:
    """Where the job stands. frames_total counts the planned frames of the videos still to be
    done, plus, for videos not planned yet, the mean frames of those planned so far."""

    videos_total: int
    videos_ok: int
    videos_failed: int
    videos_skipped: int
    segments_done: int
    segments_total: int
    frames_done: int
    frames_total: int
    frames_per_s: float | None  # None until frames have been worked on
    eta_s: float | None  # None without a rate
    elapsed_s: float

    @property
    def videos_done(self) -> int:
        return self.videos_ok + self.videos_failed + self.videos_skipped

    def line(self) -> str:
        rate = f"{self.frames_per_s:.1f} frames/s" if self.frames_per_s is not None else "- frames/s"
        return (
            f"videos {self.videos_done}/{self.videos_total} ({self.videos_ok} ok, {self.videos_failed} failed, "
            f"{self.videos_skipped} skipped), segments {self.segments_done}/{self.segments_total}, "
            f"frames {self.frames_done}/{self.frames_total}, {rate}, ETA {_duration(self.eta_s)}"
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class _Open:
    """A planned video not finished yet."""

    frames: int
    segments: int
    frames_done: int = 0
    segments_done: int = 0


class JobProgress:
    """Counts, frames/s over a moving window and the ETA, from the job's events; `clock` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = RATE_WINDOW_S) -> None:
        self.clock, self.window_s = clock, window_s
        self.started = clock()
        self.videos_total = self.videos_ok = self.videos_failed = self.videos_skipped = 0
        self.videos_planned = self.failed_unplanned = 0
        self.frames_planned = 0  # as planned, for the estimate of unplanned videos
        self.frames_total = self.frames_done = self.segments_total = self.segments_done = 0
        self.frames_worked = 0  # frames_done less reused segments': what the rate is about
        self._open: dict[str, _Open] = {}
        self._samples: deque[tuple[float, int]] = deque()  # (time, frames_worked)

    def listed(self, to_process: int) -> None:
        # Videos skipped before the listing ends were done by earlier runs; those skipped later
        # (sync: leased by another run) are among `to_process`.
        self.videos_total = to_process + self.videos_skipped

    def skipped(self) -> None:
        self.videos_skipped += 1

    def planned(self, video: str, frames: int, segments: int) -> None:
        self._open[video] = _Open(frames, segments)
        self.videos_planned += 1
        self.frames_planned += frames
        self.frames_total += frames
        self.segments_total += segments
        if not self._samples:  # the rate counts from the first plan, not from Ray's start-up
            self._samples.append((self.clock(), self.frames_worked))

    def segment_done(self, video: str, frames: int, reused: bool) -> None:
        if (state := self._open.get(video)) is not None:
            state.frames_done += frames
            state.segments_done += 1
        self.frames_done += frames
        self.segments_done += 1
        if not reused:
            self.frames_worked += frames
            self._samples.append((self.clock(), self.frames_worked))

    def finished(self, video: str, ok: bool) -> None:
        if ok:
            self.videos_ok += 1
        else:
            self.videos_failed += 1
        state = self._open.pop(video, None)
        if state is None:
            self.failed_unplanned += not ok  # failed before it had a plan (unreadable, bad key)
        elif not ok:  # what it still had to do will not be done
            self.frames_total -= state.frames - state.frames_done
            self.segments_total -= state.segments - state.segments_done

    def rate(self) -> float | None:
        """Frames worked per second since the last sample at least `window_s` old (or the first)."""
        now = self.clock()
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()
        if not self._samples or now <= self._samples[0][0]:
            return None
        since, worked = self._samples[0]
        return (self.frames_worked - worked) / (now - since)

    def snapshot(self) -> Snapshot:
        unplanned = max(0, self.videos_total - self.videos_skipped - self.videos_planned - self.failed_unplanned)
        estimate = unplanned * self.frames_planned // self.videos_planned if self.videos_planned else 0
        frames_total = self.frames_total + estimate
        rate = self.rate()
        remaining = max(0, frames_total - self.frames_done)
        eta = remaining / rate if rate else None
        return Snapshot(
            videos_total=self.videos_total,
            videos_ok=self.videos_ok,
            videos_failed=self.videos_failed,
            videos_skipped=self.videos_skipped,
            segments_done=self.segments_done,
            segments_total=self.segments_total,
            frames_done=self.frames_done,
            frames_total=frames_total,
            frames_per_s=rate,
            eta_s=eta,
            elapsed_s=self.clock() - self.started,
        )
