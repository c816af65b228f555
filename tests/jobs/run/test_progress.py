"""What users see while a job runs (jobs/run/progress.py, jobs/run/reporters.py, jobs/run/logs.py): the progress model's arithmetic on an
injected clock, the terminal and plain renderings, JSON Lines, log records with the job id, and `pssr run
--json` / `pssr sync --quiet` end to end on the test's Ray cluster."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import ray

from jobs.run.logs import JobIdFilter, JsonFormatter, TextFormatter, set_job_id
from jobs.run.progress import RATE_WINDOW_S, JobProgress
from jobs.run.reporters import JsonReporter, Reporter, TerminalReporter, console_reporter
from jobs.run.summary import JobSummary
from pipeline.manifest.files import read_manifests
from pipeline.storage import Storage
from tests.clips import make_clip

REPO = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_rate_is_frames_worked_per_second_and_eta_the_remaining_frames_at_that_rate():
    clock = Clock()
    progress = JobProgress(clock)
    progress.listed(3)
    clock.now += 5  # listing and Ray's start-up: not part of the rate
    progress.planned("a", frames=100, segments=4)
    progress.planned("b", frames=60, segments=2)
    assert progress.snapshot().frames_per_s is None and progress.snapshot().eta_s is None  # no time, no rate
    clock.now += 10
    progress.segment_done("a", 25, reused=False)
    progress.segment_done("b", 30, reused=True)  # reused: done, but no work of this run's
    clock.now += 10
    progress.segment_done("a", 25, reused=False)

    snap = progress.snapshot()
    assert snap.frames_per_s == pytest.approx(50 / 20)
    # The third video is not planned yet: it counts as the mean of the planned ones.
    frames_total = 100 + 60 + (100 + 60) // 2
    assert (snap.frames_done, snap.frames_total) == (80, frames_total)
    assert snap.eta_s == pytest.approx((frames_total - 80) / (50 / 20))
    assert (snap.segments_done, snap.segments_total, snap.videos_total) == (3, 6, 3)
    assert snap.elapsed_s == pytest.approx(25)


def test_the_rate_follows_the_last_stretch_not_the_whole_job():
    clock = Clock()
    progress = JobProgress(clock, window_s=RATE_WINDOW_S)
    progress.listed(1)
    progress.planned("a", frames=10_000, segments=100)
    for _ in range(10):  # fast at first: 100 frames/s
        clock.now += 1
        progress.segment_done("a", 100, reused=False)
    fast = progress.snapshot().frames_per_s
    for _ in range(10):  # then slow: 10 frames/s, for more than a window
        clock.now += 10
        progress.segment_done("a", 100, reused=False)

    slow = progress.snapshot().frames_per_s
    assert fast == pytest.approx(100)
    # The samples older than the window are gone, but for the one just before it.
    assert slow == pytest.approx(10)
    clock.now += 2 * RATE_WINDOW_S  # stalled: the rate falls, the ETA grows
    stalled = progress.snapshot()
    assert stalled.frames_per_s == 0 and stalled.eta_s is None


def test_failed_and_skipped_videos_leave_the_totals_consistent():
    progress = JobProgress(Clock())
    progress.skipped()  # done by an earlier run, reported while listing
    progress.listed(4)
    progress.planned("a", frames=40, segments=4)
    progress.planned("b", frames=20, segments=2)
    progress.segment_done("a", 10, reused=False)
    progress.finished("a", ok=False)  # its other three segments will not come
    progress.finished("c", ok=False)  # failed before it had a plan
    progress.skipped()  # sync: leased by another run; it was among the four listed
    progress.segment_done("b", 10, reused=False)
    progress.segment_done("b", 10, reused=False)
    progress.finished("b", ok=True)

    snap = progress.snapshot()
    assert (snap.videos_total, snap.videos_ok, snap.videos_failed, snap.videos_skipped) == (5, 1, 2, 2)
    assert snap.videos_done == snap.videos_total
    assert (snap.frames_done, snap.frames_total) == (30, 30)
    assert (snap.segments_done, snap.segments_total) == (3, 3)


def feed(reporter: Reporter, clock: Clock) -> None:
    """One job's events: a video skipped, two planned, one done, one failed."""
    reporter.video_skipped("in/old.mp4", "done by job J0")
    reporter.job_started("J1", "in/", "out/")
    reporter.listed(2)
    reporter.video_planned("in/a.mp4", frames=48, segments=2)
    reporter.video_planned("in/b.mp4", frames=24, segments=1)
    clock.now += 4
    reporter.segment_done("in/a.mp4", 24, reused=False)
    reporter.segment_done("in/a.mp4", 24, reused=False)
    reporter.video_ok("in/a.mp4", "out/a_x4.mp4", 48)
    reporter.video_failed("in/b.mp4", "MediaError: cannot open")


def test_plain_lines_are_the_events_and_progress_is_a_log_record_every_period(caplog: pytest.LogCaptureFixture):
    clock, lines = Clock(), []
    assert type(console_reporter(lines.append, Stream(tty=False))) is Reporter
    reporter = Reporter(lines.append, clock)
    caplog.set_level(logging.INFO, logger="jobs.run.reporters")
    feed(reporter, clock)
    reporter.tick()  # not due yet
    assert not caplog.records
    clock.now += reporter.every_s
    reporter.tick()

    assert lines == [
        "skip   in/old.mp4: done by job J0",
        "job J1: 2 video(s) to process from in/ -> out/",
        "ok     in/a.mp4 -> out/a_x4.mp4",
        "FAILED in/b.mp4: MediaError: cannot open",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"progress: {reporter.progress.snapshot().line()}"]
    assert "videos 3/3 (1 ok, 1 failed, 1 skipped), segments 2/2, frames 48/48" in caplog.records[0].getMessage()
    reporter.finished(JobSummary("J1", "out/"), 1, ["closing line"])
    assert lines[-1] == "closing line"


def test_a_terminal_gets_one_status_line_redrawn_below_the_event_lines(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "200")  # the status line is cut to the terminal's width
    clock, err, lines = Clock(), Stream(tty=True), []
    reporter = TerminalReporter(lines.append, err, clock)
    assert type(console_reporter(lines.append, err)) is TerminalReporter
    reporter.job_started("J1", "in/", "out/")
    reporter.listed(2)
    reporter.video_planned("in/a.mp4", frames=48, segments=2)
    planned_at = clock.now
    clock.now += reporter.every_s
    reporter.tick()
    drawn = err.getvalue()
    assert drawn.startswith("\r\x1b[K") and drawn.endswith("frames 0/96, 0.0 frames/s, ETA -")
    assert "\n" not in drawn  # redrawn in place
    clock.now += reporter.every_s
    reporter.tick()  # due, but the line is the same: not written again
    assert err.getvalue() == drawn

    reporter.segment_done("in/a.mp4", 24, reused=False)
    reporter.tick()  # a quarter second has not passed: not redrawn
    assert err.getvalue() == drawn
    reporter.video_failed("in/b.mp4", "MediaError: cannot open")
    # The status line is cleared before the event line is printed above where it was.
    assert err.getvalue() == drawn + "\r\x1b[K" and lines[-1] == "FAILED in/b.mp4: MediaError: cannot open"
    clock.now = planned_at + 4
    reporter.tick()
    assert err.getvalue().endswith("frames 24/48, 6.0 frames/s, ETA 0m04s")  # b's frames are gone from the total

    reporter.finished(JobSummary("J1", "out/"), 1, ["summary"])
    assert err.getvalue().endswith("\r\x1b[K") and lines[-1] == "summary"


def test_a_log_record_clears_the_status_line_first(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "200")
    clock, err = Clock(), Stream(tty=True)
    handler = logging.StreamHandler(err)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with TerminalReporter(lambda _: None, err, clock) as reporter:
            clock.now += reporter.every_s
            reporter.tick()
            logging.getLogger("jobs.test").warning("a warning")
    finally:
        root.removeHandler(handler)
    assert err.getvalue() == "\r\x1b[K" + reporter.progress.snapshot().line() + "\r\x1b[Ka warning\n"


def test_json_lines_one_object_per_event_with_the_job_id_progress_and_summary():
    clock, out = Clock(), Stream(tty=False)
    reporter = JsonReporter(out, clock)
    feed(reporter, clock)
    clock.now += reporter.every_s
    reporter.tick()
    summary = JobSummary("J1", "out/", videos_ok=["a.mp4"], videos_failed={"b.mp4": "MediaError: cannot open"})
    reporter.finished(summary, 1, ["not printed"])

    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == [
        "video_skipped", "job_started", "listed", "video_planned", "video_planned", "video_ok", "video_failed",
        "progress", "summary",
    ]  # fmt: skip
    assert events[0]["job_id"] is None and {e["job_id"] for e in events[1:]} == {"J1"}
    for event in events:
        assert datetime.fromisoformat(event["ts"]).utcoffset().total_seconds() == 0
    ok = events[5]
    assert (ok["video"], ok["output"], ok["frames"]) == ("in/a.mp4", "out/a_x4.mp4", 48)
    assert events[6]["error"] == "MediaError: cannot open"
    progress = events[7]
    assert (progress["videos_ok"], progress["videos_failed"], progress["frames_done"]) == (1, 1, 48)
    assert progress["frames_per_s"] == pytest.approx(48 / (4 + reporter.every_s))
    assert events[8]["exit_status"] == 1 and events[8]["videos_failed"] == {"b.mp4": "MediaError: cannot open"}


def test_log_records_carry_the_job_id_as_text_and_as_json():
    record = logging.LogRecord("jobs.run.job", logging.ERROR, __file__, 1, "%s: failed", ("a.mp4",), None)
    set_job_id(None)
    JobIdFilter().filter(record)
    assert TextFormatter().format(record).endswith(" ERROR jobs.run.job: a.mp4: failed")
    set_job_id("J7")
    try:
        JobIdFilter().filter(record)
        assert TextFormatter().format(record).endswith(" ERROR jobs.run.job [job J7]: a.mp4: failed")
        entry = json.loads(JsonFormatter().format(record))
    finally:
        set_job_id(None)
    assert (entry["job_id"], entry["level"], entry["logger"], entry["message"]) == (
        "J7", "ERROR", "jobs.run.job", "a.mp4: failed"
    )  # fmt: skip


def test_reserved_stdout_sends_everything_else_to_stderr():
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        from jobs.run.reporters import reserved_stdout
        with reserved_stdout() as out:
            out.write("reserved\\n")
            print("python print")
            os.write(1, b"C-level write\\n")
            subprocess.run(["echo", "child process"], check=True)
        print("after")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout == "reserved\nafter\n"
    assert done.stderr.split("\n")[:3] == ["python print", "C-level write", "child process"]


def pssr(*args: str) -> subprocess.CompletedProcess[str]:
    """`pssr ARGS` in its own process, a driver on the test's Ray cluster (its workers' output reaches it)."""
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "jobs.cli.main", *args, "--ray-address", address]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=500, check=False)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "good.mp4", frames=12, size=(64, 36))
    (src / "broken.mp4").write_text("This is not a video.\n")
    return src


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_run_json_prints_only_json_lines(inputs: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = pssr("--log-format", "json", "run", str(inputs), str(out), "--scale", "2", "--json")

    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line: one JSON object
    job_id = events[0]["job_id"]
    videos, _ = read_manifests(Storage(), str(out))
    assert {row["job_id"] for row in videos.to_pylist()} == {job_id} == {e["job_id"] for e in events}
    by_name = {}
    for event in events:
        by_name.setdefault(event["event"], []).append(event)
    assert [(e["video"], e["output"], e["frames"]) for e in by_name["video_ok"]] == [
        (str(inputs / "good.mp4"), str(out / "good_x2.mp4"), 12)
    ]
    [failed] = by_name["video_failed"]
    assert failed["video"] == str(inputs / "broken.mp4") and "cannot open" in failed["error"]
    [summary] = by_name["summary"]
    assert summary == events[-1] and summary["exit_status"] == 1
    assert summary["videos_ok"] == ["good.mp4"] and list(summary["videos_failed"]) == ["broken.mp4"]
    # The log records on stderr are JSON too, and carry the job id.
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"ts"')]
    errors = [r for r in records if r["level"] == "ERROR"]
    assert [(r["job_id"], "broken.mp4" in r["message"]) for r in errors] == [(job_id, True)]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_sync_quiet_prints_nothing_but_the_error(inputs: Path, tmp_path: Path):
    done = pssr("sync", str(inputs), str(tmp_path / "out"), "--scale", "2", "--quiet")

    assert done.returncode == 1
    assert done.stdout == ""
    assert (tmp_path / "out" / "good_x2.mp4").exists()
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"{inputs / 'broken.mp4'}: failed: MediaError: cannot open" in errors[0]
    assert " INFO " not in done.stderr and " WARNING jobs." not in done.stderr
