"""`pssr status` on the outputs of real jobs (local and S3), with review flags set to catch motion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli.main import cli
from pipeline.manifest.files import read_latest
from pipeline.quality.review import timecode
from tests.jobs.conftest import REVIEW, FlaggedJob, video_timeline

pytestmark = [pytest.mark.slow]


def status(job: FlaggedJob, *args: str) -> tuple[int, str]:
    s3 = ["--s3-endpoint-url", job.storage.s3.s3_endpoint_url] if job.storage.s3.s3_endpoint_url else []
    result = CliRunner().invoke(cli, ["status", job.output, *s3, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def past(segment: dict) -> list[str]:
    """The temporal metrics of a segment row past REVIEW's thresholds, from its figures."""
    return [
        m for m in ("tfs", "flicker")
        if segment["status"] == "ok" and segment[m] is not None and segment[m] > getattr(REVIEW, f"max_{m}")
    ]  # fmt: skip


def expected_flags(job: FlaggedJob) -> dict[str, list[int]]:
    """video key -> indices of the segments whose tfs or flicker is past the threshold, from the manifests' figures."""
    _, segments = read_latest(job.storage, job.output)
    flagged: dict[str, list[int]] = {}
    for s in segments:
        if past(s):
            flagged.setdefault(s["video_key"], []).append(s["segment_index"])
    return flagged


@pytest.mark.allow_error_logs  # the broken input's failure (see flagged_local_job)
def test_the_table_says_where_each_video_stands(flagged_local_job: FlaggedJob):
    job = flagged_local_job
    assert list(job.failed) == ["broken.mp4"]
    code, output = status(job)

    assert code == 1  # a video's latest row failed
    rows = {line.split()[0]: line.split() for line in output.splitlines()[1:4]}
    assert {key: row[1] for key, row in rows.items()} == {
        "broken.mp4": "failed", "moving.mp4": "flagged", "still.mkv": "ok",
    }  # fmt: skip
    flags = expected_flags(job)
    assert sorted(flags) == ["moving.mp4"]  # the still clip's output does not move either
    assert rows["moving.mp4"][2:6] == ["30", "00:00:01.250", "4", str(len(flags["moving.mp4"]))]
    assert rows["still.mkv"][2:6] == ["12", "00:00:00.500", "2", "0"]
    assert "3 video(s): 1 ok, 1 flagged, 1 failed; 42 frames" in output
    assert f"failed:\n  broken.mp4: {job.failed['broken.mp4']}\n" in output


@pytest.mark.allow_error_logs
def test_flagged_segments_with_their_time_codes(flagged_local_job: FlaggedJob):
    job = flagged_local_job
    code, output = status(job, "--flagged")

    assert code == 1
    listing = output.split("flagged segments")[1].splitlines()[2:]  # after the count and the header
    _, segments = read_latest(job.storage, job.output)
    by_index = {s["segment_index"]: s for s in segments if s["video_key"] == "moving.mp4"}
    times, _, _ = video_timeline(job.inputs["moving.mp4"])  # the source's own frame times
    assert [int(line.split()[1]) for line in listing] == expected_flags(job)["moving.mp4"]
    for line in listing:
        video, index, span, frames, flags = line.split(maxsplit=4)
        segment = by_index[int(index)]
        first, last = segment["core_start"], segment["core_end"] - 1
        assert video == "moving.mp4" and frames == f"{first}-{last}"
        assert span == f"{timecode(times[first] - times[0])}-{timecode(times[last] - times[0])}"
        assert past(segment) == ["tfs", "flicker"]  # the moving clip's segments pass both
        assert flags == f"tfs {segment['tfs']:.4g} > {REVIEW.max_tfs:g}; flicker {segment['flicker']:.4g} > {REVIEW.max_flicker:g}"


@pytest.mark.allow_error_logs
def test_json(flagged_local_job: FlaggedJob):
    code, output = status(flagged_local_job, "--json", "--flagged")
    document = json.loads(output)

    assert code == 1
    assert document["totals"] == {
        "videos": 3, "ok": 1, "flagged": 1, "failed": 1, "removed": 0, "frames": 42,
        "duration_s": pytest.approx(1.75), "segments_flagged": len(expected_flags(flagged_local_job)["moving.mp4"]),
    }  # fmt: skip
    broken = next(v for v in document["videos"] if v["video_key"] == "broken.mp4")
    assert broken["status"] == "failed" and broken["error"] == flagged_local_job.failed["broken.mp4"]
    segment = document["flagged_segments"][0]
    assert segment["video_key"] == "moving.mp4" and segment["flags"]["tfs"]["threshold"] == REVIEW.max_tfs
    assert segment["flags"]["flicker"]["threshold"] == REVIEW.max_flicker and segment["flags"]["flicker"]["value"] > 0
    assert segment["time"] == f"{timecode(segment['start_s'])}-{timecode(segment['end_s'])}"


def test_an_s3_output(flagged_s3_job: FlaggedJob):
    assert flagged_s3_job.failed == {}
    code, output = status(flagged_s3_job, "--flagged")

    assert code == 0  # flagged is not failed
    assert output.splitlines()[1].split()[:2] == ["moving.mp4", "flagged"]
    listing = output.split("flagged segments")[1].splitlines()[2:]
    assert [int(line.split()[1]) for line in listing] == expected_flags(flagged_s3_job)["moving.mp4"]


def test_an_output_without_manifests(tmp_path: Path):
    result = CliRunner().invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "no manifests under" in result.output
