"""The video record: one video's row of the manifest, written when the video finishes or fails
(`pipeline/manifest/rows.py: video_record`). Every field is a column, in order, described in
`VIDEO_COLUMNS`: `VIDEO_SCHEMA` is read off this class."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.manifest.columns import Bool, Float64, Int32, Int64, String, TimestampUTC, arrow_schema


@dataclass(kw_only=True, frozen=True)
class VideoRecord:
    job_id: String
    video_key: String
    input_uri: String
    input_size: Int64
    input_version: String
    output_uri: String | None
    access_uri: String | None
    status: String
    error: String | None
    attempt: Int32
    max_attempts: Int32 | None
    frames_in: Int64
    frames_out: Int64
    duration_in_s: Float64
    duration_out_s: Float64
    width: Int32
    height: Int32
    out_width: Int32
    out_height: Int32
    scale: Int32
    codec: String
    encoder: String | None
    segments: Int32
    segments_reused: Int32
    segment_retries: Int32
    scenes: Int32
    audio_streams_copied: Int32
    audio_streams_retimed: Int32
    subtitle_streams_copied: Int32
    flicker: Float64 | None
    reference_uri: String | None
    psnr: Float64 | None
    ssim: Float64 | None
    ewarp: Float64 | None
    # Review (pipeline/quality/review.py): the flagged segments, and the thresholds they were flagged by.
    segments_flagged: Int32
    min_lr_psnr: Float64 | None
    max_tfs: Float64 | None
    max_flicker: Float64 | None
    max_light_delta: Float64 | None
    config_hash: String
    # The output's format, as written (the source's colour, shape and timing carried over).
    pix_fmt: String
    bit_depth: Int32
    color_primaries: String | None
    color_transfer: String | None
    color_matrix: String | None
    color_range: String | None
    sample_aspect_ratio: String | None
    rotation: Int32
    field_order: String | None
    timecode: String | None
    timecode_source: String | None
    planning: String | None
    deinterlaced: Bool
    deinterlace_mode: String | None
    # Provenance (pipeline/provenance.py): the same values the output's container tags carry.
    source_sha256: String | None
    video_sha256: String | None
    output_md5: String | None
    output_sha256: String | None
    tool_version: String
    strong_model: String
    strong_sha256: String | None
    light_model: String
    light_sha256: String | None
    wall_s: Float64
    finished_at: TimestampUTC


# The manifest's description of each column of a VideoRecord (docs/manifest.md has them too).
VIDEO_COLUMNS = {
    "job_id": "Job that wrote the row.",
    "video_key": "Input key relative to the input root (the file name for a single-file input).",
    "input_uri": "Full URI of the input video.",
    "input_size": "Input size in bytes.",
    "input_version": "Input version tag: S3 ETag, or 'mtime_ns:size' for local files.",
    "output_uri": "URI of the upscaled video; null when failed.",
    "access_uri": "URI of its access copy (the `access` setting), written in the same run; null without one, or "
    "when failed. The access copy has a row of its own in the manifest's `access` table, with the same columns: "
    "there output_uri is the access copy and the output's format columns (codec, encoder, pix_fmt, bit_depth, "
    "colour, frames_out, duration_out_s, video_sha256, output_md5, output_sha256) are the access copy's.",
    "status": "'ok', 'failed', or 'removed': the output of an earlier 'ok' row deleted by `pssr sync "
    "--delete-orphans` because its input is gone (the row repeats that one's figures; `error` says why).",
    "error": "Error message when failed; null when ok.",
    "attempt": "Runs of this input version so far, this one included: the failed rows of the same video key and "
    "input_version before it, plus one.",
    "max_attempts": "`pssr sync`'s sync.max_attempts when this run was a sync (0: no cap); null for `pssr run`. A "
    "failed row whose attempt reached it: sync gave up on this input version (`pssr status` lists them).",
    "frames_in": "Video frames in the input.",
    "frames_out": "Video frames in the output.",
    "duration_in_s": "Input video stream duration in seconds.",
    "duration_out_s": "Output video stream duration in seconds.",
    "width": "Input frame width in pixels.",
    "height": "Input frame height in pixels.",
    "out_width": "Output frame width in pixels.",
    "out_height": "Output frame height in pixels.",
    "scale": "Upscaling factor.",
    "codec": "Output video codec.",
    "encoder": "FFmpeg encoder of the output's chunks (libx264, hevc_nvenc, ...); null when no chunk was written.",
    "segments": "Number of segments.",
    "segments_reused": "Segments whose chunks an interrupted run had already made.",
    "segment_retries": "Extra segment runs: the sum of (attempts - 1) over the video's segment rows; 0 without faults.",
    "scenes": "Number of scenes detected.",
    "audio_streams_copied": "Audio streams copied from the input.",
    "audio_streams_retimed": "Of those, streams whose packets had no increasing timestamps (e.g. all at 0 after a "
    "careless trim), copied with timestamps rebuilt from their samples.",
    "subtitle_streams_copied": "Subtitle streams copied from the input.",
    "flicker": (
        "Mean of the segments' flicker weighted by their frame pairs (pairs across segments are not measured); "
        "null when failed, or when no segment has a pair."
    ),
    "reference_uri": "HR reference the psnr, ssim and ewarp were measured against; null without one.",
    "psnr": "Frame-weighted mean of the segments' psnr; null without a reference, or when failed.",
    "ssim": "Frame-weighted mean of the segments' ssim; null without a reference, or when failed.",
    "ewarp": (
        "Mean of the segments' ewarp weighted by their frame pairs (pairs across segments are not measured); null"
        " without a reference, or when failed."
    ),
    "segments_flagged": "Segments with flagged set.",
    "min_lr_psnr": "review.min_lr_psnr the flags were taken with (dB); null: that flag was off.",
    "max_tfs": "review.max_tfs the flags were taken with; null: off.",
    "max_flicker": "review.max_flicker the flags were taken with; null: off.",
    "max_light_delta": "review.max_light_delta the flags were taken with; null: off.",
    "config_hash": "Hash of the job configuration that produced the output.",
    "pix_fmt": "Output pixel format (e.g. yuv420p, yuv420p10le, yuv422p10le, bgr0).",
    "bit_depth": "Bits per sample of the output pixel format.",
    "color_primaries": (
        "Colour primaries tagged on the output (FFmpeg's name), the source's; null when the source states none."
    ),
    "color_transfer": (
        "Transfer characteristic tagged on the output (FFmpeg's name), the source's; null when the source states none."
    ),
    "color_matrix": (
        "YUV matrix the output was converted with and is tagged with: the source's (an untagged source's as "
        "players read it: bt709 from 720 lines up, else smpte170m); gbr for RGB outputs. Null when failed before "
        "the probe."
    ),
    "color_range": "Output range: tv (limited) or pc (full), the source's; null when failed before the probe.",
    "sample_aspect_ratio": (
        "Sample (pixel) aspect ratio carried from the source, e.g. 16:15; null when the source states none."
    ),
    "rotation": "Display rotation in degrees carried from the source (frames are not rotated).",
    "field_order": (
        "The source's scan, decided on its first segment.range_frames frames (interlaced when half are flagged): "
        "progressive, tff, bff, or interlaced (flagged without an order); null when failed before the probe."
    ),
    "timecode": (
        "Start timecode carried from the source (HH:MM:SS:FF, ';' before the frames for drop-frame), as the output "
        "states it (a tmcd track in MP4/MOV, the video stream's TIMECODE tag in Matroska); null when the source "
        "has none or a malformed one."
    ),
    "timecode_source": (
        "Where the source states its timecode: 'tmcd track', 'video stream tag' or 'container tag'; 'malformed "
        "<place> <value>' for one not carried; null when it has none."
    ),
    "planning": (
        "How the source's frames were scanned for the plan: 'serial', 'sharded: N ranges' (decoded in parallel "
        "from keyframes), or 'serial: <why>' where the keyframe index could not serve (the plan is the same "
        "either way); null when failed before the probe."
    ),
    "deinterlaced": "Frames went through bwdif before the models (JobSpec deinterlace).",
    "deinterlace_mode": (
        "The bwdif filter as it ran (send_frame: one frame per frame, rate kept; send_field: one frame per field, "
        "twice the rate, JobSpec deinterlace_rate; deint=interlaced: only frames flagged interlaced, all: every "
        "frame); null when not deinterlaced."
    ),
    "source_sha256": "sha256 of the whole input file (com.pssr.source_sha256); null when it could not be read.",
    "video_sha256": (
        "sha256 of the output's coded pictures (com.pssr.video_sha256; `pssr verify` checks it); null when failed."
    ),
    "output_md5": "MD5 of the output file as written (its OUTPUT.md5 sidecar holds the same); null when failed.",
    "output_sha256": "SHA-256 of the output file as written (OUTPUT.sha256); null when failed.",
    "tool_version": "Version of pssr that wrote the output (com.pssr.tool_version).",
    "strong_model": "Registry name of the strong model (com.pssr.strong_model).",
    "strong_sha256": "sha256 of its weights (com.pssr.strong_sha256); null: classical.",
    "light_model": "Registry name of the light model (com.pssr.light_model).",
    "light_sha256": "sha256 of its weights (com.pssr.light_sha256); null: classical.",
    "wall_s": "Wall-clock seconds from the start of the video's planning (its worker's clock) to its manifest.",
    "finished_at": "When the video finished (UTC).",
}
VIDEO_SCHEMA = arrow_schema(VideoRecord, VIDEO_COLUMNS)
