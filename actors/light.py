"""Light pool: the per-frame CNN refines the strong output; the segment's metrics are taken here,
where the LR input, the strong output and the final output are all at hand."""

from __future__ import annotations

from actors.model_stage import ModelStage
from actors.rows import Row
from pipeline.upscale import quality_metrics, run_light, to_tensor, to_uint8


class LightStage(ModelStage):
    kind = "light"

    def process(self, row: Row) -> None:
        strong = to_tensor(row["hr"], self.device)
        out = run_light(self.model, strong, self.frames_per_pass)
        row.update(quality_metrics(to_tensor(row["lr"], self.device), strong, out, self.scale))
        row["hr"] = to_uint8(out)
        row["hr_height"], row["hr_width"] = int(out.shape[2]), int(out.shape[3])
