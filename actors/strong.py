"""Strong pool: the temporal model turns a segment's LR frames into HR core frames."""

from __future__ import annotations

from actors.model_stage import ModelStage
from actors.rows import Row
from pipeline.models.inference import run_strong, to_pixels, to_tensor


class StrongStage(ModelStage):
    kind = "strong"

    def process(self, row: Row) -> None:
        lr = to_tensor(row["lr"], self.device)
        offset = int(row["core_start"]) - int(row["context_start"])
        core = slice(offset, offset + int(row["core_end"]) - int(row["core_start"]))
        radius = self.model.temporal_radius
        hr = self.forward(
            lambda tile: run_strong(self.model, lr, core, radius, self.frames_per_pass, tile), lr.shape[-2:]
        )
        # Context frames end here: the light model is per frame, so only core frames go on.
        row["lr"] = row["lr"][core]
        row["hr"] = to_pixels(hr, row["lr"].dtype)  # as deep as decoded (uint16 for outputs above 8 bits)
