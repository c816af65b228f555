"""What users see while a job runs (jobs/run/progress.py, jobs/run/reporters.py, jobs/run/logs.py,
actors/progress.py, jobs/run/ray_cluster.py): the progress model's arithmetic on an injected clock,
the terminal and plain renderings, JSON Lines, log records with the job id, the job's log file and
Ray Data's memory warning; the light stage's passes through a real progress board and a real job;
and `pssr run` / `pssr run --json` / `pssr sync --quiet` end to end on the test's Ray cluster."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import ray

from ray.data._internal.issue_detection.detectors.high_memory_detector import (
    HIGH_MEMORY_FINAL_WARNING,
    HIGH_MEMORY_PERIODIC_WARNING,
    _format_message,
)

from actors.light import LightStage
from actors.progress import ProgressBoard
from actors.strong import StrongStage
from jobs.run.job import run_job
from jobs.run.logs import JobIdFilter, JsonFormatter, TextFormatter, set_job_id
from jobs.run.progress import RATE_WINDOW_S, JobProgress
from jobs.run.ray_cluster import ISSUES_LOGGER, MemoryNotice
from jobs.run.reporters import JsonReporter, Reporter, TerminalReporter, console_reporter
from jobs.run.summary import JobSummary
from pipeline.config import PoolSpec, load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.runs.live import read_live
from pipeline.storage import Storage, StorageError
from tests.actors.segments import decoded
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


def test_rate_is_frames_worked_over_the_jobs_time_and_eta_the_remaining_frames_at_that_rate():
    clock = Clock()
    progress = JobProgress(clock)
    progress.listed(3)
    clock.now += 5  # listing and Ray's start-up: part of the job's time
    progress.planned("a", frames=100, segments=4)
    progress.planned("b", frames=60, segments=2)
    before = progress.snapshot()
    assert (before.frames_per_s, before.recent_frames_per_s, before.eta_s) == (None, None, None)  # no frames yet
    clock.now += 10
    progress.segment_done("a", 0, 25, reused=False)
    progress.segment_done("b", 0, 30, reused=True)  # reused: done, but no work of this run's
    clock.now += 10
    progress.segment_done("a", 1, 25, reused=False)

    snap = progress.snapshot()
    assert snap.frames_per_s == pytest.approx(50 / 25)
    assert snap.recent_frames_per_s == pytest.approx(25 / 10)  # from the first frames on: no start-up
    # The third video is not planned yet: it counts as the mean of the planned ones.
    frames_total = 100 + 60 + (100 + 60) // 2
    assert (snap.frames_done, snap.frames_total) == (80, frames_total)
    assert snap.eta_s == pytest.approx((frames_total - 80) / (25 / 10))
    assert (snap.segments_done, snap.segments_total, snap.videos_total) == (3, 6, 3)
    assert snap.elapsed_s == pytest.approx(25)
    assert snap.line() == (
        "0m25s frames 80/240 (33%), 2.0 frames/s, ETA 1m04s; "
        "videos 0/3 (0 ok, 0 failed, 0 skipped), segments 3/6"
    )


def test_the_recent_rate_follows_the_last_stretch_and_a_stall_keeps_the_eta():
    clock = Clock()
    progress = JobProgress(clock, window_s=RATE_WINDOW_S)
    progress.listed(1)
    progress.planned("a", frames=10_000, segments=100)
    for index in range(10):  # fast at first: 100 frames/s
        clock.now += 1
        progress.segment_done("a", index, 100, reused=False)
    fast = progress.snapshot()
    for index in range(10, 20):  # then slow: 10 frames/s, for more than a window
        clock.now += 10
        progress.segment_done("a", index, 100, reused=False)

    slow = progress.snapshot()
    assert fast.recent_frames_per_s == pytest.approx(100) == fast.frames_per_s
    # The samples older than the window are gone, but for the one just before it; the job's rate keeps them.
    assert slow.recent_frames_per_s == pytest.approx(10)
    assert slow.frames_per_s == pytest.approx(2000 / 110)
    assert slow.eta_s == pytest.approx(8000 / 10)  # the recent pace
    assert "2000/10000 (20%), 18.2 frames/s (last 60 s: 10.0), ETA 13m20s" in slow.line()
    clock.now += 2 * RATE_WINDOW_S  # stalled (a long segment in the strong stage): no recent frames
    stalled = progress.snapshot()
    assert stalled.recent_frames_per_s == 0
    # The ETA stays, at the whole job's pace.
    assert stalled.eta_s == pytest.approx(8000 / (2000 / (110 + 2 * RATE_WINDOW_S)))


def test_frames_count_as_the_light_stage_passes_them_once_each_whatever_the_retries():
    progress = JobProgress(Clock())
    progress.listed(1)
    progress.planned("a", frames=64, segments=2)
    progress.passed({("a", 0): 8})
    assert progress.snapshot().frames_done == 8
    progress.passed({("a", 0): 16, ("a", 1): 8})
    assert progress.snapshot().frames_done == 24
    progress.passed({("a", 0): 8})  # segment 0 retried (a lost actor): its first try's 16 stand
    assert progress.snapshot().frames_done == 24
    progress.passed({("a", 0): 32})  # the retry goes past them: only the frames beyond count
    assert progress.snapshot().frames_done == 40
    progress.segment_done("a", 0, 32, reused=False)  # delivered: nothing left of it to add
    progress.passed({("a", 0): 32, ("b", 0): 5})  # a late report, and one of a video not open: ignored
    progress.segment_done("a", 0, 32, reused=False)  # delivered twice (at least once delivery)
    snap = progress.snapshot()
    assert (snap.frames_done, snap.segments_done) == (40, 1)
    progress.segment_done("a", 1, 32, reused=False)  # 8 of its frames were counted from passes
    progress.finished("a", ok=True)
    done = progress.snapshot()
    assert (done.frames_done, done.frames_total, done.segments_done, done.segments_total) == (64, 64, 2, 2)
    assert progress.frames_worked == 64


def test_a_failed_video_keeps_the_frames_its_passes_counted_and_drops_the_rest():
    progress = JobProgress(Clock())
    progress.listed(1)
    progress.planned("a", frames=64, segments=2)
    progress.passed({("a", 0): 16})
    progress.finished("a", ok=False)
    snap = progress.snapshot()
    assert (snap.frames_done, snap.frames_total, snap.segments_done, snap.segments_total) == (16, 16, 0, 0)


def test_failed_and_skipped_videos_leave_the_totals_consistent():
    progress = JobProgress(Clock())
    progress.skipped()  # done by an earlier run, reported while listing
    progress.listed(4)
    progress.planned("a", frames=40, segments=4)
    progress.planned("b", frames=20, segments=2)
    progress.segment_done("a", 0, 10, reused=False)
    progress.finished("a", ok=False)  # its other three segments will not come
    progress.finished("c", ok=False)  # failed before it had a plan
    progress.skipped()  # sync: leased by another run; it was among the four listed
    progress.segment_done("b", 0, 10, reused=False)
    progress.segment_done("b", 1, 10, reused=False)
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
    reporter.started_up(9.5, 2.0, 3.0, 4.5)
    reporter.video_planned("in/a.mp4", frames=48, segments=2)
    reporter.video_planned("in/b.mp4", frames=24, segments=1)
    clock.now += 4
    reporter.segment_done("in/a.mp4", 0, 24, reused=False)
    reporter.first_output(4.0)
    reporter.segment_done("in/a.mp4", 1, 24, reused=False)
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
        "started up in 9.5 s: imports 2.0 s, Ray 3.0 s, listing and the pools' models 4.5 s",
        "first chunk written 4.0 s after the start",
        "ok     in/a.mp4 -> out/a_x4.mp4",
        "FAILED in/b.mp4: MediaError: cannot open",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"progress: {reporter.progress.snapshot().line()}"]
    assert "frames 48/48 (100%)" in caplog.records[0].getMessage()
    assert caplog.records[0].getMessage().endswith("videos 3/3 (1 ok, 1 failed, 1 skipped), segments 2/2")
    reporter.finished(JobSummary("J1", "out/"), 1, ["closing line"])
    assert lines[-1] == "closing line"


def test_a_terminal_gets_one_status_line_redrawn_below_the_event_lines(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "200")  # the status line is cut to the terminal's width
    clock, err, lines = Clock(), Stream(tty=True), []
    reporter = TerminalReporter(lines.append, err, clock)
    assert type(console_reporter(lines.append, err)) is TerminalReporter
    reporter.job_started("J1", "in/", "out/")
    reporter.listed(2)
    reporter.started_up(9.5, 2.0, 3.0, 4.5)
    reporter.video_planned("in/a.mp4", frames=48, segments=2)
    planned_at = clock.now
    clock.now += reporter.every_s
    reporter.tick()
    drawn = err.getvalue()
    assert drawn.startswith("\r\x1b[K") and "frames 0/96 (0%), - frames/s, ETA -;" in drawn
    assert "\n" not in drawn  # redrawn in place
    clock.now += reporter.every_s
    reporter.tick()  # due, but the line is the same: not written again
    assert err.getvalue() == drawn

    reporter.segment_done("in/a.mp4", 0, 24, reused=False)
    reporter.tick()  # a quarter second has not passed: not redrawn
    assert err.getvalue() == drawn
    reporter.video_failed("in/b.mp4", "MediaError: cannot open")
    # The status line is cleared before the event line is printed above where it was.
    assert err.getvalue() == drawn + "\r\x1b[K" and lines[-1] == "FAILED in/b.mp4: MediaError: cannot open"
    clock.now = planned_at + 4
    reporter.tick()
    assert "frames 24/48 (50%), 6.0 frames/s, ETA 0m04s;" in err.getvalue()  # b's frames are gone from the total

    reporter.finished(JobSummary("J1", "out/"), 1, ["summary"])
    assert err.getvalue().endswith("\r\x1b[K") and lines[-1] == "summary"


def test_each_tick_takes_the_light_stages_passes_and_the_plans_from_the_job():
    clock = Clock()
    reporter = Reporter(lambda _: None, clock)
    reports = [
        ({("in/a.mp4", 0): 10}, {"in/a.mp4": (48, 2)}),
        ({("in/a.mp4", 0): 20, ("in/a.mp4", 1): 4}, {}),
    ]
    reporter.follow(lambda: reports.pop(0))
    reporter.listed(1)
    reporter.tick()  # not due: the job is not asked
    assert len(reports) == 2
    clock.now += reporter.every_s
    reporter.tick()
    assert reporter.progress.snapshot().frames_done == 10
    assert reporter.progress.snapshot().frames_total == 48  # planned, as the board said
    reporter.video_planned("in/a.mp4", frames=48, segments=2)  # and again by its first segment: counted once
    assert reporter.progress.snapshot().frames_total == 48
    clock.now += reporter.every_s
    reporter.tick()
    assert reporter.progress.snapshot().frames_done == 24
    reporter.follow(None)  # the job is over: nothing more is taken (the list is empty: a call would raise)
    clock.now += reporter.every_s
    reporter.tick()
    assert reporter.progress.snapshot().frames_done == 24


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
        "video_skipped", "job_started", "listed", "started_up", "video_planned", "video_planned", "first_output",
        "video_ok", "video_failed", "progress", "summary",
    ]  # fmt: skip
    assert events[0]["job_id"] is None and {e["job_id"] for e in events[1:]} == {"J1"}
    for event in events:
        assert datetime.fromisoformat(event["ts"]).utcoffset().total_seconds() == 0
    assert (events[3]["seconds"], events[3]["imports_s"], events[3]["ray_s"], events[3]["pools_s"]) == (9.5, 2, 3, 4.5)
    assert events[6]["seconds"] == 4.0
    ok = events[7]
    assert (ok["video"], ok["output"], ok["frames"]) == ("in/a.mp4", "out/a_x4.mp4", 48)
    assert events[8]["error"] == "MediaError: cannot open"
    progress = events[9]
    assert (progress["videos_ok"], progress["videos_failed"], progress["frames_done"]) == (1, 1, 48)
    assert progress["frames_per_s"] == pytest.approx(48 / (4 + reporter.every_s))
    assert events[10]["exit_status"] == 1 and events[10]["videos_failed"] == {"b.mp4": "MediaError: cannot open"}


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


def test_rays_memory_warning_becomes_one_line_saying_what_to_change(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """Ray Data's own text (its high-memory detector's, as it formats it) on its own logger."""
    periodic = _format_message(
        HIGH_MEMORY_PERIODIC_WARNING.format(
            op_name="MapBatches(StrongStage)", memory_per_task="4.9GiB", max_memory="5.1GiB",
            initial_memory_request="0.0B", recommended_memory="6.4GiB", recommended_memory_bytes=6871947674,
            detection_time_interval_s=30,
        )
    )  # fmt: skip
    final = _format_message(
        HIGH_MEMORY_FINAL_WARNING.format(
            op_name="Map(decode_segment)", max_memory="3.2GiB", memory_configuration="1.0GiB",
            recommended_memory="4.0GiB", recommended_memory_bytes=4294967296,
        )
    )  # fmt: skip
    issues, notice = logging.getLogger(ISSUES_LOGGER), MemoryNotice()
    hidden = []
    catch = logging.Handler()
    catch.emit = lambda record: hidden.append(getattr(record, "hide", False))
    monkeypatch.setattr(issues, "filters", [notice])  # alone: a job run earlier in this process left one there
    issues.addHandler(catch)
    caplog.set_level(logging.INFO, logger="jobs.run.ray_cluster")
    try:
        for _ in range(3):  # every 30 s while it lasts
            issues.warning(periodic)
        issues.warning(final)
    finally:
        issues.removeHandler(catch)

    ours = [r for r in caplog.records if r.name == "jobs.run.ray_cluster"]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert warnings == [
        "memory: the strong pool's workers use up to 5.1GiB each, more than Ray plans for; if the node runs short, "
        "lower strong_pool.frames_per_pass or set a smaller strong_pool.tile, or run fewer actors (strong_pool.size, "
        "or more strong_pool.num_cpus or num_gpus each)",
        "memory: the decode or encode tasks (Map(decode_segment)) use up to 3.2GiB each; if the node runs short, "
        "lower segment.max_core_frames (frames per segment) or raise ray.task_cpus (fewer tasks per node)",
    ]
    # Ray's blocks: off its console handler, whole in the job's log file only.
    assert hidden == [True] * 4
    detail = [r for r in ours if r.levelno == logging.INFO]
    assert len(detail) == 4 and all(r.console is False for r in detail)
    assert detail[0].getMessage() == "Ray Data: " + periodic.strip()


def test_the_job_log_takes_everything_else_written_to_stderr(tmp_path: Path):
    """Python's, C's and a child process's writes to stderr go to the file; pssr's records to both."""
    script = textwrap.dedent(
        """
        import logging, os, subprocess, sys
        from pathlib import Path
        from jobs.run.logs import FILE_ONLY, JobLog, configure_logging
        configure_logging(False, "text")
        with JobLog() as job_log:
            job_log.open(Path(sys.argv[1]))
            os.write(2, b"[E core_worker.cc] a C++ line\\n")
            print("a Python write", file=sys.stderr)
            subprocess.run(["sh", "-c", "echo a child process >&2"], check=True)
            logging.getLogger("jobs.test").warning("ours")
            logging.getLogger("jobs.test").info("detail", extra=FILE_ONLY)
        print("after", file=sys.stderr)
        """
    )
    path = tmp_path / "logs" / "J1.log"
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    console = done.stderr.splitlines()
    assert len(console) == 2 and console[0].endswith(" WARNING jobs.test: ours") and console[1] == "after"
    logged = path.read_text().splitlines()
    assert logged[:3] == ["[E core_worker.cc] a C++ line", "a Python write", "a child process"]
    assert logged[3].endswith(" WARNING jobs.test: ours") and logged[4].endswith(" INFO jobs.test: detail")
    assert len(logged) == 5


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


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_the_light_stage_reports_its_passes_to_the_board_and_a_retry_counts_once(tmp_path: Path):
    clip = make_clip(tmp_path / "c.mp4", frames=20, size=(32, 24))
    board = ProgressBoard.remote()
    segment = decoded(clip, (4, 14), (7, 12))  # 5 core frames
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(segment)
    strong = segment.hr.copy()
    light = LightStage("tiny", 2, "cpu", PoolSpec(frames_per_pass=2), None, None, progress=board)
    assert list(ray.get(board.ready_at.remote())) == ["light"]  # its model loaded: the job's start-up
    light.process(segment)
    board.planned.remote(str(clip), 20, 4)  # as the planning stage tells it
    assert ray.get(board.take.remote()) == ({(str(clip), 0): 5}, {str(clip): (20, 4)})
    assert ray.get(board.take.remote()) == ({}, {})  # taken: what came in since

    board.passed.remote(str(clip), 0, 4)  # a try reached 4 frames ...
    segment.hr = strong
    light.process(segment)  # ... and the retry reports 2, 4, 5 again
    assert ray.get(board.take.remote()) == ({(str(clip), 0): 5}, {})


class Ticking(Reporter):
    """Takes the light stage's passes (a tick, publishing the progress) as each segment is
    delivered, noting what they added and what `pssr status` would read under `output` then."""

    def __init__(self, output: Path) -> None:
        super().__init__(lambda _: None, every_s=0.0)
        self.publish_every_s = 0.0
        self.output = str(output)
        self.ahead: list[int] = []  # frames counted from passes beyond the delivered segments'
        self.delivered = 0
        self.live: list[list[dict]] = []

    def segment_done(self, video: str, index: int, frames: int, reused: bool) -> None:
        self.tick()
        self.live.append(read_live(Storage(), self.output))
        self.ahead.append(self.progress.snapshot().frames_done - self.delivered)
        self.delivered += frames
        super().segment_done(video, index, frames, reused)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_a_jobs_progress_counts_the_light_stages_passes_and_every_frame_once(tmp_path: Path):
    src = make_clip(tmp_path / "a.mp4", frames=24, size=(48, 32))
    spec = load_job_spec(
        None,
        {"input": str(src), "output": str(tmp_path / "out"), "scale": 2, "segment.max_core_frames": 8,
         "segment.detect_scenes": False, "light_pool.frames_per_pass": 4},
    )  # fmt: skip
    reporter = Ticking(tmp_path / "out")
    summary = run_job(spec, report=reporter)

    assert summary.ok and summary.frames == 24
    assert summary.first_output_s is not None and 0 < summary.first_output_s <= summary.wall_s
    # Started up once both pools' models were loaded: no imports counted without the CLI's process start.
    assert summary.startup_s is not None and 0 < summary.startup_s < summary.first_output_s
    # The light stage had reported (some of) a segment's frames before the segment came out of encode.
    assert len(reporter.ahead) == 3 and max(reporter.ahead) > 0
    snap = reporter.progress.snapshot()
    assert (snap.frames_done, snap.frames_total, snap.segments_done) == (24, 24, 3)  # nothing counted twice
    assert reporter._take is None  # the job let go of its board
    # While it ran, the job's progress object said how far the video was; gone once it ended.
    assert [len(seen) for seen in reporter.live] == [1, 1, 1]
    assert all(seen[0]["job_id"] == summary.job_id for seen in reporter.live)
    videos = [seen[0]["videos"] for seen in reporter.live]
    assert all(v[0]["video"] == str(src) and v[0]["frames"] == 24 for v in videos)
    assert [v[0]["segments_done"] for v in videos] == [0, 1, 2]
    assert read_live(Storage(), str(tmp_path / "out")) == []


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_run_shows_its_own_lines_and_keeps_rays_in_the_job_log(inputs: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = pssr("run", str(inputs), str(out), "--scale", "2")

    assert done.returncode == 1, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("job ") and first.endswith(".log")
    log_path = Path(first.rpartition("; log ")[2])
    assert log_path.parent == out / "_pssr" / "logs"
    assert "first chunk written " in done.stdout and ", first chunk after " in done.stdout
    # The start-up on its own line, its parts adding up (imports: the CLI's process started before the job).
    figure = r"([\d.]+) s"
    started = re.search(
        rf"started up in {figure}: imports {figure}, Ray {figure}, listing and the pools' models {figure}", done.stdout
    )
    assert started is not None, done.stdout
    total, *parts = (float(x) for x in started.groups())
    assert all(part > 0 for part in parts) and abs(total - sum(parts)) <= 0.15
    assert f"(started up in {started.group(1)} s, first chunk after " in done.stdout
    # The console's stderr: pssr's records only (the failed video, and a progress record every 30 s
    # on a slow machine), none of Ray's lines.
    console = [line for line in done.stderr.splitlines() if line.strip() and "]: progress: " not in line]
    assert len(console) == 1 and " ERROR jobs.run.job [job " in console[0] and "broken.mp4" in console[0]
    assert all(" jobs.run." in line for line in done.stderr.splitlines() if line.strip())
    logged = log_path.read_text()
    assert "Progress bars disabled" in logged  # Ray Data's warning, on the driver
    assert "Ray's session logs" in logged and console[0] in logged


def test_progress_is_published_every_period_with_the_unfinished_videos():
    clock, published = Clock(), []
    reporter = Reporter(lambda _: None, clock, every_s=1.0)
    reporter.publish(published.append)
    reporter.job_started("J1", "in/", "out/")
    reporter.listed(2)
    reporter.started_up(9.5, 2.0, 3.0, 4.5)
    reporter.video_planned("in/a.mp4", frames=48, segments=2)
    reporter.video_planned("in/b.mp4", frames=24, segments=1)
    clock.now += 1
    reporter.tick()
    reporter.segment_done("in/a.mp4", 0, 24, reused=False)
    clock.now += 1
    reporter.tick()  # shown, not published: a period has not passed
    clock.now += reporter.publish_every_s
    reporter.tick()

    assert len(published) == 2
    first, last = published
    assert first["frames_done"] == 0 and last["frames_done"] == 24 and last["frames_total"] == 72
    assert last["videos"] == [
        {"video": "in/a.mp4", "frames_done": 24, "frames": 48, "segments_done": 1, "segments": 2},
        {"video": "in/b.mp4", "frames_done": 0, "frames": 24, "segments_done": 0, "segments": 1},
    ]

    def refuse(_: dict) -> None:
        raise StorageError("out/_pssr/running/J1.json: access denied")

    reporter.publish(refuse)  # a store that refuses the write costs the progress object only
    clock.now += reporter.publish_every_s
    reporter.tick()
    reporter.publish(None)
    clock.now += reporter.publish_every_s
    reporter.tick()
    assert len(published) == 2
