"""Strong pool: the temporal model turns a segment's LR frames into HR core frames."""

from __future__ import annotations

from actors.model_stage import ModelStage
from actors.rows import run_stage
from pipeline.models.inference import to_tensor, upscale_pixels
from pipeline.segment import SegmentRecord


class StrongStage(ModelStage):
    kind = "strong"

    def run(self, segment: SegmentRecord) -> None:
        run_stage(segment, self.kind, self.process, self.storage)

    def process(self, segment: SegmentRecord) -> None:
        lr = to_tensor(segment.lr, self.device)
        core, radius = segment.core, self.model.temporal_radius
        depth = segment.lr.dtype  # pixels as deep as decoded (uint16 for outputs above 8 bits)
        segment.hr = self.forward(
            lambda tile: upscale_pixels(self.model, lr, core, radius, self.frames_per_pass, depth, tile), lr.shape[-2:]
        )
        # Context frames end here: the light model is per frame, so only core frames go on.
        segment.lr = segment.lr[core]
