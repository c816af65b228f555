"""End to end on a local Ray cluster: local -> local and S3 -> S3 (moto over HTTP)."""

from __future__ import annotations

import math
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import torch

from jobs.run.job import Job, run_job
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_latest, read_manifests
from pipeline.manifest.video import VIDEO_SCHEMA
from pipeline.naming import chunk_uri
from pipeline.segment import SEGMENT_SCHEMA
from pipeline.storage import Storage
from tests.clips import make_clip
from tests.jobs.conftest import REVIEW, FlaggedJob, audio_durations, video_timeline

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

AUDIO_FRAME_S = 1024 / 48_000
NULLABLE = {"error", "output_uri", "tfs", "lr_psnr", "detail_gain", "light_delta", "chunk_uri", "max_attempts"}
NULLABLE |= {"access_uri", "access_encoder"}  # an access copy (tests/jobs/test_access_copy.py)
# What an untagged, square-pixel, progressive source without timecode leaves unspecified (tests/jobs/test_formats.py
# sets them).
NULLABLE |= {"color_primaries", "color_transfer", "sample_aspect_ratio", "deinterlace_mode", "timecode", "timecode_source"}
REFERENCE_ONLY = {"reference_uri", "psnr", "ssim", "ewarp"}  # benchmark mode (tests/jobs/test_reference.py)


def spec_for(input_uri: str, output_uri: str, **overrides):
    return load_job_spec(None, {"input": input_uri, "output": output_uri, "segment.max_core_frames": 8, **overrides})


def assert_upscaled(source: Path, output: Path, scale: int, audio_streams: int) -> None:
    src_times, width, height = video_timeline(source)
    out_times, out_width, out_height = video_timeline(output)
    assert len(out_times) == len(src_times)
    assert (out_width, out_height) == (width * scale, height * scale)
    # Source timing survives: every frame keeps its presentation time (1 ms: MP4/MKV rounding).
    assert max(abs(a - b) for a, b in zip(src_times, out_times)) <= 1e-3
    src_audio, out_audio = audio_durations(source), audio_durations(output)
    assert len(src_audio) == len(out_audio) == audio_streams
    for a, b in zip(src_audio, out_audio):
        assert abs(a - b) <= AUDIO_FRAME_S


def read_manifest(path: str, filesystem=None):
    return pads.dataset(path, format="parquet", filesystem=filesystem).to_table()


def assert_complete(table, schema, count: int) -> None:
    assert table.num_rows == count
    for name in schema.names:
        if name in REFERENCE_ONLY:
            assert table.column(name).null_count == count, name
        elif name not in NULLABLE:
            assert table.column(name).null_count == 0, name
    assert set(table.column("status").to_pylist()) == {"ok"}


def test_local_folder_to_local_folder(tmp_path: Path):
    src = tmp_path / "in"
    (src / "sub dir").mkdir(parents=True)
    a = make_clip(src / "a.mp4", frames=30, size=(64, 36), audio_streams=2, scene_cut_at=15)
    b = make_clip(src / "sub dir" / "b.mp4", frames=21, size=(48, 32), audio_streams=1, vfr=True, subtitle=True)
    out = tmp_path / "out"

    started = datetime.now(timezone.utc)
    summary = run_job(spec_for(str(src), str(out), scale=4), echo=lambda _: None)

    assert summary.ok and sorted(summary.videos_ok) == ["a.mp4", "sub dir/b.mp4"]
    assert_upscaled(a, out / "a_x4.mp4", 4, audio_streams=2)
    assert_upscaled(b, out / "sub dir" / "b_x4.mp4", 4, audio_streams=1)
    videos = read_manifest(str(out / "_pssr" / "manifest" / "videos"))
    segments = read_manifest(str(out / "_pssr" / "manifest" / "segments"))
    assert_complete(videos, VIDEO_SCHEMA, 2)
    row = {k: v[0] for k, v in videos.filter(pads.field("video_key") == "a.mp4").to_pydict().items()}
    assert (row["frames_in"], row["frames_out"], row["audio_streams_copied"], row["scenes"]) == (30, 30, 2, 2)
    assert row["output_uri"].endswith("a_x4.mp4")
    assert row["encoder"] == "libx264"  # the default h264 on a machine without NVENC
    b_row = videos.filter(pads.field("video_key") == "sub dir/b.mp4").to_pylist()[0]
    assert b_row["subtitle_streams_copied"] == 1
    # a: scenes of 15 frames -> 2 segments each; b: 21 frames -> 3 segments.
    assert_complete(segments, SEGMENT_SCHEMA, 7)
    for seg in segments.to_pylist():
        assert all(math.isfinite(seg[m]) for m in ("tfs", "flicker", "lr_psnr", "detail_gain", "light_delta"))
        assert seg["context_start"] <= seg["core_start"] < seg["core_end"] <= seg["context_end"]
        assert (seg["hr_width"], seg["hr_height"]) == (seg["lr_width"] * 4, seg["lr_height"] * 4)
        assert seg["encoder"] == "libx264"
        assert started <= seg["encoded_at"] <= datetime.now(timezone.utc)
    a_segments = sorted(
        (s["core_start"], s["core_end"], s["scene_index"]) for s in segments.to_pylist() if s["video_key"] == "a.mp4"
    )
    assert a_segments == [(0, 7, 0), (7, 15, 0), (15, 22, 1), (22, 30, 1)]
    assert not (out / "_pssr" / "staging").exists() or not any((out / "_pssr" / "staging").rglob("*.mp4"))
    # Fixity: a sidecar per output and the job's list of both, which coreutils checks from OUTPUT.
    assert (out / "sub dir" / "b_x4.mp4.sha256").read_text() == f"{b_row['output_sha256']}  b_x4.mp4\n"
    assert (out / "a_x4.mp4.md5").read_text() == f"{row['output_md5']}  a_x4.mp4\n"
    for tool, suffix in (("md5sum", "md5"), ("sha256sum", "sha256")):
        listed = out / "_pssr" / "fixity" / f"{summary.job_id}.{suffix}"
        assert sorted(line.split("  ", 1)[1] for line in listed.read_text().splitlines()) == [
            "a_x4.mp4", "sub dir/b_x4.mp4"
        ]
        checked = subprocess.run([tool, "-c", str(listed.relative_to(out))], cwd=out, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_s3_prefix_to_s3_prefix(tmp_path: Path, s3_server: str, s3_bucket: str):
    storage = Storage(s3_endpoint_url=s3_server)
    clip = make_clip(tmp_path / "clip.mp4", frames=20, size=(64, 36), audio_streams=1, scene_cut_at=10)
    storage.upload(str(clip), f"s3://{s3_bucket}/in/shows/ep 1.mp4")

    spec = spec_for(
        f"s3://{s3_bucket}/in/", f"s3://{s3_bucket}/out/", scale=2, **{"storage.s3_endpoint_url": s3_server}
    )
    summary = run_job(spec, echo=lambda _: None)

    assert summary.ok
    output_uri = f"s3://{s3_bucket}/out/shows/ep 1_x2.mp4"
    assert summary.outputs == {"shows/ep 1.mp4": output_uri}
    local = tmp_path / "out.mp4"
    storage.download(output_uri, str(local))
    assert_upscaled(clip, local, 2, audio_streams=1)
    fs, root = storage.arrow_filesystem(f"s3://{s3_bucket}/out/_pssr/manifest")
    assert_complete(read_manifest(f"{root}/videos", fs), VIDEO_SCHEMA, 1)
    assert_complete(read_manifest(f"{root}/segments", fs), SEGMENT_SCHEMA, 4)
    assert storage.list_uris(f"s3://{s3_bucket}/out/_pssr/staging/") == []


@pytest.mark.allow_error_logs
def test_a_segment_failure_fails_its_video_cleanly(tmp_path: Path):
    """A chunk of one video cannot be written (a folder stands at its place in staging): that
    segment fails in the encode stage, the other video finishes, and nothing of the failed one is
    left at its key or in staging."""
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "keep.mp4", frames=12, size=(32, 24))
    make_clip(src / "gone.mp4", frames=12, size=(32, 24))
    out = tmp_path / "out"
    job = Job(spec_for(str(src), str(out), scale=2), echo=lambda _: None)
    (gone,) = [state for state in job.list_videos() if state.key == "gone.mp4"]
    Path(chunk_uri(gone.staging(str(out), job.config_hash), 0, "mp4")).mkdir(parents=True)
    job.run()

    assert job.summary.videos_ok == ["keep.mp4"]
    assert "encode of frames 0-" in job.summary.videos_failed["gone.mp4"]
    assert not (out / "gone_x2.mp4").exists()
    assert not list((out / "_pssr").rglob("chunk_*"))
    videos_table, segments = read_manifests(Storage(), str(out))
    rows = sorted(segments.filter(pads.field("video_key") == "gone.mp4").to_pylist(), key=lambda s: s["segment_index"])
    assert [s["status"] for s in rows] == ["failed", "ok"] and rows[0]["error"].startswith("encode of frames 0-")


@pytest.mark.allow_error_logs
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_pool_that_cannot_start_fails_its_videos_with_the_reason(tmp_path: Path):
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=8, size=(32, 24))
    summary = run_job(spec_for(str(tmp_path / "in"), str(tmp_path / "out"), device="cuda"), echo=lambda _: None)
    assert not summary.ok
    assert summary.videos_failed["a.mp4"].startswith("pipeline: RuntimeError: device 'cuda' requested but CUDA")
    assert not (tmp_path / "out" / "a_x4.mp4").exists()


@pytest.mark.allow_error_logs  # the broken input's failure (see flagged_local_job)
def test_flicker_in_the_segment_and_video_rows(flagged_local_job: FlaggedJob):
    """A real run (tests/jobs/conftest.py): flicker per segment with the frame where it is worst, and per
    video weighted by frame pairs; a moving clip's added detail changes along the motion, a still one's barely."""
    videos, segments = read_latest(flagged_local_job.storage, flagged_local_job.output)
    by_key = {v["video_key"]: v for v in videos}
    for key in ("moving.mp4", "still.mkv"):
        rows = [s for s in segments if s["video_key"] == key]
        for s in rows:
            assert s["core_start"] < s["flicker_worst_frame"] < s["core_end"] and s["flicker_worst_s"] > 0
            assert s["flag_flicker"] == (key == "moving.mp4")
        pairs = [s["frames"] - 1 for s in rows]
        mean = sum(s["flicker"] * n for s, n in zip(rows, pairs)) / sum(pairs)
        assert by_key[key]["flicker"] == pytest.approx(mean, rel=1e-9)
        assert by_key[key]["max_flicker"] == REVIEW.max_flicker
    moving = [s["flicker"] for s in segments if s["video_key"] == "moving.mp4"]
    still = [s["flicker"] for s in segments if s["video_key"] == "still.mkv"]
    # The still clip's output barely changes (its first and last frames see fewer neighbours): the
    # review threshold lies between the two by an order of magnitude each way.
    assert min(moving) > 5 * REVIEW.max_flicker and max(still) < REVIEW.max_flicker / 5
    assert by_key["broken.mp4"]["flicker"] is None
    # Planned by range tasks where the keyframes allow, serially (saying why) where they do not.
    assert by_key["moving.mp4"]["planning"] == "sharded: 2 ranges"
    assert by_key["still.mkv"]["planning"] == "serial: no keyframe after the first frame"
    assert by_key["broken.mp4"]["planning"] is None
