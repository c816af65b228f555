"""Light pool: the per-frame CNN refines the strong output; the segment's metrics are taken here,
where the LR input, the strong output and the final output are all at hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from actors.model_stage import ModelStage
from actors.rows import Row
from pipeline.media import decode_frames
from pipeline.quality.review import WORST_METRICS, locate
from pipeline.models.inference import quality_metrics, reference_metrics, run_light, to_pixels, to_tensor


class LightStage(ModelStage):
    kind = "light"

    def process(self, row: Row) -> None:
        strong = to_tensor(row["hr"], self.device)
        out = self.forward(lambda tile: run_light(self.model, strong, self.frames_per_pass, tile), strong.shape[-2:])
        row.update(quality_metrics(to_tensor(row["lr"], self.device), strong, out, self.scale, int(row["core_start"])))
        row.update(segment_times(row))
        if row["reference_uri"]:
            row.update(reference_metrics(out, to_tensor(self.reference_frames(row), self.device)))
        row["hr"] = to_pixels(out, row["hr"].dtype)
        row["hr_height"], row["hr_width"] = int(out.shape[2]), int(out.shape[3])

    def reference_frames(self, row: Row) -> np.ndarray:
        """The HR reference's frames at the segment's core indices (the plan checked that they pair up).

        Decoded here rather than in the decode task: only this stage uses them, and carried from
        there they would cross the object store twice (decode -> strong -> light) as arrays as
        big as the output, the largest of the pipeline. The price is the actor's device idling
        while it decodes (counted in light_s): fine for benchmark runs, which measure quality.
        """
        seek = (int(row["ref_seek_first_pts"]), int(row["ref_seek_last_pts"])) if row["ref_seekable"] else None
        with self.storage.open_read(row["reference_uri"]) as source:
            return decode_frames(source, int(row["core_start"]), int(row["core_end"]), seek).frames


def segment_times(row: Row) -> dict[str, float]:
    """When the segment's first and last core frames and its worst frames are shown (s from the video's start)."""
    return locate(
        [int(p) for p in row["pts"]],
        Fraction(int(row["time_base_num"]), int(row["time_base_den"])),
        float(row["video_start_s"]),
        int(row["core_start"]),
        {f"{m}_worst_frame": int(row[f"{m}_worst_frame"]) for m in WORST_METRICS},
    )
