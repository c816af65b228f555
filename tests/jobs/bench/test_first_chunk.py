"""`pssr bench first-chunk` (jobs/bench/first_chunk.py): real `pssr run`s on a small clip and on it
repeated by stream copy, each stopped at its first chunk; in its own process, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.media import probe_video

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_first_chunk_times_each_length_and_says_whether_the_target_is_met(tmp_path: Path):
    command = [sys.executable, "-m", "jobs.cli.main", "bench", "first-chunk", "--out", str(tmp_path)]
    command += ["--minutes", "0.05,0.1", "--size", "64x36", "--repeat", "1"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    rows = pq.read_table(tmp_path / "first_chunk.parquet").to_pylist()
    assert [(r["minutes"], r["frames"]) for r in rows] == [(0.05, 72), (0.1, 144)]
    assert all(r["seconds"] > 0 for r in rows) and rows[1]["ratio"] == pytest.approx(
        rows[1]["seconds"] / rows[0]["seconds"]
    )
    assert done.returncode == (0 if rows[1]["ratio"] <= 1.2 else 1), done.stderr[-2000:]
    # The longer clip is the first played twice: twice the frames, timestamps running on.
    (repeated,) = (tmp_path / "clips").glob("*_x2.mp4")
    probe = probe_video(repeated, detect_scenes=False)
    assert probe.n_frames == 144 and probe.duration_s == pytest.approx(6.0, abs=0.05)
