"""One input video as a job tracks it: where it comes from and goes, its probe, its finished
segments, its stitch, its error. The driver (jobs/run/job.py) keeps one per listed video and
writes its manifest rows from it (pipeline/manifest/rows.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipeline.manifest.files import video_id
from pipeline.media import StitchStats, VideoProbe
from pipeline.naming import staging_prefix
from pipeline.runs.resume import FinishedVideo
from pipeline.segment import SegmentRecord
from pipeline.storage import ObjectInfo


@dataclass(eq=False)  # identity: states are tracked in sets and dicts
class VideoState:
    info: ObjectInfo
    key: str
    output_uri: str
    reference_uri: str | None = None  # its HR reference (benchmark mode)
    access_uri: str | None = None  # its access copy beside the output (JobSpec.access)
    last_success: FinishedVideo | None = None  # the latest run that finished it, if any
    attempt: int = 1  # this run's attempt at this input version (failed runs before it, plus one)
    # From its first segment back (each carries them): what planning found, and into how many segments.
    probe: VideoProbe | None = None
    segment_count: int = 0
    error: str = ""
    # segment index -> its finished record (a segment delivered twice counts once); None once written
    # (or left to another run)
    segments: dict[int, SegmentRecord] | None = field(default_factory=dict)
    stitching: bool = False  # all its segments are in: its stitch tasks run
    stitch: StitchStats | None = None
    access_stitch: StitchStats | None = None
    started: float = field(default_factory=time.time)  # Unix seconds; when its planning started, once known

    @property
    def video_id(self) -> str:
        return video_id(self.key)

    @property
    def segments_reused(self) -> int:
        return sum(segment.reused for segment in (self.segments or {}).values())

    def staging(self, output_root: str, config_hash: str) -> str:
        return staging_prefix(output_root, config_hash, self.video_id, self.info.version)
