"""Where a running job stands: its events (fed by the reporters, jobs/run/reporters.py) counted into
videos, segments and frames done and to do, frames/s over the whole job and over a recent window,
and the ETA.

A frame counts as done once the light stage (the last model stage) has passed it: the light
actors report each pass (actors/progress.py), so progress moves within a segment, not only when
a whole segment is encoded. Each segment counts at most its frames, whatever its reports say: a
retried segment reports from 0 again, and only what goes past its highest report adds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RATE_WINDOW_S = 60.0  # the recent rate: frames/s over about this last stretch of time
# What a tick takes from the job's progress board (actors/progress.py): frames past the light stage
# by (video, segment index), and the videos planned since the last tick (video -> frames, segments).
Taken = tuple[Mapping[tuple[str, int], int], Mapping[str, tuple[int, int]]]


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
    frames_per_s: float | None  # this run's frames over the job's elapsed time; None before any
    recent_frames_per_s: float | None  # over the last RATE_WINDOW_S since the first frames; None until then
    eta_s: float | None  # None until the first frames are done
    elapsed_s: float

    @property
    def videos_done(self) -> int:
        return self.videos_ok + self.videos_failed + self.videos_skipped

    def line(self) -> str:
        """One line, the figures users look for first: frames, rates and ETA, then the counts."""
        share = f" ({100 * self.frames_done // self.frames_total}%)" if self.frames_total else ""
        rate = "- frames/s" if self.frames_per_s is None else f"{self.frames_per_s:.1f} frames/s"
        recent = ""
        if self.recent_frames_per_s is not None and self.elapsed_s > RATE_WINDOW_S:  # else the same figure
            recent = f" (last {RATE_WINDOW_S:.0f} s: {self.recent_frames_per_s:.1f})"
        return (
            f"{duration(self.elapsed_s)} frames {self.frames_done}/{self.frames_total}{share}, {rate}{recent}, "
            f"ETA {duration(self.eta_s)}; videos {self.videos_done}/{self.videos_total} ({self.videos_ok} ok, "
            f"{self.videos_failed} failed, {self.videos_skipped} skipped), segments {self.segments_done}/{self.segments_total}"
        )


def duration(seconds: float | None) -> str:
    """`1h02m`, `3m07s`, or `-` when unknown."""
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
    passed: dict[int, int] = field(default_factory=dict)  # frames past the light stage, by unfinished segment
    finished: set[int] = field(default_factory=set)  # segment indices delivered


class JobProgress:
    """Counts, frames/s and the ETA, from the job's events; `clock` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = RATE_WINDOW_S) -> None:
        self.clock, self.window_s = clock, window_s
        self.started = clock()
        self.videos_total = self.videos_ok = self.videos_failed = self.videos_skipped = 0
        self.videos_planned = self.failed_unplanned = 0
        self.frames_planned = 0  # as planned, for the estimate of unplanned videos
        self.frames_total = self.frames_done = self.segments_total = self.segments_done = 0
        self.frames_worked = 0  # frames_done less reused segments': what the rates are about
        self._open: dict[str, _Open] = {}
        self._planned: set[str] = set()  # every video planned so far, finished ones included
        # (time, frames_worked) from the first frames on: the recent rate leaves out the start-up
        # (Ray, the models, the first segment through every stage), which the job's rate keeps.
        self._samples: deque[tuple[float, int]] = deque()

    def listed(self, to_process: int) -> None:
        # Videos skipped before the listing ends were done by earlier runs; those skipped later
        # (sync: leased by another run) are among `to_process`.
        self.videos_total = to_process + self.videos_skipped

    def skipped(self) -> None:
        self.videos_skipped += 1

    def planned(self, video: str, frames: int, segments: int) -> bool:
        """Count a planned video once (it is told twice: by the progress board and by its first
        segment back), and its segments once known (0 until then: a long video's first segments go
        on before its scan ends, actors/plan.py); whether the video was new."""
        if video in self._planned:
            state = self._open.get(video)
            if state is not None and segments and not state.segments:
                state.segments = segments
                self.segments_total += segments
            return False
        self._planned.add(video)
        self._open[video] = _Open(frames, segments)
        self.videos_planned += 1
        self.frames_planned += frames
        self.frames_total += frames
        self.segments_total += segments
        return True

    def passed(self, frames: Mapping[tuple[str, int], int]) -> None:
        """Frames past the light stage so far, by (video, segment index): what the actors reported."""
        for (video, index), count in frames.items():
            state = self._open.get(video)
            if state is None or index in state.finished or count <= state.passed.get(index, 0):
                continue  # a late report of a delivered segment, or one behind an earlier try's
            self._add(state, count - state.passed.get(index, 0), reused=False)
            state.passed[index] = count

    def segment_done(self, video: str, index: int, frames: int, reused: bool) -> None:
        """A segment delivered (encoded, or reused from an interrupted run): all its frames are done."""
        state = self._open.get(video)
        if state is not None:
            if index in state.finished:
                return
            state.finished.add(index)
            state.segments_done += 1
            frames -= state.passed.pop(index, 0)
        self.segments_done += 1
        self._add(state, frames, reused)

    def _add(self, state: _Open | None, frames: int, reused: bool) -> None:
        if state is not None:
            state.frames_done += frames
        self.frames_done += frames
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
            self.segments_total -= max(0, state.segments - state.segments_done)

    def unfinished(self) -> list[dict[str, int | str]]:
        """The planned videos not finished yet, with their frames and segments done and to do."""
        return [
            {"video": video, "frames_done": s.frames_done, "frames": s.frames,
             "segments_done": s.segments_done, "segments": s.segments}
            for video, s in self._open.items()
        ]  # fmt: skip

    def recent_rate(self) -> float | None:
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
        elapsed = self.clock() - self.started
        rate = self.frames_worked / elapsed if self.frames_worked and elapsed > 0 else None
        recent = self.recent_rate()
        # The recent rate follows a change of pace (a slower video); the whole job's gives an ETA
        # from the first frames on, and through a stretch with none (a long segment in the strong stage).
        pace = recent or rate
        eta = max(0, frames_total - self.frames_done) / pace if pace else None
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
            recent_frames_per_s=recent,
            eta_s=eta,
            elapsed_s=elapsed,
        )
