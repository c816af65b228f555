"""Run markers: each stage run leaves its own, and the driver counts re-runs from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.runs.attempts import mark_run, run_marker_uri, segment_attempts
from pipeline.storage import Storage, join_uri


def test_attempts_are_the_runs_of_the_most_run_stage(storage_root: tuple[Storage, str]):
    storage, root = storage_root
    staging = join_uri(root, "staging")
    first, second = f"{staging}/chunk_000000.mkv", f"{staging}/chunk_000001.mkv"
    for stage in ("decode", "strong", "light", "encode"):
        mark_run(storage, first, stage)
        mark_run(storage, second, stage)
    # The light actor of the second segment was lost mid-batch, and its batch ran again twice.
    mark_run(storage, second, "light")
    mark_run(storage, second, "light")
    # What else lives in staging is not a run.
    storage.write_bytes(second, b"chunk")
    storage.write_bytes(f"{second}.json", b"{}")

    assert segment_attempts(storage, staging) == {"chunk_000000.mkv": 1, "chunk_000001.mkv": 3}


def test_each_run_gets_its_own_marker_and_an_empty_staging_counts_none(tmp_path: Path):
    chunk = str(tmp_path / "chunk_000000.mp4")
    assert run_marker_uri(chunk, "strong") != run_marker_uri(chunk, "strong")
    assert segment_attempts(Storage(), str(tmp_path / "absent")) == {}
    with pytest.raises(ValueError, match="plain word"):
        run_marker_uri(chunk, "light.v2")  # would break the marker's name apart
