"""examples/query_manifests.py on the outputs of real jobs (local and S3): what it prints is what the manifests say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.manifest.files import read_latest
from pipeline.quality.review import timecode
from tests.jobs.conftest import FlaggedJob

pytestmark = [pytest.mark.slow]

SCRIPT = Path(__file__).parents[2] / "examples" / "query_manifests.py"


def query(job: FlaggedJob) -> subprocess.CompletedProcess:
    """The script as a user runs it: its own process, only its arguments."""
    s3 = ["--s3-endpoint-url", job.storage.s3.s3_endpoint_url] if job.storage.s3.s3_endpoint_url else []
    return subprocess.run(
        [sys.executable, str(SCRIPT), job.output, *s3], capture_output=True, text=True, timeout=120, check=False
    )


def expected_lines(job: FlaggedJob) -> tuple[list[str], list[str]]:
    """The failed videos' and the flagged segments' lines, from the project's own reading of the manifests."""
    videos, segments = read_latest(job.storage, job.output)
    failed = [f"  {v['video_key']}: {v['error']}  (job {v['job_id']})" for v in videos if v["status"] == "failed"]
    flagged = [
        f"  {s['video_key']} segment {s['segment_index']}: {timecode(s['start_s'])}-{timecode(s['end_s'])} "
        f"(frames {s['core_start']}-{s['core_end'] - 1}): tfs {s['tfs']:.4g}, flicker {s['flicker']:.4g}"
        for s in segments
        if s["flagged"]
    ]
    return failed, flagged


def check(job: FlaggedJob, failed_count: int) -> None:
    result = query(job)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    failed, flagged = expected_lines(job)
    assert len(failed) == failed_count and flagged  # the fixture's broken file; tfs, flicker flags on the moving clip
    assert lines[0].endswith(f"{failed_count} failed; {len(flagged)} segment(s) flagged for review")
    if failed:
        start = lines.index("failed videos:")
        assert lines[start + 1 : start + 1 + len(failed)] == failed
    start = lines.index("flagged segments:")
    assert lines[start + 1 : start + 1 + len(flagged)] == flagged
    assert "against the reference" not in result.stdout  # no reference: no psnr/ssim/ewarp


@pytest.mark.allow_error_logs  # the broken input's failure (see flagged_local_job)
def test_a_local_output(flagged_local_job: FlaggedJob):
    check(flagged_local_job, failed_count=1)
    assert "broken.mp4: " in query(flagged_local_job).stdout


def test_an_s3_output(flagged_s3_job: FlaggedJob):
    check(flagged_s3_job, failed_count=0)


def test_no_manifests(tmp_path: Path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "no manifests" in result.stderr
