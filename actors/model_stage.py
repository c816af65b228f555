"""What the strong and light actor pools share: device choice, torch threads, precision, compilation,
tiling, batch handling."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import torch
from ray.actor import ActorHandle

from actors.rows import records_from_batch, records_to_batch
from pipeline.config import PoolSpec
from pipeline.host_memory import keep_freed_memory
from pipeline.models import load_model, pick_device
from pipeline.models.device import autocast, check_precision, compile_model
from pipeline.models.tiling import AdaptiveTile, Out
from pipeline.segment import SegmentRecord
from pipeline.storage import Storage


def set_torch_threads(pool: PoolSpec, device: torch.device) -> None:
    """pool.torch_threads, or by default, on a CPU, the node's cores shared among the pool's actors
    (at least one thread per reserved CPU); on a GPU one thread per reserved CPU, which only feeds
    it. The models are most of a CPU job's work, and their threads take the cycles the other stages
    leave idle: at x4 on 2 cores the two pools' steady rate rose from 0.49 to 0.65 of the roofline
    with the strong pool's actors sharing the cores, and to 0.72 with the light pool's too (one run
    each; docs/performance.md#cpu)."""
    threads = max(1, math.ceil(pool.num_cpus))
    if device.type == "cpu":
        threads = max(threads, len(os.sched_getaffinity(0)) // pool.size)
    torch.set_num_threads(pool.torch_threads or threads)


class ModelStage:
    """A Ray Data `map_batches` callable class holding one model on this actor's device."""

    kind: str  # "strong" or "light"

    def __init__(
        self,
        model_name: str,
        scale: int,
        device: str,
        pool: PoolSpec,
        weights_dir: str | None,
        sha256: str | None,
        storage: Storage | None = None,
        progress: ActorHandle | None = None,
    ) -> None:
        keep_freed_memory()  # the actor's process holds frames and activations (pipeline/host_memory.py)
        self.device = pick_device(device)
        set_torch_threads(pool, self.device)
        check_precision(self.device, pool.precision)
        self.precision = pool.precision
        self.scale = scale
        self.frames_per_pass = pool.frames_per_pass
        model, self.sha256 = load_model(self.kind, model_name, scale, self.device, weights_dir, sha256)
        self.model = compile_model(model) if pool.compile else model
        self.tile = AdaptiveTile(pool.tile, model.spatial_radius, model.spatial_align, self.device)
        self.storage = storage or Storage()  # the job's output storage: run markers (and references)
        self.progress = progress  # the job's ProgressBoard (actors/progress.py): the start-up, the light stage's passes
        if progress is not None:
            progress.ready.remote(self.kind, time.time())  # wall time: the driver's clock is another process's

    def __call__(self, batch: dict) -> dict:
        segments = records_from_batch(batch)
        for segment in segments:
            self.run(segment)
        return records_to_batch(segments)

    def forward(self, work: Callable[[int | None], Out], frame_size: tuple[int, int]) -> Out:
        """`work(tile)` (upscale_pixels, or refine_pixels) at the pool's precision, in smaller tiles after
        running out of device memory (pipeline/models/tiling.py)."""
        with autocast(self.device, self.precision):
            return self.tile.run(work, frame_size)

    def run(self, segment: SegmentRecord) -> None:
        """`process` the segment through actors/rows.py: run_stage, timing it into its stage's time."""
        raise NotImplementedError

    def process(self, segment: SegmentRecord) -> None:
        raise NotImplementedError
