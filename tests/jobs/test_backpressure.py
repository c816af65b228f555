"""Backpressure: with a light pool much slower than the strong pool, the frames waiting between
stages stay within the job's Ray Data budget (`ray.segments_in_flight` segments) instead of the
strong pool running ahead through the whole video.

Measured from outside the job: the cluster's object-store use (the `object_store_memory`
resource Ray reports as free), sampled while the job runs. The session's cluster has the
default object store (30 % of RAM), so Ray Data's own default budget, half of it, would let
nearly every segment pile up here.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pyarrow.dataset as pads
import pytest
import ray

from jobs.run.dataset import segment_bytes
from jobs.run.job import run_job
from pipeline.config import load_job_spec
from tests.clips import make_clip

if TYPE_CHECKING:
    from typing_extensions import Self

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

SEGMENTS = 30
SEGMENT_FRAMES = 8
IN_FLIGHT = 4


class ObjectStoreSampler:
    """Peak object-store use above what it was before, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.baseline = self.used()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def used() -> float:
        return ray.cluster_resources()["object_store_memory"] - ray.available_resources().get("object_store_memory", 0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.used() - self.baseline)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_slow_light_pool_holds_the_strong_pool_back(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "long.mp4", frames=SEGMENTS * SEGMENT_FRAMES, size=(64, 36))
    spec = load_job_spec(
        None,
        {
            "input": str(clip),
            "output": str(tmp_path / "out"),
            "segment.max_core_frames": SEGMENT_FRAMES,
            # A fast strong stage (bicubic) before a slow light one: the tiny CNN at HR, one
            # frame per call on one thread, in a single actor.
            "models.strong": "bicubic",
            "light_pool.size": 1,
            "light_pool.frames_per_pass": 1,
            "light_pool.torch_threads": 1,
            "ray.segments_in_flight": IN_FLIGHT,
        },
    )
    with ObjectStoreSampler() as store:
        summary = run_job(spec)
    assert summary.ok and summary.frames == SEGMENTS * SEGMENT_FRAMES

    segments = pads.dataset(str(tmp_path / "out/_pssr/manifest/segments"), format="parquet").to_table().to_pylist()
    assert len(segments) == SEGMENTS
    # The premise: the light stage is the bottleneck, so an unbounded strong stage would run ahead.
    assert sum(s["light_s"] for s in segments) > 1.5 * sum(s["strong_s"] for s in segments)
    # One segment's frames as the job counts them: decoded LR (context included) + HR core, RGB uint8.
    segment = max(segment_bytes(SimpleNamespace(**s), spec) for s in segments)
    # The budget, plus the block Ray Data lets through a full budget so that a stage with nothing
    # to do can go on (its liveness guard), once upstream and once downstream of the slow stage.
    assert store.peak <= (IN_FLIGHT + 2) * segment, f"{store.peak / segment:.1f} segments waited"
    assert store.peak > 0  # the sampler saw the frames go through
