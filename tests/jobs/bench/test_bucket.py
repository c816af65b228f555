"""`pssr bench bucket` (jobs/bench/bucket.py): a moto-served bucket of short clips through real
jobs, in its own process, as a user runs it; and the chunk-gap figure it reads drains from."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.bench.bucket import chunk_gaps

REPO = Path(__file__).resolve().parents[3]


def test_chunk_gaps_are_the_longest_and_median_time_between_chunks_written_in_any_order():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    written = [start + timedelta(seconds=s) for s in (3.0, 0.0, 1.0, 9.0, 2.0)]  # a 6 s drain before the last
    assert chunk_gaps(pa.table({"encoded_at": written})) == (6.0, 1.0)


@pytest.mark.slow
def test_bucket_runs_a_tenth_then_the_whole_bucket_and_says_whether_the_targets_are_met(tmp_path: Path):
    command = [sys.executable, "-m", "jobs.cli.main", "bench", "bucket", "--out", str(tmp_path)]
    command += ["--clips", "10", "--frames", "8", "--size", "64x36"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400)
    rows = pq.read_table(tmp_path / "bucket.parquet").to_pylist()
    assert [(r["clips"], r["frames"]) for r in rows] == [(1, 8), (10, 80)]
    for row in rows:
        assert 0 < row["startup_s"] < row["job_s"] and row["work_s"] == pytest.approx(row["job_s"] - row["startup_s"])
        assert row["ratio"] == pytest.approx(row["work_s"] / row["ideal_s"]) and row["driver_mb"] > 50
    assert rows[1]["ideal_s"] == pytest.approx(10 * rows[0]["ideal_s"])  # one clip's work, ten times
    met = rows[1]["ratio"] <= 1.3 and rows[1]["driver_mb"] / rows[0]["driver_mb"] <= 1.2
    assert done.returncode == (0 if met else 1), done.stderr[-2000:]
    assert (tmp_path / "bucket.md").read_text().rstrip().endswith(": met" if met else ": NOT met")
