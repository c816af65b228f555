"""Sharded planning on Ray: range tasks (actors/plan.py: range_scanner) reading a stored video,
locally and from S3, give the serial scan's plan; a range task that fails leaves a serial scan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from actors.plan import plan_stored_video, range_scanner
from pipeline.config import load_job_spec
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
