"""A real local Ray cluster shared by the end-to-end tests, and helpers to inspect outputs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import boto3
import pytest
import ray

from jobs.run.job import run_job
from pipeline.config import ReviewSpec, load_job_spec
from pipeline.storage import Storage
from tests.clips import make_clip, make_corrupt, synthetic_frame


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    # More logical CPUs than cores: the stages reserve fractions and mostly wait on each other.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def video_timeline(path) -> tuple[list[float], int, int]:
    """Presentation times (s) of every decoded frame, and the frame size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
        return sorted(times), stream.codec_context.width, stream.codec_context.height


def audio_durations(path) -> list[float]:
    """Duration (s) of each audio stream: end of its last packet minus start of its first."""
    with av.open(str(path)) as container:
        spans: dict[int, list[float]] = {}
        for packet in container.demux(container.streams.audio):
            if packet.pts is None:
                continue
            tb = Fraction(packet.time_base)
            start, end = float(packet.pts * tb), float((packet.pts + packet.duration) * tb)
            span = spans.setdefault(packet.stream.index, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
        return [end - start for start, end in spans.values()]


# Review flags on real jobs (tests/jobs/reports/test_status.py, test_report.py): a moving clip, a still one and a
# broken file. A still clip's output barely changes (tfs ~0.02, flicker ~1e-6: its first and last frames see
# fewer neighbours than the middle ones; the moving clip's segments: tfs 0.13-0.18, flicker 9e-5 to 2e-4), so
# these thresholds flag the moving clip's segments and none of the still one's; the other flags are off.
REVIEW = ReviewSpec(min_lr_psnr=None, max_tfs=0.05, max_flicker=1e-5, max_light_delta=None)


@dataclass
class FlaggedJob:
    output: str  # local folder or s3:// prefix
    storage: Storage
    inputs: dict[str, Path]  # video key -> a local copy of the input
    failed: dict[str, str]  # video key -> error, as the job summary says


def make_still_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A lossless (FFV1) clip of one picture repeated: decoded frames are identical."""
    picture = synthetic_frame(3, *size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv444p"
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _run_flagged_job(input_uri: str, output_uri: str, **overrides: object) -> dict[str, str]:
    # Ranges of 8 frames: moving.mp4's planning is shared out by range tasks (pipeline/media/ranges.py).
    spec = load_job_spec(None, {"input": input_uri, "output": output_uri, "scale": 2, "segment.max_core_frames": 8,
                                "segment.range_frames": 8, **overrides})  # fmt: skip
    spec.review = REVIEW
    return run_job(spec, echo=lambda _: None).videos_failed


@pytest.fixture(scope="session")
def flagged_local_job(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> FlaggedJob:
    """moving.mp4 (two scenes, four segments), still.mkv (two segments) and broken.mp4, upscaled x2 locally.
    The broken file's failure logs an ERROR: tests using this fixture are marked allow_error_logs."""
    src = tmp_path_factory.mktemp("flagged") / "in"
    src.mkdir()
    inputs = {
        "moving.mp4": make_clip(src / "moving.mp4", frames=30, size=(64, 36), scene_cut_at=15),
        "still.mkv": make_still_clip(src / "still.mkv", 12, (64, 36)),
    }
    make_corrupt(src / "broken.mp4")
    output = str(src.parent / "out")
    return FlaggedJob(output, Storage(), inputs, _run_flagged_job(str(src), output))


@pytest.fixture(scope="session")
def flagged_s3_job(ray_cluster: None, s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> FlaggedJob:
    """moving.mp4 upscaled x2 from and to S3 (the moto server)."""
    bucket = f"pssr-review-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    storage = Storage(s3_endpoint_url=s3_server)
    clip = make_clip(tmp_path_factory.mktemp("flagged-s3") / "moving.mp4", frames=30, size=(64, 36), scene_cut_at=15)
    storage.upload(str(clip), f"s3://{bucket}/in/moving.mp4")
    output = f"s3://{bucket}/out/"
    failed = _run_flagged_job(f"s3://{bucket}/in/", output, **{"storage.s3_endpoint_url": s3_server})
    return FlaggedJob(output, storage, {"moving.mp4": clip}, failed)
