"""One streaming Dataset per job: each video is planned as the pipeline reaches it, and a video is
stitched as soon as its last segment is back, whatever the others are doing. A video whose
planning is held up (here its input cannot be opened until the other video's output exists)
holds up no other: with planning done in a batch before any upscaling, this job would deadlock."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from jobs.run.job import Job
from jobs.run.reporters import Reporter
from pipeline.config import load_job_spec
from pipeline.storage import Storage
from tests.clips import make_clip

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

GATE_TIMEOUT_S = 120.0


class GatedStorage(Storage):
    """Local storage whose `slow.mp4` the Ray workers cannot open until `gate` exists (the test's
    driver and the workers share the file system); the driver reads it at once (its header)."""

    def __init__(self, gate: Path) -> None:
        super().__init__()
        self.gate, self.driver_pid = gate, os.getpid()

    def open_read(self, uri: str, version: str | None = None) -> BinaryIO:
        if uri.endswith("slow.mp4") and os.getpid() != self.driver_pid:
            deadline = time.monotonic() + GATE_TIMEOUT_S
            while not self.gate.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        return super().open_read(uri, version)


class Opening(Reporter):
    """Notes the job's events in order; opens the gate once fast.mp4 is finished."""

    def __init__(self, gate: Path) -> None:
        super().__init__(lambda _: None)
        self.gate = gate
        self.seen: list[tuple[str, str]] = []

    def _event(self, name: str, line: str | None, **fields: Any) -> None:
        video = Path(str(fields.get("video", ""))).name
        self.seen.append((name, video))
        if (name, video) == ("video_ok", "fast.mp4"):
            self.gate.touch()


def test_a_video_held_up_in_planning_holds_up_no_other(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "fast.mp4", frames=8, size=(32, 24))
    make_clip(src / "slow.mp4", frames=8, size=(32, 24))
    gate = tmp_path / "gate"
    spec = load_job_spec(None, {"input": str(src), "output": str(tmp_path / "out"), "scale": 2})
    reporter = Opening(gate)
    job = Job(spec, report=reporter)
    job.storage = GatedStorage(gate)

    summary = job.run()

    assert summary.ok and sorted(summary.videos_ok) == ["fast.mp4", "slow.mp4"]
    order = reporter.seen
    # fast.mp4 went through every stage and was stitched while slow.mp4 was still being planned.
    assert order.index(("video_ok", "fast.mp4")) < order.index(("video_planned", "slow.mp4"))
    assert order.index(("video_planned", "slow.mp4")) < order.index(("video_ok", "slow.mp4"))
