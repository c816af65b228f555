"""`pssr bench scale` (jobs/bench/scale.py): a real run on a small clip and a 2-node local cluster,
in its own process (a test session may hold a Ray connection already)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_scale_plans_a_clip_both_ways_and_says_whether_the_target_is_met(tmp_path: Path):
    command = [sys.executable, "-m", "jobs.cli.main", "bench", "scale", "--out", str(tmp_path), "--frames", "240"]
    command += ["--size", "64x36", "--gop", "12", "--scene-frames", "100", "--nodes", "2", "--range-frames", "60"]
    done = subprocess.run([*command, "--repeat", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    rows = pq.read_table(tmp_path / "scale.parquet").to_pylist()
    assert [r["ranges"] for r in rows] == ["serial", "sharded: 4 ranges"]
    assert all(r["same_plan"] and r["nodes"] == 2 and r["frames"] == 240 and r["seconds"] > 0 for r in rows)
    speedup = rows[0]["seconds"] / rows[1]["seconds"]
    assert rows[1]["speedup"] == pytest.approx(speedup)
    assert done.returncode == (0 if speedup >= 1.8 else 1), done.stderr[-2000:]
    assert "plans identical: yes" in done.stdout and (tmp_path / "scale.md").read_text().startswith("| planning |")
