"""What the strong and light actor pools share: device choice, torch threads, batch handling."""

from __future__ import annotations

import math

import torch

from actors.rows import Row, batch_to_rows, rows_to_batch, run_stage
from pipeline.config import PoolSpec
from pipeline.models import load_model, pick_device
from pipeline.storage import Storage


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
    ) -> None:
        # One thread per reserved CPU: on small machines extra threads only fight the
        # decode and encode tasks running beside the actor.
        torch.set_num_threads(pool.torch_threads or max(1, math.ceil(pool.num_cpus)))
        self.device = pick_device(device)
        self.scale = scale
        self.frames_per_pass = pool.frames_per_pass
        self.model, self.sha256 = load_model(self.kind, model_name, scale, self.device, weights_dir, sha256)
        self.storage = storage or Storage()  # the job's output storage: run markers (and references)

    def __call__(self, batch: dict) -> dict:
        rows = batch_to_rows(batch)
        for row in rows:
            run_stage(row, self.kind, self.process, self.storage)
        return rows_to_batch(rows)

    def process(self, row: Row) -> None:
        raise NotImplementedError
