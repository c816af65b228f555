"""Parquet quality manifests under the output prefix.

Layout (one pair of files per finished video, so an interrupted job keeps what it finished)::

    <output>/_pssr/manifest/segments/<job_id>/<video_id>.parquet
    <output>/_pssr/manifest/videos/<job_id>/<video_id>.parquet

The schemas below are the contract; each field's ``description`` metadata documents it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import numbers
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.storage import PIPELINE_AREA, Storage, join_uri

STATUSES = ("ok", "failed")


def _field(name: str, type_: pa.DataType, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


# Benchmark mode (a job with a reference): the output before encoding against the HR reference.
_REFERENCE_FIELDS = [
    _field(
        "psnr",
        pa.float64(),
        "PSNR in dB of the output against the HR reference (MSE pooled over frames, pixels and RGB; "
        "capped at 100). Null without a reference, or when the segment failed.",
        nullable=True,
    ),
    _field(
        "ssim",
        pa.float64(),
        "SSIM of the output against the HR reference (BT.601 luma, Gaussian window 11, sigma 1.5). "
        "Null without a reference, or when the segment failed.",
        nullable=True,
    ),
    _field(
        "ewarp",
        pa.float64(),
        "Flow-warping error (Lai et al. 2018) of the output, flow and occlusions from the reference; pairs "
        "of consecutive frames inside the segment only; lower is better. Null without a reference, when the "
        "segment failed or has a single frame.",
        nullable=True,
    ),
]

# The output's format, as written (the source's colour, shape and timing carried over).
_FORMAT_FIELDS = [
    _field("pix_fmt", pa.string(), "Output pixel format (e.g. yuv420p, yuv420p10le, yuv422p10le, bgr0)."),
    _field("bit_depth", pa.int32(), "Bits per sample of the output pixel format."),
    _field(
        "color_primaries",
        pa.string(),
        "Colour primaries tagged on the output (FFmpeg's name), the source's; null when the source states none.",
        nullable=True,
    ),
    _field(
        "color_transfer",
        pa.string(),
        "Transfer characteristic tagged on the output (FFmpeg's name), the source's; null when the source states none.",
        nullable=True,
    ),
    _field(
        "color_matrix",
        pa.string(),
        "YUV matrix the output was converted with and is tagged with: the source's (an untagged source's as "
        "players read it: bt709 from 720 lines up, else smpte170m); gbr for RGB outputs. Null when failed "
        "before the probe.",
        nullable=True,
    ),
    _field(
        "color_range",
        pa.string(),
        "Output range: tv (limited) or pc (full), the source's; null when failed before the probe.",
        nullable=True,
    ),
    _field(
        "sample_aspect_ratio",
        pa.string(),
        "Sample (pixel) aspect ratio carried from the source, e.g. 16:15; null when the source states none.",
        nullable=True,
    ),
    _field("rotation", pa.int32(), "Display rotation in degrees carried from the source (frames are not rotated)."),
    _field(
        "field_order",
        pa.string(),
        "The source's scan: progressive, tff, bff, or interlaced (flagged without an order); null when failed "
        "before the probe.",
        nullable=True,
    ),
    _field("deinterlaced", pa.bool_(), "Frames went through bwdif before the models (JobSpec deinterlace)."),
    _field(
        "deinterlace_mode",
        pa.string(),
        "The bwdif filter as it ran (send_frame: one frame per frame, rate kept; deint=interlaced: only frames "
        "flagged interlaced, all: every frame); null when not deinterlaced.",
        nullable=True,
    ),
]

# Provenance (pipeline/provenance.py): the same values the output's container tags carry.
_PROVENANCE_FIELDS = [
    _field(
        "source_sha256",
        pa.string(),
        "sha256 of the whole input file (com.pssr.source_sha256); null when it could not be read.",
        nullable=True,
    ),
    _field(
        "video_sha256",
        pa.string(),
        "sha256 of the output's coded pictures (com.pssr.video_sha256; `pssr verify` checks it); null when failed.",
        nullable=True,
    ),
    _field("tool_version", pa.string(), "Version of pssr that wrote the output (com.pssr.tool_version)."),
    _field("strong_model", pa.string(), "Registry name of the strong model (com.pssr.strong_model)."),
    _field("strong_sha256", pa.string(), "sha256 of its weights (com.pssr.strong_sha256); null: classical.", True),
    _field("light_model", pa.string(), "Registry name of the light model (com.pssr.light_model)."),
    _field("light_sha256", pa.string(), "sha256 of its weights (com.pssr.light_sha256); null: classical.", True),
]

# Review (pipeline/quality/review.py): flags from the job's `review` thresholds, and where the segment is in time.
_REVIEW_SEGMENT_FIELDS = [
    _field(
        "flag_lr_psnr",
        pa.bool_(),
        "lr_psnr is below the job's review.min_lr_psnr (content the input does not support); false on a failed "
        "segment, or when the threshold is off.",
    ),
    _field(
        "flag_tfs",
        pa.bool_(),
        "tfs is above review.max_tfs (flicker: temporal change the input does not explain); false on a failed "
        "segment, a one-frame segment, or when the threshold is off.",
    ),
    _field(
        "flag_flicker",
        pa.bool_(),
        "flicker is above review.max_flicker (added detail that changes between frames along the motion); "
        "false on a failed segment, a one-frame segment, or when the threshold is off.",
    ),
    _field(
        "flag_light_delta",
        pa.bool_(),
        "light_delta is above review.max_light_delta; false on a failed segment, or when the threshold is off.",
    ),
    _field("flagged", pa.bool_(), "Any flag_* is set: the segment needs a human look."),
    _field(
        "start_s",
        pa.float64(),
        "Presentation time of the first core frame, in seconds from the video's first frame; null when the "
        "segment failed before its metrics.",
        nullable=True,
    ),
    _field(
        "end_s",
        pa.float64(),
        "Presentation time of the last core frame (its start), in seconds from the video's first frame; null "
        "when the segment failed before its metrics.",
        nullable=True,
    ),
    _field(
        "tfs_worst_frame",
        pa.int64(),
        "Frame index t whose change from frame t-1 the input explains least (largest mean |dO_t - B(dI_t)|); "
        "null with one frame, or when the segment failed.",
        nullable=True,
    ),
    _field("tfs_worst_s", pa.float64(), "Time of tfs_worst_frame, as start_s.", nullable=True),
    _field(
        "flicker_worst_frame",
        pa.int64(),
        "Frame index t whose added detail departs most from frame t-1's moved along the motion (largest "
        "masked mean ||R_t - W_t(R_t-1)||^2); null with one frame, when every mask is empty, or when the "
        "segment failed.",
        nullable=True,
    ),
    _field("flicker_worst_s", pa.float64(), "Time of flicker_worst_frame, as start_s.", nullable=True),
    _field(
        "lr_psnr_worst_frame",
        pa.int64(),
        "Frame index with the lowest PSNR(D(O_t), I_t): where the output departs most from the input; null "
        "when the segment failed.",
        nullable=True,
    ),
    _field("lr_psnr_worst_s", pa.float64(), "Time of lr_psnr_worst_frame, as start_s.", nullable=True),
]

_REVIEW_VIDEO_FIELDS = [
    _field("segments_flagged", pa.int32(), "Segments with flagged set."),
    _field(
        "min_lr_psnr",
        pa.float64(),
        "review.min_lr_psnr the flags were taken with (dB); null: that flag was off.",
        nullable=True,
    ),
    _field("max_tfs", pa.float64(), "review.max_tfs the flags were taken with; null: off.", nullable=True),
    _field("max_flicker", pa.float64(), "review.max_flicker the flags were taken with; null: off.", nullable=True),
    _field(
        "max_light_delta", pa.float64(), "review.max_light_delta the flags were taken with; null: off.", nullable=True
    ),
]

_COMMON = [
    _field("job_id", pa.string(), "Job that wrote the row."),
    _field("video_key", pa.string(), "Input key relative to the input root (the file name for a single-file input)."),
    _field("input_uri", pa.string(), "Full URI of the input video."),
]

SEGMENT_SCHEMA = pa.schema(
    _COMMON
    + [
        _field("segment_index", pa.int32(), "Position of the segment in the video, from 0."),
        _field("segment_count", pa.int32(), "Number of segments of the video."),
        _field("scene_index", pa.int32(), "Scene the segment lies in, from 0."),
        _field("core_start", pa.int64(), "First frame index the segment writes."),
        _field("core_end", pa.int64(), "Frame index after the last one the segment writes (exclusive)."),
        _field("context_start", pa.int64(), "First frame index decoded, context included."),
        _field("context_end", pa.int64(), "Frame index after the last one decoded, context included (exclusive)."),
        _field("frames", pa.int32(), "Core frames written."),
        _field("lr_width", pa.int32(), "Input (low-resolution) frame width in pixels."),
        _field("lr_height", pa.int32(), "Input (low-resolution) frame height in pixels."),
        _field("hr_width", pa.int32(), "Output (high-resolution) frame width in pixels."),
        _field("hr_height", pa.int32(), "Output (high-resolution) frame height in pixels."),
        _field("strong_model", pa.string(), "Registry name of the strong (temporal) model."),
        _field(
            "strong_sha256",
            pa.string(),
            "sha256 of the strong model's weights file; null for a classical method (no weights).",
            nullable=True,
        ),
        _field("light_model", pa.string(), "Registry name of the light (per-frame) model."),
        _field(
            "light_sha256",
            pa.string(),
            "sha256 of the light model's weights file; null for a classical method (no weights).",
            nullable=True,
        ),
        _field("decode_s", pa.float64(), "Seconds spent decoding the segment."),
        _field("strong_s", pa.float64(), "Seconds spent in the strong model."),
        _field("light_s", pa.float64(), "Seconds spent in the light model."),
        _field("encode_s", pa.float64(), "Seconds spent encoding the chunk."),
        _field(
            "tfs",
            pa.float64(),
            "Temporal Fidelity Score: output temporal change the input does not explain, "
            "normalised by motion; lower is better. Null when the segment failed.",
            nullable=True,
        ),
        _field(
            "flicker",
            pa.float64(),
            "Motion-compensated flicker of the detail added to bicubic: mean over frame pairs of the masked "
            "mean ||R_t - W_t(R_t-1)||^2, R = output - bicubic(input), flow and occlusions from the input; "
            "0 for bicubic, lower is better. Null when the segment failed, has a single frame, or every "
            "pair's mask is empty.",
            nullable=True,
        ),
        _field(
            "lr_psnr",
            pa.float64(),
            "PSNR in dB of the downscaled output against the input (hallucination guard); "
            "higher is better. Null when the segment failed.",
            nullable=True,
        ),
        _field(
            "detail_gain",
            pa.float64(),
            "Mean |output - bicubic(input)|, in [0, 1]. Null when the segment failed.",
            nullable=True,
        ),
        _field(
            "light_delta",
            pa.float64(),
            "Mean |light output - strong output|, in [0, 1]. Null when the segment failed.",
            nullable=True,
        ),
        *_REFERENCE_FIELDS,
        *_REVIEW_SEGMENT_FIELDS,
        _field("chunk_uri", pa.string(), "Staging URI of the encoded chunk; null when none was written.", True),
        _field(
            "encoder",
            pa.string(),
            "FFmpeg encoder that wrote the chunk (libx264, h264_nvenc, ...); null when none was written, "
            "or for a reused chunk recorded before this column existed.",
            nullable=True,
        ),
        _field(
            "encoded_at",
            pa.timestamp("ms", tz="UTC"),
            "When the chunk was written (UTC, by its worker's clock); for a reused chunk, when the earlier run "
            "wrote it. Null as encoder is.",
            nullable=True,
        ),
        _field("status", pa.string(), "'ok' or 'failed'."),
        _field("error", pa.string(), "Error message when failed; null when ok.", nullable=True),
        _field(
            "attempts",
            pa.int32(),
            "Runs of the segment's most-run stage: 1 when no stage ran twice; more when Ray ran a stage again "
            "after a worker, actor or node was lost (an interrupted earlier run's runs included).",
        ),
        _field(
            "reused",
            pa.bool_(),
            "Chunk taken from staging, left by an interrupted run with the same input and settings "
            "(timings and metrics are that run's).",
        ),
    ]
)

VIDEO_SCHEMA = pa.schema(
    _COMMON
    + [
        _field("input_size", pa.int64(), "Input size in bytes."),
        _field("input_version", pa.string(), "Input version tag: S3 ETag, or 'mtime_ns:size' for local files."),
        _field("output_uri", pa.string(), "URI of the upscaled video; null when failed.", nullable=True),
        _field("status", pa.string(), "'ok' or 'failed'."),
        _field("error", pa.string(), "Error message when failed; null when ok.", nullable=True),
        _field("frames_in", pa.int64(), "Video frames in the input."),
        _field("frames_out", pa.int64(), "Video frames in the output."),
        _field("duration_in_s", pa.float64(), "Input video stream duration in seconds."),
        _field("duration_out_s", pa.float64(), "Output video stream duration in seconds."),
        _field("width", pa.int32(), "Input frame width in pixels."),
        _field("height", pa.int32(), "Input frame height in pixels."),
        _field("out_width", pa.int32(), "Output frame width in pixels."),
        _field("out_height", pa.int32(), "Output frame height in pixels."),
        _field("scale", pa.int32(), "Upscaling factor."),
        _field("codec", pa.string(), "Output video codec."),
        _field(
            "encoder",
            pa.string(),
            "FFmpeg encoder of the output's chunks (libx264, hevc_nvenc, ...); null when no chunk was written.",
            nullable=True,
        ),
        _field("segments", pa.int32(), "Number of segments."),
        _field("segments_reused", pa.int32(), "Segments whose chunks an interrupted run had already made."),
        _field(
            "segment_retries",
            pa.int32(),
            "Extra segment runs: the sum of (attempts - 1) over the video's segment rows; 0 without faults.",
        ),
        _field("scenes", pa.int32(), "Number of scenes detected."),
        _field("audio_streams_copied", pa.int32(), "Audio streams copied from the input."),
        _field("subtitle_streams_copied", pa.int32(), "Subtitle streams copied from the input."),
        _field(
            "flicker",
            pa.float64(),
            "Mean of the segments' flicker weighted by their frame pairs (pairs across segments are not "
            "measured); null when failed, or when no segment has a pair.",
            nullable=True,
        ),
        _field(
            "reference_uri",
            pa.string(),
            "HR reference the psnr, ssim and ewarp were measured against; null without one.",
            nullable=True,
        ),
        _field(
            "psnr",
            pa.float64(),
            "Frame-weighted mean of the segments' psnr; null without a reference, or when failed.",
            nullable=True,
        ),
        _field(
            "ssim",
            pa.float64(),
            "Frame-weighted mean of the segments' ssim; null without a reference, or when failed.",
            nullable=True,
        ),
        _field(
            "ewarp",
            pa.float64(),
            "Mean of the segments' ewarp weighted by their frame pairs (pairs across segments are not "
            "measured); null without a reference, or when failed.",
            nullable=True,
        ),
        *_REVIEW_VIDEO_FIELDS,
        _field("config_hash", pa.string(), "Hash of the job configuration that produced the output."),
        *_FORMAT_FIELDS,
        *_PROVENANCE_FIELDS,
        _field("wall_s", pa.float64(), "Wall-clock seconds from the video's first segment to its manifest."),
        _field("finished_at", pa.timestamp("ms", tz="UTC"), "When the video finished (UTC)."),
    ]
)

_INT_RANGES = {pa.int32(): (-(2**31), 2**31 - 1), pa.int64(): (-(2**63), 2**63 - 1)}


def video_id(video_key: str) -> str:
    """Short stable id of an input key, used as the manifest file name."""
    return hashlib.sha1(video_key.encode("utf-8")).hexdigest()[:16]


def manifest_root(output_root: str) -> str:
    return join_uri(output_root, PIPELINE_AREA, "manifest")


def _check_value(where: str, field: pa.Field, value: Any) -> None:
    if value is None:
        if not field.nullable:
            raise ValueError(f"{where}: column '{field.name}' must not be null")
        return
    type_ = field.type
    if pa.types.is_string(type_):
        ok = isinstance(value, str)
    elif pa.types.is_integer(type_):
        # numbers.Integral covers numpy integers (rows may come out of Ray Data); bool is no count.
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if ok and not _INT_RANGES[type_][0] <= int(value) <= _INT_RANGES[type_][1]:
            raise ValueError(f"{where}: column '{field.name}' value {value} is out of range for {type_}")
    elif pa.types.is_floating(type_):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif pa.types.is_boolean(type_):
        ok = isinstance(value, (bool, np.bool_))
    elif pa.types.is_timestamp(type_):
        # A naive datetime would be read as local time somewhere and UTC elsewhere.
        ok = isinstance(value, dt.datetime) and value.tzinfo is not None
    else:
        raise AssertionError(f"no check for {type_}")
    if not ok:
        raise ValueError(f"{where}: column '{field.name}' expects {type_}, got {type(value).__name__} {value!r}")


def _validate(where: str, row: dict[str, Any], schema: pa.Schema) -> None:
    unknown = sorted(set(row) - set(schema.names))
    if unknown:
        raise ValueError(f"{where}: unknown column '{unknown[0]}'")
    for field in schema:
        if field.name not in row:
            raise ValueError(f"{where}: missing column '{field.name}'")
        _check_value(where, field, row[field.name])
    if row["status"] not in STATUSES:
        raise ValueError(f"{where}: column 'status' must be one of {STATUSES}, got {row['status']!r}")


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def write_video_manifest(
    storage: Storage, output_root: str, job_id: str, video_row: dict[str, Any], segment_rows: list[dict[str, Any]]
) -> None:
    """Validate and write one video's manifest files (segments first, then the video row).

    Re-running the same job rewrites the same two files, so delivery twice is harmless.
    """
    if not job_id or "/" in job_id:
        raise ValueError(f"job_id {job_id!r} must be non-empty and contain no '/'")
    _validate("video row", video_row, VIDEO_SCHEMA)
    for i, row in enumerate(segment_rows):
        _validate(f"segment row {i}", row, SEGMENT_SCHEMA)
    for where, row in [("video row", video_row)] + [(f"segment row {i}", r) for i, r in enumerate(segment_rows)]:
        if row["job_id"] != job_id or row["video_key"] != video_row["video_key"]:
            raise ValueError(
                f"{where}: column 'job_id'/'video_key' does not match job {job_id!r}, video {video_row['video_key']!r}"
            )
    name = f"{video_id(video_row['video_key'])}.parquet"
    root = manifest_root(output_root)
    storage.write_bytes(join_uri(root, "segments", job_id, name), _parquet_bytes(segment_rows, SEGMENT_SCHEMA))
    storage.write_bytes(join_uri(root, "videos", job_id, name), _parquet_bytes([video_row], VIDEO_SCHEMA))


def _read_dataset(storage: Storage, uri: str, schema: pa.Schema, sort_keys: list[str]) -> pa.Table:
    filesystem, path = storage.arrow_filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.Directory:
        return schema.empty_table()
    table = ds.dataset(path, schema=schema, format="parquet", filesystem=filesystem).to_table()
    return table.sort_by([(key, "ascending") for key in sort_keys])


def read_video_manifests(storage: Storage, output_root: str) -> pa.Table:
    """The video rows of all manifests under `output_root`, every job included (half the reads
    of `read_manifests`: what a re-run needs to know what is done)."""
    return _read_dataset(storage, join_uri(manifest_root(output_root), "videos"), VIDEO_SCHEMA, ["job_id", "video_key"])


def read_manifests(storage: Storage, output_root: str) -> tuple[pa.Table, pa.Table]:
    """All manifests under `output_root` as (videos, segments), every job included."""
    root = manifest_root(output_root)
    videos = read_video_manifests(storage, output_root)
    segments = _read_dataset(
        storage, join_uri(root, "segments"), SEGMENT_SCHEMA, ["job_id", "video_key", "segment_index"]
    )
    return videos, segments


def read_latest(storage: Storage, output_root: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Where each video stands: its latest video row (of the last job that finished or failed it;
    a run that skipped it as done wrote none), and that job's segment rows of it; both in order of
    video key (and segment index)."""
    videos, segments = read_manifests(storage, output_root)
    latest = {row["video_key"]: row for row in videos.sort_by("finished_at").to_pylist()}
    wanted = {(row["job_id"], row["video_key"]) for row in latest.values()}
    segments = segments.filter(pc.is_in(segments["job_id"], pa.array(sorted({job for job, _ in wanted}), pa.string())))
    rows = [row for row in segments.to_pylist() if (row["job_id"], row["video_key"]) in wanted]
    return [latest[key] for key in sorted(latest)], sorted(rows, key=lambda r: (r["video_key"], r["segment_index"]))
