"""What a running job shows: the job (jobs/run/job.py, jobs/run/sync.py) calls a reporter's event
methods (job started, videos listed, started up, video planned, segment done, first chunk written,
video ok, failed or skipped), which count them into the job's progress (jobs/run/progress.py) with the
light stage's passes (taken from the job at each tick: `follow`), and show them as asked:

* Reporter: the per-video lines `pssr run` prints (`ok`, `FAILED`, `skip`) through `echo`; run
  as a context (the CLI does), also a progress log record every PROGRESS_EVERY_S seconds, so a
  scheduled job's log shows it is alive (for output that is not a terminal).
* TerminalReporter: the same lines, and a status line at the bottom of the terminal (stderr)
  redrawn at most every REDRAW_EVERY_S seconds.
* JsonReporter: JSON Lines, one object per event, a `progress` object every PROGRESS_EVERY_S
  seconds and a closing `summary`.
* QuietReporter: nothing; a failed video still reaches stderr as its ERROR log record.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Self, TextIO

from jobs.run.logs import JobLog, job_log_path, set_job_id
from jobs.run.progress import JobProgress, Snapshot, Taken
from jobs.run.summary import JobSummary
from pipeline.errors import PssrError

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0  # a progress log record or JSON object this often
REDRAW_EVERY_S = 0.25  # the terminal's status line at most this often


class Reporter:
    """The job's events as lines through `echo`; as a context, a progress log record every `every_s`.

    The event methods are called from the job's thread and the ticks from the reporter's own: a
    lock keeps them apart."""

    def __init__(
        self,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = PROGRESS_EVERY_S,
        job_log: JobLog | None = None,
    ) -> None:
        self.echo, self.clock, self.every_s = echo, clock, every_s
        self.job_log = job_log  # opened when the job starts, its file named by the first line
        self.progress = JobProgress(clock)
        self.job_id: str | None = None
        self.input = self.output = ""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_tick = clock()
        self._take: Callable[[], Taken] | None = None
        self._publish: Callable[[dict[str, Any]], None] | None = None
        self.publish_every_s = PROGRESS_EVERY_S
        self._last_published = -float("inf")

    # ---- periodic output, while the job runs
    def __enter__(self) -> Self:
        self._ticker = threading.Thread(target=self._run_ticks, name="pssr-progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._close()

    def _run_ticks(self) -> None:
        while not self._stop.wait(self.every_s / 4):  # shown within a quarter period of being due
            self.tick()

    def follow(self, take: Callable[[], Taken] | None) -> None:
        """Where each tick takes the frames the light stage has passed and the videos planned since
        the last (the job's progress board: jobs/run/job.py); None when the job has no more."""
        self._take = take

    def publish(self, write: Callable[[dict[str, Any]], None] | None) -> None:
        """Where the progress goes every `publish_every_s` for `pssr status` to read (the job's
        running object, pipeline/runs/live.py); None when the job has ended."""
        self._publish = write

    def tick(self) -> None:
        """Show the progress if `every_s` has passed since it was last shown; publish it every
        `publish_every_s`."""
        if self.clock() - self._last_tick < self.every_s:
            return
        take = self._take
        passed, plans = take() if take is not None else ({}, {})  # a call to Ray: outside the lock, events go on
        for video, (frames, segments) in plans.items():
            self.video_planned(video, frames, segments)
        with self._lock:
            self.progress.passed(passed)
            self._last_tick = self.clock()
            snapshot = self.progress.snapshot()
            self._show_progress(snapshot)
            write = self._publish if self._last_tick - self._last_published >= self.publish_every_s else None
            document = {**asdict(snapshot), "videos": self.progress.unfinished()} if write else None
        if write is not None and document is not None:  # a write to the store: outside the lock too
            self._last_published = self._last_tick
            try:
                write(document)
            except (OSError, PssrError) as exc:  # progress for status is worth no failure of the job
                log.debug("publishing progress: %s", exc)

    def _show_progress(self, snapshot: Snapshot) -> None:
        log.info("progress: %s", snapshot.line())

    def _close(self) -> None:
        """The job is over: leave the output as it should stay."""

    # ---- the job's events
    def job_started(self, job_id: str, input_uri: str, output_uri: str) -> None:
        with self._lock:
            self.job_id, self.input, self.output = job_id, input_uri, output_uri
            set_job_id(job_id)  # on every log record from here on
            if self.job_log is not None:
                self.job_log.open(job_log_path(output_uri, job_id))
            log_path = None if self.job_log is None or self.job_log.path is None else str(self.job_log.path)
            self._event("job_started", None, input=input_uri, output=output_uri, log=log_path)

    def listed(self, to_process: int) -> None:
        with self._lock:
            self.progress.listed(to_process)
            line = f"job {self.job_id}: {to_process} video(s) to process from {self.input} -> {self.output}"
            if self.job_log is not None and self.job_log.path is not None:
                line += f"; log {self.job_log.path}"
            self._event("listed", line, videos=to_process, skipped=self.progress.videos_skipped)

    def video_skipped(self, video: str, reason: str) -> None:
        with self._lock:
            self.progress.skipped()
            self._event("video_skipped", f"skip   {video}: {reason}", video=video, reason=reason)

    def video_planned(self, video: str, frames: int, segments: int) -> None:
        """Told by the progress board or by the video's first segment back, whichever comes first."""
        with self._lock:
            if self.progress.planned(video, frames, segments):
                self._event("video_planned", None, video=video, frames=frames, segments=segments)

    def segment_done(self, video: str, index: int, frames: int, reused: bool) -> None:
        with self._lock:
            self.progress.segment_done(video, index, frames, reused)

    def started_up(self, seconds: float, imports_s: float | None, ray_s: float, pools_s: float) -> None:
        """Both pools have a model loaded: the job's fixed cost, apart from its work. The parts follow
        one another: the imports (None: not known), Ray's start, then the listing and the pools'
        actors loading their models."""
        parts = ([] if imports_s is None else [f"imports {imports_s:.1f} s"]) + [f"Ray {ray_s:.1f} s"]
        line = f"started up in {seconds:.1f} s: {', '.join(parts)}, listing and the pools' models {pools_s:.1f} s"
        self.event("started_up", line, seconds=seconds, imports_s=imports_s, ray_s=ray_s, pools_s=pools_s)

    def first_output(self, seconds: float) -> None:
        """The job's first chunk is written: how long the start took (Ray, actors, planning, the first segment)."""
        self.event("first_output", f"first chunk written {seconds:.1f} s after the start", seconds=seconds)

    def video_ok(self, video: str, output: str, frames: int) -> None:
        with self._lock:
            self.progress.finished(video, ok=True)
            self._event("video_ok", f"ok     {video} -> {output}", video=video, output=output, frames=frames)

    def video_failed(self, video: str, error: str) -> None:
        with self._lock:
            self.progress.finished(video, ok=False)
            self._event("video_failed", f"FAILED {video}: {error}", video=video, error=error)

    def event(self, name: str, line: str, **fields: Any) -> None:
        """Any other event worth a line (sync: a lease taken over)."""
        with self._lock:
            self._event(name, line, **fields)

    def message(self, line: str) -> None:
        self.event("message", line, text=line)

    def finished(self, summary: JobSummary, exit_status: int, lines: list[str]) -> None:
        """The job's closing lines (JsonReporter: the summary object)."""
        with self._lock:
            self._close()
            for line in lines:
                self.echo(line)

    def _event(self, name: str, line: str | None, **fields: Any) -> None:
        if line is not None:
            self.echo(line)


class TerminalReporter(Reporter):
    """Event lines through `echo` (stdout) above one status line on `err`, a terminal."""

    def __init__(
        self,
        echo: Callable[[str], None],
        err: TextIO,
        clock: Callable[[], float] = time.monotonic,
        job_log: JobLog | None = None,
    ) -> None:
        super().__init__(echo, clock, every_s=REDRAW_EVERY_S, job_log=job_log)
        self.err = err
        self._drawn: str | None = None  # the status line on the terminal now
        self._clearing = _ClearBeforeLog(self)

    def __enter__(self) -> Self:
        # A log record written over the status line would share its line: clear it first.
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._clearing)
        return super().__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        super().__exit__(kind, exc, tb)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._clearing)

    def _show_progress(self, snapshot: Snapshot) -> None:
        # One terminal row, never wrapped: `\r` only goes back to the start of the row it is on.
        line = snapshot.line()[: max(shutil.get_terminal_size().columns - 1, 1)]
        if line != self._drawn:
            self.err.write("\r\x1b[K" + line)
            self.err.flush()
            self._drawn = line

    def clear(self) -> None:
        with self._lock:
            if self._drawn is not None:
                self.err.write("\r\x1b[K")
                self.err.flush()
                self._drawn = None

    def _close(self) -> None:
        self.clear()

    def _event(self, name: str, line: str | None, **fields: Any) -> None:
        if line is not None:
            self.clear()
            self.echo(line)  # the status line comes back at the next tick


class _ClearBeforeLog(logging.Filter):
    def __init__(self, reporter: TerminalReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def filter(self, record: logging.LogRecord) -> bool:
        self.reporter.clear()
        return True


class JsonReporter(Reporter):
    """JSON Lines on `stream`: one object per event, each with its `event`, `job_id` and `ts` (ISO 8601, UTC)."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = PROGRESS_EVERY_S,
        job_log: JobLog | None = None,
    ) -> None:
        super().__init__(lambda _: None, clock, every_s, job_log)
        self.stream = stream

    def _show_progress(self, snapshot: Snapshot) -> None:
        self._event("progress", None, **asdict(snapshot))

    def finished(self, summary: JobSummary, exit_status: int, lines: list[str]) -> None:
        with self._lock:
            self._event("summary", None, **asdict(summary), exit_status=exit_status)

    def _event(self, name: str, line: str | None, **fields: Any) -> None:
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self.stream.write(json.dumps({"event": name, "job_id": self.job_id, "ts": ts, **fields}) + "\n")
        self.stream.flush()


class QuietReporter(Reporter):
    """Nothing at all: the exit status tells, and a failed video's ERROR log record says why."""

    def __init__(self, job_log: JobLog | None = None) -> None:
        super().__init__(lambda _: None, job_log=job_log)

    def _show_progress(self, snapshot: Snapshot) -> None:
        pass

    def finished(self, summary: JobSummary, exit_status: int, lines: list[str]) -> None:
        pass


def console_reporter(echo: Callable[[str], None], err: TextIO, job_log: JobLog | None = None) -> Reporter:
    """For people: a status line on `err` when it is a terminal; otherwise plain lines, and a
    progress log record every PROGRESS_EVERY_S (a scheduled job's log)."""
    return TerminalReporter(echo, err, job_log=job_log) if err.isatty() else Reporter(echo, job_log=job_log)


@contextlib.contextmanager
def reserved_stdout() -> Iterator[TextIO]:
    """A stream to the real stdout, for JSON Lines; while it is open, everything else written to
    stdout goes to stderr instead: Python's prints (Ray echoes its workers' stdout on the driver's
    sys.stdout) and, when stdout is a file descriptor, C libraries' writes and child processes'."""
    out = sys.stdout
    try:
        fd = out.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # an in-memory stream (click's test runner)
        with contextlib.redirect_stdout(sys.stderr):
            yield out
        return
    out.flush()
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    reserved = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield reserved
    finally:
        reserved.close()
        os.dup2(saved, fd)
        os.close(saved)
