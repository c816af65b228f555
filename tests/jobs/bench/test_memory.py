"""`pssr bench memory`: the peak-RSS sampler sees a grandchild's real allocation and the disk sampler a
scratch file that came and went; processes are given their Ray roles, and a role whose peak grew
past the limit fails the verdict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from jobs.bench.memory import OBJECT_STORE, RATIO_LIMIT, SCRATCH_DISK, compare, role_of
from jobs.bench.peak_disk import PeakDiskSampler, tree_bytes
from jobs.bench.peak_rss import PeakRssSampler, ProcessPeak, command_line, descendants
from jobs.cli.main import cli

MIB = 2**20
# Touches every page (bytes repetition writes them), holds them while the sampler looks, exits.
ALLOCATE_200_MB = "import time; block = b'x' * (200 * 2**20); time.sleep(1.5)"


def test_sampler_sees_a_grandchild_that_allocates_200_mb() -> None:
    # The root only starts the allocating process and waits: the peak is a grandchild's, and it
    # has exited (and is remembered) by the time the sampler stops.
    root = subprocess.Popen([sys.executable, "-c", _runs(ALLOCATE_200_MB)])
    with PeakRssSampler(root.pid, interval=0.05) as sampler:
        root.wait()
    peaks = {p.pid: p for p in sampler.peaks()}
    allocator = [p for pid, p in peaks.items() if pid != root.pid]
    assert len(allocator) == 1 and allocator[0].titles[0].endswith(ALLOCATE_200_MB)
    assert allocator[0].peak_bytes >= 200 * MIB
    assert allocator[0].peak_bytes < 400 * MIB  # the block once, plus an interpreter
    assert peaks[root.pid].peak_bytes < 100 * MIB  # each process's own peak, not the tree's sum


def _runs(script: str) -> str:
    """A Python script that runs `script` in a child process and waits for it."""
    return f"import subprocess, sys; subprocess.run([sys.executable, '-c', {script!r}])"


def test_descendants_lists_children_and_grandchildren() -> None:
    sleeper = "import time; time.sleep(30)"
    root = subprocess.Popen([sys.executable, "-c", _runs(_runs(sleeper))])
    try:
        for _ in range(400):  # the grandchild starts a moment after its parent
            if len(descendants(root.pid)) == 2:
                break
            time.sleep(0.05)
        found = descendants(root.pid)
        assert len(found) == 2 and root.pid not in found
        assert sorted(command_line(pid).endswith(sleeper) for pid in found) == [False, True]
    finally:
        for pid in descendants(root.pid):
            os.kill(pid, signal.SIGKILL)
        root.kill()
        root.wait()


def _peak(pid: int, *titles: str) -> ProcessPeak:
    return ProcessPeak(pid, 1, list(titles))


def test_roles_from_the_titles_ray_processes_run_under() -> None:
    worker = "/venv/bin/python /venv/lib/python3.11/site-packages/ray/_private/workers/default_worker.py --raylet_socket_name=x"
    assert role_of(_peak(1, "python -m jobs.bench.memory {}"), driver=1) == "driver"
    assert role_of(_peak(2, worker, "ray::IDLE", "ray::MapWorker(MapBatches(StrongStage)).submit"), 1) == "strong actor"
    assert role_of(_peak(3, "ray::MapWorker(MapBatches(LightStage))"), 1) == "light actor"
    assert role_of(_peak(4, "ray::IDLE", "ray::Map(decode_segment)", "ray::stitch_video"), 1) == "task workers"
    assert role_of(_peak(5, worker, "ray::IDLE", "ray::_StatsActor"), 1) == "other workers"
    assert role_of(_peak(6, "/venv/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=x"), 1) == "raylet"
    assert role_of(_peak(7, "/venv/lib/ray/core/src/ray/gcs/gcs_server --log_dir=/tmp/x"), 1) == "gcs"
    assert role_of(_peak(8, "python -u /venv/lib/ray/dashboard/agent.py", "ray::DashboardAgent"), 1) == "ray helpers"


def test_a_role_that_grew_past_the_limit_fails() -> None:
    def row(run: str, role: str, mb: float) -> dict:
        return {"run": run, "role": role, "peak_rss_bytes": int(mb * MIB)}

    runs = {
        "short": [row("short", "driver", 400), row("short", "light actor", 800), row("short", "light actor", 700)],
        "long": [row("long", "driver", 400 * RATIO_LIMIT), row("long", "light actor", 800 * RATIO_LIMIT + 1)],
    }
    rows = {r["role"]: r for r in compare(runs, object_store_budget=0)}
    assert rows["driver"]["ok"] and rows["driver"]["ratio"] == RATIO_LIMIT
    light = rows["light actor"]
    assert not light["ok"] and (light["processes_short"], light["processes_long"]) == (2, 1)
    assert light["peak_short_mb"] == 800  # the largest process of the role, not the sum


def test_the_object_store_is_held_to_the_budget_not_to_the_ratio() -> None:
    def runs(short_mb: float, long_mb: float) -> dict:
        return {run: [{"run": run, "role": OBJECT_STORE, "peak_rss_bytes": int(mb * MIB)}] for run, mb in
                (("short", short_mb), ("long", long_mb))}  # fmt: skip

    filling = compare(runs(7, 15), object_store_budget=17 * MIB)[0]
    assert filling["ok"] and filling["ratio"] > RATIO_LIMIT and filling["budget_mb"] == 17
    assert not compare(runs(7, 18), object_store_budget=17 * MIB)[0]["ok"]


def test_cli_memory_command_options() -> None:
    result = CliRunner().invoke(cli, ["bench", "memory", "--help"])
    assert result.exit_code == 0
    for option in ("--frames", "--factor", "--width", "--height", "--scale", "--segment-frames", "--config"):
        assert option in result.output


def test_the_scratch_disk_is_held_to_the_ratio_from_a_mib_up() -> None:
    def runs(short_mb: float, long_mb: float) -> dict:
        return {run: [{"run": run, "role": SCRATCH_DISK, "peak_rss_bytes": int(mb * MIB)}] for run, mb in
                (("short", short_mb), ("long", long_mb))}  # fmt: skip

    assert compare(runs(0, 0.9), object_store_budget=0)[0]["ok"]  # a chunk caught in one run, not the other
    grown = compare(runs(3, 30), object_store_budget=0)[0]  # what a stitch that copies every chunk gives
    assert not grown["ok"] and grown["ratio"] == 10 and grown["processes_short"] is None


def test_the_disk_sampler_sees_a_file_that_came_and_went(tmp_path) -> None:
    (tmp_path / "pssr-logs").mkdir()
    (tmp_path / "pssr-logs" / "job.log").write_bytes(b"x" * 10 * MIB)  # left out
    with PeakDiskSampler(str(tmp_path), interval=0.01, skip=frozenset({"pssr-logs"})) as sampler:
        chunk = tmp_path / "pssr-chunk-1" / "chunk.mkv"
        chunk.parent.mkdir()
        chunk.write_bytes(b"x" * 3 * MIB)
        time.sleep(0.2)
        chunk.unlink()
        time.sleep(0.05)
    assert sampler.peak_bytes == 3 * MIB
    assert tree_bytes(str(tmp_path), frozenset({"pssr-logs"})) == 0
