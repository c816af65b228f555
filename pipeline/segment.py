"""The segment record: one segment of one video, from its plan to its manifest row.

Planning makes it (`pipeline/plan.py: segment_records`), each stage fills in its part (frames,
timings, metrics, the chunk), and the driver turns it into the segment's manifest row
(`pipeline/manifest/rows.py`). Its fields typed with an Arrow type (`String`, `Int32`, `Float64 |
None`, ...: pipeline/manifest/columns.py) are the manifest's segment columns, in order, described
in `SEGMENT_COLUMNS`: `SEGMENT_SCHEMA` is read off this class, so the record and the manifest
cannot drift. The other fields travel with the segment and stay out of the manifest.

Between Ray stages a record crosses as a plain row (`to_row`, `from_row`): Ray Data needs the same
columns of the same type in every row of a block, so an absent value crosses as NaN (a float),
-1 (an int: frame indices only, never negative) or "" (a string), and a time as Unix seconds.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Annotated, Any

import numpy as np
import pyarrow as pa

from pipeline.manifest.columns import NULLABLE, Bool, Float64, Int32, Int64, String, TimestampUTC, arrow_schema
from pipeline.media.colour import Colour
from pipeline.media.probe import VideoProbe

Row = dict[str, Any]  # a record as it crosses Ray
FRAME_FIELDS = ("lr", "hr", "pts")  # what the encode stage drops: the driver gets the small row only
PAIR_METRICS = ("flicker", "ewarp")  # means over frame pairs: a video weights its segments by their pairs
REFERENCE_METRICS = ("psnr", "ssim", "ewarp")  # benchmark mode only: None without a reference


def _empty_frames() -> np.ndarray:
    return np.zeros((0, 0, 0, 3), dtype=np.uint8)


# The segment_count of a segment planned before its video's scan ended (actors/plan.py): the
# driver learns the count from the video's last segments, which carry it, and writes it to the manifest.
COUNT_NOT_YET_KNOWN = -1


@dataclass(kw_only=True, slots=True, eq=False)  # eq=False: frames are arrays
class SegmentRecord:
    # --- which segment: set when the segment is planned
    job_id: String = ""
    video_key: String
    input_uri: String
    segment_index: Int32
    segment_count: Int32
    scene_index: Int32
    core_start: Int64
    core_end: Int64
    context_start: Int64
    context_end: Int64
    frames: Int32 = field(init=False, default=0)
    lr_width: Int32
    lr_height: Int32
    hr_width: Int32
    hr_height: Int32
    # --- the models: set with the manifest row
    strong_model: String = ""
    strong_sha256: String | None = None
    light_model: String = ""
    light_sha256: String | None = None
    # --- each stage's time: what actors/rows.py: run_stage measured
    decode_s: Float64 = 0.0
    strong_s: Float64 = 0.0
    light_s: Float64 = 0.0
    encode_s: Float64 = 0.0
    # --- the metrics (docs/manifest.md, "Metric definitions"): set by the light stage
    tfs: Float64 | None = None
    flicker: Float64 | None = None
    lr_psnr: Float64 | None = None
    detail_gain: Float64 | None = None
    light_delta: Float64 | None = None
    # Benchmark mode (a job with a reference): the output before encoding against the HR reference.
    psnr: Float64 | None = None
    ssim: Float64 | None = None
    ewarp: Float64 | None = None
    # --- review (pipeline/quality/review.py): flags set with the manifest row, times by the light stage
    flag_lr_psnr: Bool = False
    flag_tfs: Bool = False
    flag_flicker: Bool = False
    flag_light_delta: Bool = False
    flagged: Bool = False
    start_s: Float64 | None = None
    end_s: Float64 | None = None
    tfs_worst_frame: Int64 | None = None
    tfs_worst_s: Float64 | None = None
    flicker_worst_frame: Int64 | None = None
    flicker_worst_s: Float64 | None = None
    lr_psnr_worst_frame: Int64 | None = None
    lr_psnr_worst_s: Float64 | None = None
    # --- the chunk: written by the encode stage
    chunk_uri: Annotated[str, pa.string(), NULLABLE]  # always set here; the manifest allows a null
    encoder: String | None = None
    access_encoder: String | None = None  # of its access copy's chunk (JobSpec.access)
    encoded_at: TimestampUTC | None = None
    # --- the outcome: a failing stage sets status and error (actors/rows.py: run_stage)
    status: String = "ok"
    error: String | None = None
    attempts: Int32 = 1
    reused: Bool = False

    # --- not in the manifest: how to decode and encode the segment, set when it is planned
    seekable: bool = False  # the source has reliable pts: decoding seeks to seek_first_pts
    seek_first_pts: int = 0  # pts of the first and last decoded frame
    seek_last_pts: int = 0
    reference_uri: str | None = None  # benchmark mode: the HR reference, and where its core frames are
    ref_seekable: bool = False
    ref_seek_first_pts: int = 0
    ref_seek_last_pts: int = 0
    video_start_s: float = 0.0  # time codes count from the video's first frame
    time_base_num: int
    time_base_den: int
    rate_num: int = 0  # 0/0: no frame rate
    rate_den: int = 0
    sar_num: int = 0  # 0/0: no sample aspect ratio
    sar_den: int = 0
    frames_16bit: bool = False  # uint16 frames, for outputs above 8 bits
    deinterlace: str | None = None  # which frames bwdif deinterlaces: "interlaced", "all" or None
    colour_primaries: int  # the source's colour (pipeline/media/colour.py), the same for every segment
    colour_transfer: int
    colour_matrix: int
    colour_range: int
    # The video's probe (without per-frame pts), on every segment of it: rows reach the driver in any
    # order, and the first one tells it what the stitch and the video's manifest row need.
    probe: VideoProbe | None = None
    planned_at: float = 0.0  # when the planning stage took the video (Unix seconds, its worker's clock)
    # --- the frames, (T, H, W, 3) RGB, between the decode and the encode stage
    lr: np.ndarray = field(default_factory=_empty_frames)  # decoded, context included; the core only after strong
    hr: np.ndarray = field(default_factory=_empty_frames)  # upscaled core frames
    pts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # of the core frames

    def __post_init__(self) -> None:
        self.frames = self.core_end - self.core_start

    @property
    def core(self) -> slice:
        """The core frames among the decoded ones."""
        offset = self.core_start - self.context_start
        return slice(offset, offset + self.frames)

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.time_base_num, self.time_base_den)

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.rate_num, self.rate_den) if self.rate_den else None

    @property
    def sample_aspect_ratio(self) -> Fraction | None:
        return Fraction(self.sar_num, self.sar_den) if self.sar_den else None

    @property
    def colour(self) -> Colour:
        return Colour(self.colour_primaries, self.colour_transfer, self.colour_matrix, self.colour_range)

    @property
    def seek(self) -> tuple[int, int] | None:
        return (self.seek_first_pts, self.seek_last_pts) if self.seekable else None

    @property
    def reference_seek(self) -> tuple[int, int] | None:
        return (self.ref_seek_first_pts, self.ref_seek_last_pts) if self.ref_seekable else None

    def fail(self, error: str) -> None:
        """A stage failed: the later stages pass the record through, and its frames go."""
        self.status, self.error = "failed", error
        self.lr, self.hr = _empty_frames(), _empty_frames()

    @classmethod
    def whole_video(cls, video_key: str, input_uri: str, status: str, error: str) -> SegmentRecord:
        """A row that stands for a video without segments: its planning failed (status `failed`),
        or a sync leaves it to another run (`skipped`). The stages pass it through; the driver reads
        the reason in `error`."""
        return cls(
            video_key=video_key, input_uri=input_uri, segment_index=0, segment_count=0, scene_index=0,
            core_start=0, core_end=0, context_start=0, context_end=0,
            lr_width=0, lr_height=0, hr_width=0, hr_height=0, chunk_uri="", time_base_num=1, time_base_den=1,
            colour_primaries=0, colour_transfer=0, colour_matrix=0, colour_range=0, status=status, error=error,
        )  # fmt: skip

    def to_row(self, frames: bool = True) -> Row:
        """The record as a plain row for Ray; without its frames after the encode stage."""
        return {
            name: encode(getattr(self, name))
            for name, (encode, _) in _CODECS.items()
            if frames or name not in FRAME_FIELDS
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SegmentRecord:
        """A row made by `to_row` (numpy scalars from Ray Data batches included) back as a record."""
        unknown = row.keys() - _CODECS.keys()
        if unknown:
            raise ValueError(f"not fields of a segment record: {sorted(unknown)}")
        return cls(**{name: _CODECS[name][1](value) for name, value in row.items()})


Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def _codec(hint: Any) -> Codec:
    """How a field of type `hint` crosses Ray: (record value -> row value, row value -> record value)."""
    if hint is np.ndarray:
        return (lambda value: value), (lambda value: value)
    kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)] or [hint]
    kind, optional = kinds[0], len(kinds) < len(typing.get_args(hint))
    if kind is datetime:
        return (
            lambda value: math.nan if value is None else value.timestamp(),
            lambda value: None if math.isnan(value) else datetime.fromtimestamp(float(value), timezone.utc),
        )
    if kind not in (bool, int, float, str):  # an object (the probe): Ray carries it as it is
        return (lambda value: value), (lambda value: value)
    if not optional:
        return (lambda value: value), kind
    absent = {float: math.nan, int: -1, str: ""}[kind]
    is_absent = math.isnan if kind is float else (lambda value: value == absent)
    return (
        lambda value: absent if value is None else value,
        lambda value: None if is_absent(value) else kind(value),
    )


_CODECS: dict[str, Codec] = {
    f.name: _codec(typing.get_type_hints(SegmentRecord)[f.name]) for f in dataclasses.fields(SegmentRecord) if f.init
}
# The manifest's description of each column of a SegmentRecord (docs/manifest.md has them too).
SEGMENT_COLUMNS = {
    "job_id": "Job that wrote the row.",
    "video_key": "Input key relative to the input root (the file name for a single-file input).",
    "input_uri": "Full URI of the input video.",
    "segment_index": "Position of the segment in the video, from 0.",
    "segment_count": "Number of segments of the video.",
    "scene_index": "Scene the segment lies in, from 0.",
    "core_start": "First frame index the segment writes.",
    "core_end": "Frame index after the last one the segment writes (exclusive).",
    "context_start": "First frame index decoded, context included.",
    "context_end": "Frame index after the last one decoded, context included (exclusive).",
    "frames": "Core frames written.",
    "lr_width": "Input (low-resolution) frame width in pixels.",
    "lr_height": "Input (low-resolution) frame height in pixels.",
    "hr_width": "Output (high-resolution) frame width in pixels.",
    "hr_height": "Output (high-resolution) frame height in pixels.",
    "strong_model": "Registry name of the strong (temporal) model.",
    "strong_sha256": "sha256 of the strong model's weights file; null for a classical method (no weights).",
    "light_model": "Registry name of the light (per-frame) model.",
    "light_sha256": "sha256 of the light model's weights file; null for a classical method (no weights).",
    "decode_s": "Seconds spent decoding the segment.",
    "strong_s": "Seconds spent in the strong model.",
    "light_s": "Seconds spent in the light model.",
    "encode_s": "Seconds spent encoding the chunk.",
    "tfs": (
        "Temporal Fidelity Score: output temporal change the input does not explain, normalised by motion; lower "
        "is better. Null when the segment failed."
    ),
    "flicker": (
        "Motion-compensated flicker of the detail added to bicubic: mean over frame pairs of the masked mean "
        "||R_t - W_t(R_t-1)||^2, R = output - bicubic(input), flow and occlusions from the input; 0 for bicubic, "
        "lower is better. Null when the segment failed, has a single frame, or every pair's mask is empty."
    ),
    "lr_psnr": (
        "PSNR in dB of the downscaled output against the input (hallucination guard); higher is better. Null when"
        " the segment failed."
    ),
    "detail_gain": "Mean |output - bicubic(input)|, in [0, 1]. Null when the segment failed.",
    "light_delta": "Mean |light output - strong output|, in [0, 1]. Null when the segment failed.",
    "psnr": (
        "PSNR in dB of the output against the HR reference (MSE pooled over frames, pixels and RGB; capped at "
        "100). Null without a reference, or when the segment failed."
    ),
    "ssim": (
        "SSIM of the output against the HR reference (BT.601 luma, Gaussian window 11, sigma 1.5). Null without a"
        " reference, or when the segment failed."
    ),
    "ewarp": (
        "Flow-warping error (Lai et al. 2018) of the output, flow and occlusions from the reference; pairs of "
        "consecutive frames inside the segment only; lower is better. Null without a reference, when the segment "
        "failed or has a single frame."
    ),
    "flag_lr_psnr": (
        "lr_psnr is below the job's review.min_lr_psnr (content the input does not support); false on a failed "
        "segment, or when the threshold is off."
    ),
    "flag_tfs": (
        "tfs is above review.max_tfs (flicker: temporal change the input does not explain); false on a failed "
        "segment, a one-frame segment, or when the threshold is off."
    ),
    "flag_flicker": (
        "flicker is above review.max_flicker (added detail that changes between frames along the motion); false "
        "on a failed segment, a one-frame segment, or when the threshold is off."
    ),
    "flag_light_delta": (
        "light_delta is above review.max_light_delta; false on a failed segment, or when the threshold is off."
    ),
    "flagged": "Any flag_* is set: the segment needs a human look.",
    "start_s": (
        "Presentation time of the first core frame, in seconds from the video's first frame; null when the "
        "segment failed before its metrics."
    ),
    "end_s": (
        "Presentation time of the last core frame (its start), in seconds from the video's first frame; null when"
        " the segment failed before its metrics."
    ),
    "tfs_worst_frame": (
        "Frame index t whose change from frame t-1 the input explains least (largest mean |dO_t - B(dI_t)|); null"
        " with one frame, or when the segment failed."
    ),
    "tfs_worst_s": "Time of tfs_worst_frame, as start_s.",
    "flicker_worst_frame": (
        "Frame index t whose added detail departs most from frame t-1's moved along the motion (largest masked "
        "mean ||R_t - W_t(R_t-1)||^2); null with one frame, when every mask is empty, or when the segment failed."
    ),
    "flicker_worst_s": "Time of flicker_worst_frame, as start_s.",
    "lr_psnr_worst_frame": (
        "Frame index with the lowest PSNR(D(O_t), I_t): where the output departs most from the input; null when "
        "the segment failed."
    ),
    "lr_psnr_worst_s": "Time of lr_psnr_worst_frame, as start_s.",
    "chunk_uri": "Staging URI of the encoded chunk; null when none was written.",
    "encoder": (
        "FFmpeg encoder that wrote the chunk (libx264, h264_nvenc, ...); null when none was written, or for a "
        "reused chunk recorded before this column existed."
    ),
    "access_encoder": (
        "FFmpeg encoder that wrote the chunk of the access copy (the `access` setting), beside the chunk; null "
        "without an access copy."
    ),
    "encoded_at": (
        "When the chunk was written (UTC, by its worker's clock); for a reused chunk, when the earlier run wrote "
        "it. Null as encoder is."
    ),
    "status": "'ok' or 'failed'.",
    "error": "Error message when failed; null when ok.",
    "attempts": (
        "Runs of the segment's most-run stage: 1 when no stage ran twice; more when Ray ran a stage again after a"
        " worker, actor or node was lost (an interrupted earlier run's runs included)."
    ),
    "reused": (
        "Chunk taken from staging, left by an interrupted run with the same input and settings (timings and "
        "metrics are that run's)."
    ),
}
SEGMENT_SCHEMA = arrow_schema(SegmentRecord, SEGMENT_COLUMNS)
