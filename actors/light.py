"""Light pool: the per-frame CNN refines the strong output; the segment's metrics are taken here,
where the LR input, the strong output and the final output are all at hand."""

from __future__ import annotations

import numpy as np

from actors.model_stage import ModelStage
from actors.progress import pass_reporter
from actors.rows import run_stage
from pipeline.media import decode_frames
from pipeline.models import IdentitySR
from pipeline.models.inference import pixel_frames, refine_pixels
from pipeline.quality.review import locate
from pipeline.quality.segment_metrics import measure, measure_against_reference
from pipeline.segment import SegmentRecord


class LightStage(ModelStage):
    kind = "light"

    def run(self, segment: SegmentRecord) -> None:
        run_stage(segment, self.kind, self.process, self.storage)

    def process(self, segment: SegmentRecord) -> None:
        hr = segment.hr
        passed = pass_reporter(self.progress, segment.input_uri, segment.segment_index)
        if isinstance(self.model, IdentitySR):  # no light model: the strong frames pass as they are
            out = hr
            if passed is not None:
                passed(len(hr))
        else:
            out = self.forward(
                lambda tile: refine_pixels(self.model, hr, self.device, self.frames_per_pass, tile, passed),
                hr.shape[1:3],
            )
        # Metrics on the pixels as they are written, converted a few frames at a time.
        strong, refined = pixel_frames(hr, self.device), pixel_frames(out, self.device)
        measure(segment, pixel_frames(segment.lr, self.device), strong, refined, self.scale)
        locate(segment)
        if segment.reference_uri:
            measure_against_reference(segment, refined, pixel_frames(self.reference_frames(segment), self.device))
        segment.hr = out
        segment.hr_height, segment.hr_width = out.shape[1], out.shape[2]

    def reference_frames(self, segment: SegmentRecord) -> np.ndarray:
        """The HR reference's frames at the segment's core indices (the plan checked that they pair up).

        Decoded here rather than in the decode task: only this stage uses them, and carried from
        there they would cross the object store twice (decode -> strong -> light) as arrays as
        big as the output, the largest of the pipeline. The price is the actor's device idling
        while it decodes (counted in light_s): fine for benchmark runs, which measure quality.
        """
        with self.storage.open_read(segment.reference_uri) as source:
            return decode_frames(source, segment.core_start, segment.core_end, segment.reference_seek).frames
