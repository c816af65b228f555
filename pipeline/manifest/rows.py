"""A finished video's manifest rows: its segment records completed (the job, its models, the runs
counted, the review flags) and its video record.

Written when the video finishes or fails (jobs/run/job.py: `Job._finish`), after its segments'
run markers are counted (pipeline/runs/attempts.py), so every retry shows in `attempts`.
"""

from __future__ import annotations

import dataclasses
import posixpath
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from pipeline.config import JobSpec
from pipeline.manifest.video import VideoRecord
from pipeline.media import DEFAULT_PIX_FMT, Colour, bit_depth
from pipeline.media.decode import deinterlace_frames, deinterlace_mode, frames_per_frame
from pipeline.media.encode import written_colour
from pipeline.media.probe import output_timecode
from pipeline.plan import output_size
from pipeline.provenance import tool_version
from pipeline.quality.review import review_segment
from pipeline.segment import PAIR_METRICS, SegmentRecord
from pipeline.video import VideoState


@dataclass(frozen=True)
class JobFacts:
    """What every row of a job's manifests says about the job."""

    job_id: str
    spec: JobSpec
    config_hash: str
    strong_model: str
    strong_sha256: str | None
    light_model: str
    light_sha256: str | None
    max_attempts: int | None = None  # pssr sync's cap on failed runs per input version (None: pssr run)


def segment_rows(job: JobFacts, state: VideoState, attempts: dict[str, int]) -> list[SegmentRecord]:
    """The video's segment records, in order, completed for the manifest: the job and its models,
    the runs of each (`attempts`: chunk file name -> runs of its most-run stage), the review flags."""
    segments = [state.segments[i] for i in sorted(state.segments or {})]
    for segment in segments:
        segment.job_id = job.job_id
        segment.segment_count = state.segment_count  # those planned before the scan ended did not know it
        segment.strong_model, segment.strong_sha256 = job.strong_model, job.strong_sha256
        segment.light_model, segment.light_sha256 = job.light_model, job.light_sha256
        # A segment always ran at least once, even if its marker could not be written.
        segment.attempts = max(1, attempts.get(posixpath.basename(segment.chunk_uri), 0))
        review_segment(segment, job.spec.review)
    return segments


def video_record(job: JobFacts, state: VideoState, segments: list[SegmentRecord]) -> VideoRecord:
    """The video's row, from its state and its completed segment rows."""
    spec, probe = job.spec, state.probe
    stitch = state.stitch if not state.error else None
    measured = segments if stitch else []  # a failed video's figures would be partial
    out_width, out_height = output_size(probe, spec) if probe else (0, 0)
    pix_fmt = spec.encode.pix_fmt or DEFAULT_PIX_FMT[spec.encode.codec]
    colour = written_colour(spec.encode.codec, pix_fmt, out_height, probe.colour) if probe else Colour()
    frames = deinterlace_frames(spec.deinterlace, probe.interlaced, spec.deinterlace_rate) if probe else None
    sar = probe.sample_aspect_ratio if probe else None
    review = spec.review
    return VideoRecord(
        job_id=job.job_id,
        video_key=state.key,
        input_uri=state.info.uri,
        input_size=state.info.size,
        input_version=state.info.version,
        output_uri=state.output_uri if stitch else None,
        access_uri=state.access_uri if stitch else None,
        status="failed" if state.error else "ok",
        error=state.error or None,
        attempt=state.attempt,
        max_attempts=job.max_attempts,
        frames_in=probe.n_frames if probe else 0,
        frames_out=stitch.frames if stitch else 0,
        duration_in_s=probe.duration_s if probe else 0.0,
        duration_out_s=stitch.duration_s if stitch else 0.0,
        width=probe.width if probe else 0,
        height=probe.height if probe else 0,
        out_width=out_width,
        out_height=out_height,
        scale=spec.scale,
        codec=spec.encode.codec,
        # One for a video that stitched (the stitcher refuses chunks of different encoders).
        encoder=", ".join(sorted({s.encoder for s in segments if s.encoder})) or None,
        segments=state.segment_count,
        segments_reused=state.segments_reused,
        segment_retries=sum(s.attempts - 1 for s in segments),
        segments_flagged=sum(s.flagged for s in segments),
        min_lr_psnr=review.min_lr_psnr,
        max_tfs=review.max_tfs,
        max_flicker=review.max_flicker,
        max_light_delta=review.max_light_delta,
        scenes=len(probe.cuts) + 1 if probe else 0,
        audio_streams_copied=stitch.audio_streams if stitch else 0,
        audio_streams_retimed=stitch.audio_streams_retimed if stitch else 0,
        subtitle_streams_copied=stitch.subtitle_streams if stitch else 0,
        flicker=_video_metric(measured, "flicker"),
        reference_uri=state.reference_uri,
        psnr=_video_metric(measured, "psnr"),
        ssim=_video_metric(measured, "ssim"),
        ewarp=_video_metric(measured, "ewarp"),
        config_hash=job.config_hash,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth(spec.encode.codec, pix_fmt),
        **colour.names(),
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar else None,
        rotation=probe.rotation if probe else 0,
        field_order=probe.field_order if probe else None,
        timecode=output_timecode(probe.timecode, frames_per_frame(frames)) if probe else None,
        timecode_source=probe.timecode_source if probe else None,
        planning=probe.planning if probe else None,
        deinterlaced=frames is not None,
        deinterlace_mode=deinterlace_mode(frames),
        source_sha256=probe.sha256 if probe else None,
        video_sha256=stitch.video_sha256 if stitch else None,
        output_md5=stitch.file.md5 if stitch and stitch.file else None,
        output_sha256=stitch.file.sha256 if stitch and stitch.file else None,
        tool_version=tool_version(),
        strong_model=job.strong_model,
        strong_sha256=job.strong_sha256,
        light_model=job.light_model,
        light_sha256=job.light_sha256,
        wall_s=time.time() - state.started,
        finished_at=datetime.now(timezone.utc),
    )


def access_record(job: JobFacts, state: VideoState, video: VideoRecord, segments: list[SegmentRecord]) -> VideoRecord:
    """The access copy's row: the video's row (`video`, an ok one) with the access copy's output and format."""
    access, stitch, probe = job.spec.access, state.access_stitch, state.probe
    assert access is not None and stitch is not None and probe is not None
    pix_fmt = access.pix_fmt or DEFAULT_PIX_FMT[access.codec]
    colour = written_colour(access.codec, pix_fmt, video.out_height, probe.colour)
    return dataclasses.replace(
        video,
        output_uri=state.access_uri,
        codec=access.codec,
        encoder=", ".join(sorted({s.access_encoder for s in segments if s.access_encoder})) or None,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth(access.codec, pix_fmt),
        **colour.names(),
        frames_out=stitch.frames,
        duration_out_s=stitch.duration_s,
        audio_streams_copied=stitch.audio_streams,
        audio_streams_retimed=stitch.audio_streams_retimed,
        subtitle_streams_copied=stitch.subtitle_streams,
        video_sha256=stitch.video_sha256,
        output_md5=stitch.file.md5 if stitch.file else None,
        output_sha256=stitch.file.sha256 if stitch.file else None,
    )


def _video_metric(segments: list[SegmentRecord], name: str) -> float | None:
    """A segment metric over the whole video: the segments' values weighted by the frames they
    were taken on (ewarp and flicker: by frame pairs, what they average over); None when no segment
    has one."""
    total = weight = 0.0
    for segment in segments:
        value = getattr(segment, name)
        if value is not None:
            pairs_or_frames = segment.frames - 1 if name in PAIR_METRICS else segment.frames
            total += value * pairs_or_frames
            weight += pairs_or_frames
    return total / weight if weight else None
