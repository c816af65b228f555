"""Re-runs: what is done is not done again; a killed driver's finished chunks are reused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import pytest

from jobs.run.job import run_job
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.storage import Storage
from tests.clips import make_clip

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


def spec_for(src: Path, out: Path, **overrides):
    return load_job_spec(None, {"input": str(src), "output": str(out), "scale": 2, "segment.max_core_frames": 6,
                                **overrides})  # fmt: skip


def quiet(_: str) -> None:
    pass


def test_rerun_skips_done_videos_and_redoes_changed_ones(tmp_path: Path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "a.mp4", frames=10, size=(32, 24))
    make_clip(src / "b.mp4", frames=10, size=(32, 24))
    first = run_job(spec_for(src, out), echo=quiet)
    assert sorted(first.videos_ok) == ["a.mp4", "b.mp4"]

    again = run_job(spec_for(src, out), echo=quiet)
    assert (again.videos_ok, sorted(again.videos_skipped)) == ([], ["a.mp4", "b.mp4"])

    make_clip(src / "b.mp4", frames=12, size=(32, 24))  # a new version of b
    changed_input = run_job(spec_for(src, out), echo=quiet)
    assert (changed_input.videos_ok, changed_input.videos_skipped) == (["b.mp4"], ["a.mp4"])

    changed_config = run_job(spec_for(src, out, **{"encode.crf": 30}), echo=quiet)
    assert sorted(changed_config.videos_ok) == ["a.mp4", "b.mp4"] and not changed_config.videos_skipped

    (out / "a_x2.mp4").unlink()  # an output that went missing is made again
    assert run_job(spec_for(src, out, **{"encode.crf": 30}), echo=quiet).videos_ok == ["a.mp4"]


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize("inside", ["up", "."])
def test_outputs_written_into_the_input_folder_are_not_taken_for_inputs(tmp_path: Path, inside: str):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=8, size=(32, 24))
    out = src / inside  # a folder below INPUT, or INPUT itself
    assert run_job(spec_for(src, out), echo=quiet).videos_ok == ["a.mp4"]
    again = run_job(spec_for(src, out), echo=quiet)
    assert (again.videos_ok, again.videos_failed, again.videos_skipped) == ([], {}, ["a.mp4"])
    assert sorted(p.name for p in src.rglob("*.mp4")) == ["a.mp4", "a_x2.mp4"]


@pytest.mark.allow_error_logs
def test_killed_driver_resumes_from_finished_chunks(tmp_path: Path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "film.mkv", frames=72, size=(48, 32), audio_streams=1)
    args = ["run", str(src), str(out), "--scale", "2", "--segment-frames", "4", "--codec", "ffv1",
            "--num-cpus", "2"]  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli.main", *args], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    staging = out / "_pssr" / "staging"
    deadline = time.monotonic() + 240
    while len(list(staging.rglob("*.json"))) < 3:
        assert driver.poll() is None, "the job ended before it could be interrupted"
        assert time.monotonic() < deadline, "no chunk was finished in time"
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local cluster it started
    driver.wait()
    finished_before = len(list(staging.rglob("*.json")))
    assert not (out / "film_x2.mkv").exists()

    resumed_at = datetime.now(timezone.utc)
    resumed = run_job(spec_for(src, out, **{"segment.max_core_frames": 4, "encode.codec": "ffv1"}), echo=quiet)

    assert resumed.videos_ok == ["film.mkv"]
    assert resumed.segments_reused >= finished_before >= 3
    videos, segments = read_manifests(Storage(), str(out))
    assert videos.to_pylist()[-1]["segments_reused"] == resumed.segments_reused
    assert sum(segments.column("reused").to_pylist()) == resumed.segments_reused
    assert set(segments.column("encoder").to_pylist()) == {"ffv1"}  # reused chunks' records keep it
    assert all(s["flicker"] is not None and s["flicker_worst_s"] is not None for s in segments.to_pylist())  # so
    # and when they were written: before the resumed run, the others during it
    assert all((s["encoded_at"] < resumed_at) == s["reused"] for s in segments.to_pylist())
    assert not list(staging.rglob("chunk_*"))
    clean = run_job(spec_for(src, tmp_path / "clean", **{"segment.max_core_frames": 4, "encode.codec": "ffv1"}),
                    echo=quiet)  # fmt: skip
    assert clean.ok
    assert np.array_equal(decode_all(out / "film_x2.mkv"), decode_all(tmp_path / "clean" / "film_x2.mkv"))
