"""`pssr bench sync` (jobs/bench/sync_index.py): a real decision over a moto bucket with nothing new."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from jobs.cli.main import cli


def test_a_bucket_with_nothing_new_is_decided_from_its_listings_and_index(tmp_path: Path):
    result = CliRunner().invoke(cli, ["bench", "sync", "--out", str(tmp_path), "--keys", "300", "--repeat", "1"])
    assert result.exit_code == 0, result.output
    [row] = pq.read_table(tmp_path / "sync.parquet").to_pylist()
    assert (row["keys"], row["to_process"], row["skipped"]) == (300, 0, 300)
    # Listings and the index: no request per object (300 inputs would be 300 HEADs or GETs).
    assert 0 < row["requests"] < 20 and "HeadObject" in row["by_operation"] and row["seconds"] > 0
    assert "nothing to do decided in" in result.output
