"""A running job's progress object: written, read back by `pssr status`, deleted, on local folders and S3."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli.main import cli
from jobs.reports.status import print_running
from pipeline.runs.live import clear_live, live_uri, read_live, write_live
from pipeline.storage import Storage

PROGRESS = {
    "started_at": "2026-12-07T06:15:02+00:00", "frames_done": 40, "frames_total": 96, "frames_per_s": 1.25,
    "eta_s": 43.0, "videos_ok": 0, "videos_failed": 0, "videos_skipped": 0, "videos_total": 1,
    "videos": [{"video": "in/sample.mp4", "frames_done": 40, "frames": 96, "segments_done": 0, "segments": 2}],
}  # fmt: skip


@pytest.mark.parametrize("where", ["local", "s3"])
def test_written_read_back_and_cleared(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if where == "s3":
        storage, output = request.getfixturevalue("s3_storage"), f"s3://{request.getfixturevalue('s3_bucket')}/out"
    else:
        storage, output = Storage(), str(tmp_path / "out")
    assert read_live(storage, output) == []
    write_live(storage, output, "J1", PROGRESS)
    write_live(storage, output, "J2", {**PROGRESS, "frames_done": 0})
    write_live(storage, output, "J1", {**PROGRESS, "frames_done": 48})  # rewritten in place
    storage.write_bytes(live_uri(output, "J3"), b"{not json")  # caught mid-write by a store without atomic puts

    found = read_live(storage, output)
    assert sorted((d["job_id"], d["frames_done"]) for d in found) == [("J1", 48), ("J2", 0)]
    assert all(datetime.fromisoformat(d["updated_at"]).tzinfo is not None for d in found)
    clear_live(storage, output, "J1")
    assert [d["job_id"] for d in read_live(storage, output)] == ["J2"]


def test_status_shows_running_jobs_and_says_when_one_went_quiet(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, 6, 20, tzinfo=timezone.utc)
    fresh = {**PROGRESS, "job_id": "J1", "updated_at": (now - timedelta(seconds=12)).isoformat()}
    quiet = {**PROGRESS, "job_id": "J0", "updated_at": (now - timedelta(minutes=14)).isoformat(), "videos": []}
    lines: list[str] = []
    print_running([quiet, fresh], lines.append, now)

    assert lines[0].startswith("running: job J0") and lines[0].endswith("no update for 14m00s: it may have stopped")
    assert lines[1] == (
        "running: job J1 (since 2026-12-07T06:15:02+00:00), frames 40/96, 1.2 frames/s, ETA 0m43s; "
        "videos 0/1 done; updated 0m12s ago"
    )
    assert lines[2].split() == ["video", "frames", "done", "segments"]
    assert lines[3].split() == ["in/sample.mp4", "40/96", "41%", "0/2"]
    assert len(lines) == 4


def test_status_of_an_output_with_a_running_job_and_no_manifest_yet(tmp_path: Path) -> None:
    output = str(tmp_path / "out")
    write_live(Storage(), output, "J1", PROGRESS)
    result = CliRunner().invoke(cli, ["status", output])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("running: job J1") and "in/sample.mp4" in result.output
    assert "video(s)" not in result.output  # no finished video to total
    json_result = CliRunner().invoke(cli, ["status", output, "--json"])
    assert [job["job_id"] for job in json.loads(json_result.output)["running"]] == ["J1"]
