"""`pssr bench memory`: peak memory of the driver and of every Ray process does not grow with
video length.

Two runs of the real job (`run_job`), one on a clip of `frames` frames and one on a clip
`factor` times longer (same size, same content), each in a fresh Python process that starts
its own local Ray cluster, so the two peaks are independent. The default short clip has as many
segments as the job's default `ray.segments_in_flight`, so its pipeline fills: what grows
after that grows with length.

This process samples the peak RSS (the kernel's VmHWM: private memory plus the file and
object-store pages the process touched) of the run's whole process tree: the driver, GCS,
raylet, Ray's helper processes and every worker. When the job is done the run waits while a
last sample is taken, so long-lived workers are measured at the end of their work; the
driver's own peak comes from the kernel when it exits. Each role's figure is the largest peak
of its processes. The object store's own peak use (shared memory, in no single process) is
sampled inside the run from the `object_store_memory` resource Ray reports as free. Local disk:
the run's temp folder (TMPDIR, which every Ray worker inherits: where encode tasks write chunks
before they go to staging) is sampled for its peak size, the job's log folder left out; the
output (staging included) is the output store's, not scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.bench.errors import BenchError
from jobs.bench.peak_disk import PeakDiskSampler
from jobs.bench.peak_rss import PeakRssSampler, ProcessPeak
from jobs.bench.tables import Column, table

RATIO_LIMIT = 1.2
_DONE = "PSSR-BENCH-MEMORY-DONE "  # the run's last stdout line before it waits: its JSON summary
# Ray workers retitle themselves "ray::<task or actor>": a substring of any title a worker had gives its role.
WORKER_ROLES = (
    ("strong actor", ("StrongStage",)),
    ("light actor", ("LightStage",)),
    ("task workers", ("decode_segment", "encode_segment", "plan_videos", "StreamingRepartition", "stitch_video")),
)
PROGRAM_ROLES = {"raylet": "raylet", "gcs_server": "gcs"}
OBJECT_STORE = "object store (used)"
SCRATCH_DISK = "local scratch disk"
ROLE_ORDER = (
    "driver",
    *(name for name, _ in WORKER_ROLES),
    "other workers",
    "raylet",
    "gcs",
    "ray helpers",
    OBJECT_STORE,
    SCRATCH_DISK,
)
PROCESS_SCHEMA = pa.schema(
    [("run", pa.string()), ("frames", pa.int64()), ("role", pa.string()), ("pid", pa.int64())]
    + [("peak_rss_bytes", pa.int64()), ("titles", pa.list_(pa.string()))]
)
MEMORY_SCHEMA = pa.schema(
    [("role", pa.string()), ("processes_short", pa.int32()), ("processes_long", pa.int32())]
    + [(name, pa.float64()) for name in ("peak_short_mb", "peak_long_mb", "ratio", "budget_mb")]
    + [("ok", pa.bool_())]
)


def role_of(peak: ProcessPeak, driver: int) -> str:
    if peak.pid == driver:
        return "driver"
    programs = {os.path.basename(title.split()[0]) for title in peak.titles if title}
    for program, role in PROGRAM_ROLES.items():
        if program in programs:
            return role
    for role, marks in WORKER_ROLES:
        if any(mark in title for title in peak.titles for mark in marks):
            return role
    # Ray's agents retitle themselves too ("ray::DashboardAgent"); workers start from default_worker.py.
    if any("default_worker.py" in t or (t.startswith("ray::") and not t.endswith("Agent")) for t in peak.titles):
        return "other workers"  # Ray Data's own actors (stats, autoscaling coordinator, ...)
    return "ray helpers"  # dashboard and runtime-env agents, log and autoscaler monitors


def make_clips(out: Path, frames: int, factor: int, width: int, height: int) -> dict[str, tuple[Path, int]]:
    """The short and the long clip (kept between runs: the same settings give the same files)."""
    from pipeline.media.synthetic import make_clip

    clips = {}
    for run, count in (("short", frames), ("long", frames * factor)):
        path = out / "clips" / f"{run}_{count}f_{width}x{height}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(".part.mp4")
            make_clip(part, frames=count, size=(width, height), audio_streams=1)
            part.rename(path)
        clips[run] = (path, count)
    return clips


def measure_run(
    overrides: dict[str, Any], config: str | None, ray_init: dict[str, Any], echo: Callable[[str], None]
) -> tuple[list[ProcessPeak], int, dict[str, Any]]:
    """Run one job in a fresh process with its own Ray cluster: every process's peak, the driver's pid,
    and the job's summary, with the peak of its local scratch disk (`scratch_peak_bytes`)."""
    temp_dir = tempfile.mkdtemp(prefix="pssr-mem-")  # short: Ray's socket paths must fit 107 bytes
    scratch = tempfile.mkdtemp(prefix="pssr-scratch-")
    request = {"overrides": overrides, "config": config, "ray_init": {**ray_init, "_temp_dir": temp_dir}}
    child = subprocess.Popen(
        [sys.executable, "-m", "jobs.bench.memory", json.dumps(request)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": scratch},
    )
    summary: dict[str, Any] | None = None
    try:
        with PeakRssSampler(child.pid) as sampler, PeakDiskSampler(scratch, skip=frozenset({"pssr-logs"})) as disk:
            assert child.stdout is not None and child.stdin is not None
            for line in child.stdout:
                if line.startswith(_DONE):
                    summary = json.loads(line[len(_DONE) :])
                    sampler.sample()  # every worker is still alive: their marks at the end of the job
                    child.stdin.close()  # lets the run shut Ray down and exit
                    break
                echo(f"  {line.rstrip()}")
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if child.returncode is None:
            child.kill()
            child.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if summary is None or child.returncode != 0:
        raise BenchError(f"the run exited with status {child.returncode} before finishing its job")
    summary["scratch_peak_bytes"] = disk.peak_bytes
    peaks = sampler.peaks()
    for peak in peaks:
        if peak.pid == child.pid:  # exact, from the kernel: ru_maxrss is in kB on Linux
            peak.peak_bytes = max(peak.peak_bytes, usage.ru_maxrss * 1024)
    return peaks, child.pid, summary


def compare(runs: dict[str, list[dict[str, Any]]], object_store_budget: int) -> list[dict[str, Any]]:
    """One row per role: the largest process peak in each run and their ratio, at most RATIO_LIMIT
    (the scratch disk's peak too).

    The object store is checked against the job's Ray Data budget instead: it fills towards the
    budget as long as a slower stage lets frames wait, so a short run may stop well below it."""
    rows = []
    for role in ROLE_ORDER:
        short = [p["peak_rss_bytes"] for p in runs["short"] if p["role"] == role]
        long = [p["peak_rss_bytes"] for p in runs["long"] if p["role"] == role]
        if not short and not long:
            continue
        peak_short, peak_long = max(short, default=0) / 2**20, max(long, default=0) / 2**20
        # The disk's peaks are sampled from files that live for moments: below a MiB they are the
        # sampling's luck, so they are compared from a MiB up.
        floor = 1.0 if role == SCRATCH_DISK else 0.0
        low, high = max(peak_short, floor), max(peak_long, floor)
        ratio = high / low if low else float("inf")
        store = role == OBJECT_STORE
        limit_mb = object_store_budget / 2**20 if store else None
        rows.append(
            {
                "role": role,
                "processes_short": None if store or role == SCRATCH_DISK else len(short),
                "processes_long": None if store or role == SCRATCH_DISK else len(long),
                "peak_short_mb": peak_short,
                "peak_long_mb": peak_long,
                "ratio": ratio,
                "budget_mb": limit_mb,
                "ok": max(peak_short, peak_long) <= limit_mb if store else ratio <= RATIO_LIMIT,
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], frames: int, factor: int) -> str:
    columns: list[Column] = [("role", "role", "s"), ("processes", "processes", ">s")]
    columns += [(f"peak MiB, {frames} frames", "peak_short_mb", ".1f")]
    columns += [(f"peak MiB, {frames * factor} frames", "peak_long_mb", ".1f"), ("ratio", "ratio", ".2f")]
    columns += [("checked", "checked", "s")]

    def shown(r: dict[str, Any]) -> dict[str, Any]:
        store = r["budget_mb"] is not None
        check = f"≤ budget {r['budget_mb']:.0f} MiB" if store else f"ratio ≤ {RATIO_LIMIT}"
        processes = "-" if r["processes_short"] is None else f"{r['processes_short']} / {r['processes_long']}"
        return {**r, "processes": processes, "checked": f"{check}: {'yes' if r['ok'] else 'NO'}"}

    return table([shown(r) for r in rows], columns) + "\n"


def bench_memory(
    out: str,
    *,
    frames: int = 64,
    factor: int = 10,
    width: int = 96,
    height: int = 54,
    scale: int = 4,
    segment_frames: int = 8,
    num_cpus: int | None = None,
    object_store_mb: int = 300,
    config: str | None = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Measure both runs, write OUT/memory.parquet, OUT/memory_processes.parquet and OUT/memory.md;
    True when every process role's peak grew by at most RATIO_LIMIT and the object store kept
    within the job's budget."""
    root = Path(out)
    clips = make_clips(root / "memory", frames, factor, width, height)
    ray_init = {"num_cpus": num_cpus or os.cpu_count(), "object_store_memory": object_store_mb * 2**20}
    runs: dict[str, list[dict[str, Any]]] = {}
    for run, (clip, count) in clips.items():
        output = root / "memory" / "runs" / run
        shutil.rmtree(output, ignore_errors=True)  # a fresh run: resume would skip the finished video
        overrides = {
            "input": str(clip),
            "output": str(output),
            "scale": scale,
            "segment.max_core_frames": segment_frames,
        }
        echo(f"{run}: {count} frames of {width}x{height} -> x{scale}")
        started = time.monotonic()
        peaks, driver, summary = measure_run(overrides, config, ray_init, echo)
        if not summary["ok"]:
            raise BenchError(f"{run}: the job failed: {summary['failed']}")
        echo(f"{run}: {summary['frames']} frames in {time.monotonic() - started:.0f} s")
        runs[run] = [
            {"run": run, "frames": count, "role": role_of(p, driver), "pid": p.pid, "peak_rss_bytes": p.peak_bytes,
             "titles": p.titles}
            for p in peaks
        ]  # fmt: skip
        store = summary["object_store_peak_bytes"]
        runs[run].append({"run": run, "frames": count, "role": OBJECT_STORE, "peak_rss_bytes": store, "titles": []})
        disk = summary["scratch_peak_bytes"]
        runs[run].append({"run": run, "frames": count, "role": SCRATCH_DISK, "peak_rss_bytes": disk, "titles": []})
        budget = summary["object_store_budget_bytes"]  # the same for both runs: same frame size and segments
    rows = compare(runs, budget)
    processes = pa.Table.from_pylist(runs["short"] + runs["long"], PROCESS_SCHEMA)
    pq.write_table(processes, root / "memory_processes.parquet")
    pq.write_table(pa.Table.from_pylist(rows, MEMORY_SCHEMA), root / "memory.parquet")
    table = markdown(rows, frames, factor)
    (root / "memory.md").write_text(table)
    echo(table)
    ok = all(r["ok"] for r in rows)
    worst = max((r for r in rows if r["budget_mb"] is None), key=lambda r: r["ratio"])
    store = next(r for r in rows if r["budget_mb"] is not None)
    echo(
        f"{'PASS' if ok else 'FAIL'}: largest process ratio {worst['ratio']:.2f} ({worst['role']}, limit {RATIO_LIMIT}); "
        f"object store peak {max(store['peak_short_mb'], store['peak_long_mb']):.0f} MiB, budget {store['budget_mb']:.0f} MiB"
    )
    return ok


def _run_in_this_process(request: dict[str, Any]) -> None:
    """The measured process: start Ray, run the job, report, and wait for the last sample."""
    import ray

    from jobs.run.dataset import planned_segment_bytes, segments_in_flight
    from jobs.run.job import run_job
    from jobs.run.ray_cluster import LOCAL_SYSTEM_CONFIG
    from pipeline.config import load_job_spec
    from pipeline.manifest.files import read_manifests
    from pipeline.models import model_info
    from pipeline.storage import Storage

    spec = load_job_spec(request["config"], request["overrides"])
    ray.init(include_dashboard=False, log_to_driver=False, _system_config=LOCAL_SYSTEM_CONFIG, **request["ray_init"])
    store_peak = [0.0]
    done = threading.Event()

    def sample_object_store() -> None:  # Ray reports the store's free bytes as a resource
        total = ray.cluster_resources()["object_store_memory"]
        while not done.wait(0.1):
            store_peak[0] = max(store_peak[0], total - ray.available_resources().get("object_store_memory", total))

    sampler = threading.Thread(target=sample_object_store, daemon=True)
    sampler.start()
    summary = run_job(spec)
    done.set()
    sampler.join()
    _, segments = read_manifests(Storage(**spec.storage.model_dump()), spec.output)
    models = spec.models
    radius = model_info("strong", models.strong, spec.scale, models.weights_dir, models.strong_sha256).temporal_radius
    # As the job sizes its budget (jobs/run/dataset.py: largest_segment_bytes): the largest segment the frame size allows.
    segment = max(planned_segment_bytes(r["lr_width"], r["lr_height"], spec, radius) for r in segments.to_pylist())
    report = {
        "ok": summary.ok,
        "failed": summary.videos_failed,
        "frames": summary.frames,
        "object_store_peak_bytes": int(store_peak[0]),
        "object_store_budget_bytes": segments_in_flight(spec) * segment,
        # For `pssr bench throughput`: the job's own wall time (Ray already up), and when it ended on
        # the system-wide monotonic clock, which the parent shares (start-up included from its side).
        "job_wall_s": summary.wall_s,
        "startup_s": summary.startup_s,  # the job's own (Ray already up): until both pools' models are loaded
        "done_monotonic": time.monotonic(),
    }
    print(_DONE + json.dumps(report), flush=True)
    sys.stdin.read()  # the benchmark's last sample happens now; it closes our stdin when done
    ray.shutdown()


if __name__ == "__main__":
    _run_in_this_process(json.loads(sys.argv[1]))
