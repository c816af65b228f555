"""Light pool: the per-frame CNN refines the strong output; the segment's metrics are taken here,
where the LR input, the strong output and the final output are all at hand."""

from __future__ import annotations

import numpy as np

from actors.model_stage import ModelStage
from actors.progress import pass_reporter
from actors.rows import run_stage
from pipeline.media import decode_frames
from pipeline.models.inference import run_light, to_pixels, to_tensor
from pipeline.quality.review import locate
from pipeline.quality.segment_metrics import measure, measure_against_reference
from pipeline.segment import SegmentRecord


class LightStage(ModelStage):
    kind = "light"

    def run(self, segment: SegmentRecord) -> None:
        run_stage(segment, self.kind, self.process, self.storage)

    def process(self, segment: SegmentRecord) -> None:
        strong = to_tensor(segment.hr, self.device)
        passed = pass_reporter(self.progress, segment.input_uri, segment.segment_index)
        out = self.forward(
            lambda tile: run_light(self.model, strong, self.frames_per_pass, tile, passed), strong.shape[-2:]
        )
        measure(segment, to_tensor(segment.lr, self.device), strong, out, self.scale)
        locate(segment)
        if segment.reference_uri:
            measure_against_reference(segment, out, to_tensor(self.reference_frames(segment), self.device))
        segment.hr = to_pixels(out, segment.hr.dtype)
        segment.hr_height, segment.hr_width = int(out.shape[2]), int(out.shape[3])

    def reference_frames(self, segment: SegmentRecord) -> np.ndarray:
        """The HR reference's frames at the segment's core indices (the plan checked that they pair up).

        Decoded here rather than in the decode task: only this stage uses them, and carried from
        there they would cross the object store twice (decode -> strong -> light) as arrays as
        big as the output, the largest of the pipeline. The price is the actor's device idling
        while it decodes (counted in light_s): fine for benchmark runs, which measure quality.
        """
        with self.storage.open_read(segment.reference_uri) as source:
            return decode_frames(source, segment.core_start, segment.core_end, segment.reference_seek).frames
