"""Sharded planning on Ray: range tasks (actors/plan.py: range_scanner) reading a stored video,
locally and from S3, give the serial scan's plan; a range task that fails leaves a serial scan; a
job upscales the segments planned before the scan ends."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.dataset as pads
import pytest

from actors.plan import plan_stored_video, plan_video_segments, range_scanner, video_row
from jobs.run.job import run_job
from pipeline.config import load_job_spec
from pipeline.media import probe_video
from pipeline.segment import COUNT_NOT_YET_KNOWN
from pipeline.storage import Storage
from tests.clips import make_clip

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


def test_range_tasks_give_the_serial_plan(storage_root: tuple[Storage, str], tmp_path):
    storage, root = storage_root
    clip = make_clip(tmp_path / "long.mp4", frames=240, gop=12, scene_cut_at=[48, 100, 170], audio_streams=1)
    uri = f"{root}/long.mp4"
    storage.upload(str(clip), uri)
    spec = load_job_spec(None, {"input": uri, "output": f"{root}/out", "segment.range_frames": 30})
    serial, error = plan_stored_video(storage, uri, spec, 2)
    assert error == "" and serial is not None and serial.probe.planning == "serial"
    shared, error = plan_stored_video(storage, uri, spec, 2, None, range_scanner(storage, uri, spec))
    assert error == "" and shared is not None
    assert shared.probe.planning == "sharded: 7 ranges"
    assert replace(shared, probe=replace(shared.probe, planning="serial")) == serial
    assert len(serial.probe.cuts) == 3 and serial.probe.sha256 is not None


def test_a_range_task_that_fails_leaves_a_serial_scan(tmp_path):
    storage = Storage()
    clip = make_clip(tmp_path / "long.mp4", frames=120, gop=12)
    spec = load_job_spec(None, {"input": str(clip), "output": str(tmp_path / "out"), "segment.range_frames": 30})
    # The range tasks read another path, where nothing is: each fails, and the plan is still made.
    scanner = range_scanner(storage, str(tmp_path / "moved.mp4"), spec)
    plan, error = plan_stored_video(storage, str(clip), spec, 2, None, scanner)
    assert error == "" and plan is not None and len(plan.segments) == 3
    assert plan.probe.planning.startswith("serial: a range failed: ") and "moved.mp4" in plan.probe.planning


def test_a_job_upscales_segments_planned_before_the_scan_ends(tmp_path):
    """A video's first segments leave the planning stage before its last range is scanned, not
    knowing yet how many segments the video has; the last ones carry the count and the whole probe,
    and the job stitches every frame and writes the count to each segment row."""
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "long.mp4", frames=120, gop=12, scene_cut_at=[70], audio_streams=1)
    out = tmp_path / "out"
    spec = load_job_spec(
        None,
        {
            "input": str(clip.parent), "output": str(out), "scale": 2, "models.strong": "bicubic",
            "models.light": "none", "segment.max_core_frames": 8, "segment.range_frames": 24,
        },
    )  # fmt: skip
    version = Storage().stat(str(clip)).version  # type: ignore[union-attr]
    row = video_row("long.mp4", str(clip), None, str(tmp_path / "staging"), version, str(out / "long_x2.mp4"))
    batches = list(plan_video_segments(row, Storage(), spec, 2))
    counts = [{s.segment_count for s in batch} for batch in batches]
    assert len(batches) > 1 and counts[0] == {COUNT_NOT_YET_KNOWN} and counts[-1] == {16}
    assert batches[-1][0].probe.planning == "sharded: 5 ranges" and batches[0][0].probe.cuts == []
    assert sorted(s.segment_index for batch in batches for s in batch) == list(range(16))

    summary = run_job(spec, echo=lambda _: None)
    assert summary.ok, summary.videos_failed
    assert probe_video(out / "long_x2.mp4", detect_scenes=False).n_frames == 120
    table = pads.dataset(str(out / "_pssr" / "manifest" / "segments")).to_table()
    assert set(table.column("segment_count").to_pylist()) == {16} and table.num_rows == 16
    (video,) = pads.dataset(str(out / "_pssr" / "manifest" / "videos")).to_table().to_pylist()
    assert (video["segments"], video["planning"], video["status"]) == (16, "sharded: 5 ranges", "ok")
