"""End to end: the real job in its own process and Ray cluster, its wall times, the peaks of its
processes and, on a GPU, the GPUs' use; and the rate once its pipeline is full."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs.bench.errors import BenchError
from jobs.bench.memory import measure_run, role_of
from jobs.bench.throughput.compute import GpuSampler
from jobs.bench.throughput.settings import Settings
from pipeline.config import JobSpec, load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.models import pick_device
from pipeline.storage import Storage


def steady_fps(chunks: Iterable[tuple[float, int]]) -> float | None:
    """Frames/s once the pipeline is full, from (seconds the chunk was written, its frames): the
    frames of the chunks written after the second, over the time from the second to the last. The
    first chunk carries the pipeline's fill (its trip through every stage), and the gap to the
    second the first tasks' process starts (an encode worker's imports). None with fewer than
    three chunks."""
    ordered = sorted(chunks)
    if len(ordered) < 3 or ordered[-1][0] <= ordered[1][0]:
        return None
    return sum(frames for _, frames in ordered[2:]) / (ordered[-1][0] - ordered[1][0])


def run_e2e(
    settings: Settings,
    clip: Path,
    out: Path,
    scale: int,
    actors: int,
    echo: Callable[[str], None],
    fused: bool = False,
) -> dict[str, Any]:
    """One real job in its own process and Ray cluster: wall times, peaks per role, GPU figures.
    `fused`: both models in one pool of 2 x `actors` actors (as many as the two pools have)."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: resume would skip the finished video
    cpus = settings.num_cpus or os.cpu_count() or 1
    overrides: dict[str, Any] = {"input": str(clip), "output": str(out), "scale": scale, "device": settings.device}
    overrides |= {"models.strong": settings.strong, "models.light": settings.light}
    overrides |= pool_overrides(load_job_spec(settings.config, {"input": "-", "output": "-"}), actors, cpus)
    if fused:
        overrides |= {"fused": True, "strong_pool.size": 2 * actors}
    ray_init = {"num_cpus": cpus, "object_store_memory": settings.object_store_mb * 2**20}
    cuda = pick_device(settings.device).type == "cuda"
    echo(
        f"e2e: {clip.name}, x{scale}, "
        + (f"one fused pool of {2 * actors}" if fused else f"{actors} actor(s) per pool")
    )
    with GpuSampler() if cuda else _no_gpu() as gpu:
        launched = time.monotonic()
        peaks, driver, summary = measure_run(overrides, settings.config, ray_init, echo=lambda _: None)
    if not summary["ok"]:
        raise BenchError(f"the job failed: {summary['failed']}")
    roles: dict[str, int] = {}
    for peak in peaks:
        role = role_of(peak, driver)
        roles[role] = max(roles.get(role, 0), peak.peak_bytes)
    util, memory = gpu.summary() if gpu else (math.nan, math.nan)
    segments = read_manifests(Storage(), str(out))[1]
    chunks = zip(
        (t.timestamp() for t in segments.column("encoded_at").to_pylist()), segments.column("frames").to_pylist()
    )
    return {
        "frames": summary["frames"],
        "startup_s": summary["done_monotonic"] - launched,
        "job_s": summary["job_wall_s"],
        "steady_fps": steady_fps(chunks),
        "roles_mb": {role: b / 2**20 for role, b in roles.items()},
        "gpu_util": util,
        "gpu_mem_mb": memory,
        "pool_cpus": overrides.get("strong_pool.num_cpus"),
    }


@contextmanager
def _no_gpu() -> Iterator[None]:
    yield None


def pool_overrides(spec: JobSpec, actors: int, cpus: int) -> dict[str, Any]:
    """Pools of `actors` each; when their CPU reservations would leave no room for a decode or encode
    task beside them (2 cores, 2 actors per pool), each actor reserves less (torch threads stay 1)."""
    overrides: dict[str, Any] = {"strong_pool.size": actors, "light_pool.size": actors}
    reserved = actors * (spec.strong_pool.num_cpus + spec.light_pool.num_cpus)
    if reserved + spec.ray.task_cpus > cpus:
        share = math.floor((cpus - spec.ray.task_cpus) / (2 * actors) * 100) / 100
        if share <= 0:
            raise BenchError(f"{actors} actors per pool do not fit {cpus} CPUs beside a task")
        overrides |= {"strong_pool.num_cpus": share, "light_pool.num_cpus": share}
        overrides |= {"strong_pool.torch_threads": 1, "light_pool.torch_threads": 1}
    return overrides


def e2e_rows(
    base: dict[str, Any], run: dict[str, Any], actors: int, ideal: float, kind: str = "e2e", label: str = ""
) -> list[dict[str, Any]]:
    """A run's end-to-end figures: with start-up, the job's own, and steady once the pipeline is full
    (`label` before each)."""
    frames = run["frames"]
    figures = [("with start-up", run["startup_s"], frames / run["startup_s"])]
    figures.append(("job", run["job_s"], frames / run["job_s"]))
    if run["steady_fps"] is not None:
        figures.append(("steady", None, run["steady_fps"]))
    return [
        {**base, "kind": kind, "stage": label + stage, "frames": frames, "actors": actors, "seconds": seconds,
         "fps": fps, "ideal_fps": ideal, "efficiency": fps / ideal,
         "gpu_util": run["gpu_util"], "gpu_mem_mb": run["gpu_mem_mb"],
         "note": None if run["pool_cpus"] is None else f"pool actors reserve {run['pool_cpus']} CPU each"}
        for stage, seconds, fps in figures
    ]  # fmt: skip


def rss_rows(base: dict[str, Any], run: dict[str, Any]) -> list[dict[str, Any]]:
    """Peak RSS per process role of a run (the largest process of each role)."""
    return [
        {**base, "kind": "rss", "stage": role, "frames": run["frames"], "peak_rss_mb": mb}
        for role, mb in sorted(run["roles_mb"].items())
    ]
