"""Fused pool (JobSpec.fused): one actor runs the strong model and then the light model.

The HR frames go from one model to the other inside the actor instead of through the object
store, and one pool's CPUs serve both models. For single machines and small GPUs; the default is
two pools sized separately (the product's shape). Each model keeps its own pool's per-model
settings (frames per pass, precision, tile), and each stage still leaves its run marker and its
timing, so manifests read the same.
"""

from __future__ import annotations

from typing import Any

from actors.light import LightStage
from actors.model_stage import set_torch_threads
from actors.rows import records_from_batch, records_to_batch
from actors.strong import StrongStage


class FusedStage:
    """A Ray Data `map_batches` callable class: StrongStage then LightStage on each segment."""

    def __init__(self, strong: dict[str, Any], light: dict[str, Any]) -> None:
        self.strong = StrongStage(**strong)
        self.light = LightStage(**light)
        # The actor's CPUs are the strong pool's (each stage set its own).
        set_torch_threads(strong["pool"], self.strong.device)

    def __call__(self, batch: dict) -> dict:
        segments = records_from_batch(batch)
        for segment in segments:
            self.strong.run(segment)
            self.light.run(segment)
        return records_to_batch(segments)
