"""`pssr bench throughput`: every figure of each scale, the scaling curves, and the files they go to."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from jobs.bench.quality import model_speed
from jobs.bench.throughput.compute import mfu, module_gmac, srvgg
from jobs.bench.throughput.e2e import e2e_rows, rss_rows, run_e2e
from jobs.bench.throughput.report import markdown
from jobs.bench.throughput.settings import CPU, GPU, MODEL_STAGES, STAGES, Settings
from jobs.bench.throughput.stages import clip_path, lanczos_floor, measure_stages, rrdbnet_fps
from pipeline.config import JobSpec, load_job_spec
from pipeline.models import pick_device
from pipeline.models.baselines import RRDBNet
from pipeline.models.cost import gmac_per_frame

SCHEMA = pa.schema(
    [("kind", pa.string()), ("stage", pa.string()), ("scale", pa.int32())]
    + [(n, pa.int32()) for n in ("lr_width", "lr_height", "hr_width", "hr_height", "frames", "actors", "threads")]
    + [("device", pa.string()), ("resource", pa.string())]
    + [(n, pa.float64()) for n in ("seconds", "cpu_seconds", "busy_s_per_frame", "fps", "ideal_fps", "efficiency")]
    + [(n, pa.float64()) for n in ("gmac_per_frame", "achieved_tflops", "mfu", "peak_rss_mb", "gpu_mem_mb")]
    + [("gpu_util", pa.float64()), ("note", pa.string())]
)


def roofline(busy: dict[str, tuple[str, float]], units: dict[str, float]) -> tuple[float, str]:
    """(ideal frames/s, the bounding resource) from stage -> (resource, busy seconds per frame) and
    resource -> units available: for each resource, its units over the summed busy seconds of the
    stages on it; the smallest."""
    totals: dict[str, float] = {}
    for resource, seconds in busy.values():
        if resource not in units:
            raise ValueError(f"no units given for resource {resource!r}")
        totals[resource] = totals.get(resource, 0.0) + seconds
    figures = {r: units[r] / total for r, total in totals.items() if total > 0}
    if not figures:
        raise ValueError("no stage took any time")
    bound = min(figures, key=figures.__getitem__)
    return figures[bound], bound


def bench_scale(
    settings: Settings, root: Path, scale: int, echo: Callable[[str], None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every figure of one scale (stages alone, roofline, end to end and its peaks, baselines, fused
    vs separate), and the end-to-end run itself (a point of the scaling curves)."""
    w, h = settings.size
    clip = clip_path(root, settings.frames, settings.size)
    overrides = {"input": str(clip), "output": str(root / "stages"), "scale": scale, "device": settings.device}
    overrides |= {"models.strong": settings.strong, "models.light": settings.light}
    spec = load_job_spec(settings.config, overrides)
    dev = pick_device(spec.device)
    base = {"scale": scale, "lr_width": w, "lr_height": h, "hr_width": w * scale, "hr_height": h * scale}
    base |= {"device": str(dev)}

    echo(f"x{scale}: stages alone, one unit ({dev})")
    rows, ideal = _stage_rows(settings, spec, dev, base, echo)
    echo(f"x{scale}: baselines, all cores")
    rows += _baseline_rows(settings, spec, dev, base, clip, root)
    main = run_e2e(settings, clip, root / "runs" / f"x{scale}", scale, 1, echo)
    rows += e2e_rows(base, main, 1, ideal) + rss_rows(base, main)
    fused = run_e2e(settings, clip, root / "runs" / f"x{scale}-fused", scale, 1, echo, fused=True)
    rows += e2e_rows(base, fused, 2, ideal, label="fused pool, ")
    return rows, main


def _stage_rows(
    settings: Settings, spec: JobSpec, dev: torch.device, base: dict[str, Any], echo: Callable[[str], None]
) -> tuple[list[dict[str, Any]], float]:
    """Each stage alone, the roofline over them, and the models alone, fused and separate; the ideal
    frames/s."""
    shutil.rmtree(spec.output, ignore_errors=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    clocks, model_frames = measure_stages(spec, echo)
    shutil.rmtree(spec.output, ignore_errors=True)
    gpu_mem = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    rows: list[dict[str, Any]] = []
    busy: dict[str, tuple[str, float]] = {}
    for stage in STAGES:
        clock = clocks[stage]
        resource = GPU if stage in MODEL_STAGES and dev.type == "cuda" else CPU
        seconds = clock.wall if resource == GPU else clock.cpu
        busy[stage] = (resource, seconds / settings.frames)
        rows.append(
            {**base, "kind": "stage", "stage": stage, "frames": settings.frames, "threads": 1, "resource": resource,
             "seconds": clock.wall, "cpu_seconds": clock.cpu, "busy_s_per_frame": seconds / settings.frames,
             "fps": settings.frames / seconds, "gpu_mem_mb": gpu_mem if stage in MODEL_STAGES else None}
        )  # fmt: skip
        if stage in MODEL_STAGES and dev.type == "cuda":  # the model at its stage's rate and its pool's precision
            name = settings.strong if stage == "strong" else settings.light
            gmac = gmac_per_frame(stage, name, spec.scale, (base["lr_height"], base["lr_width"]))
            precision = (spec.strong_pool if stage == "strong" else spec.light_pool).precision
            tflops, utilisation = mfu(gmac, 1 / busy[stage][1], dev, precision)
            rows[-1] |= {"gmac_per_frame": gmac, "achieved_tflops": tflops, "mfu": utilisation}
    cpus = settings.num_cpus or os.cpu_count() or 1
    units = {CPU: float(cpus), GPU: float(torch.cuda.device_count()) if dev.type == "cuda" else 0.0}
    ideal, bound = roofline(busy, units)
    rows.append(
        {**base, "kind": "ideal", "stage": "roofline", "frames": settings.frames, "fps": ideal, "resource": bound,
         "note": f"{units[CPU]:g} CPU, {units[GPU]:g} GPU units; bound by {bound}"}
    )  # fmt: skip
    unit = GPU if dev.type == "cuda" else CPU
    for stage, clock_names, note in (
        ("separate (strong, then light)", ("strong model", "light model"), "the strong passes, then the light ones"),
        ("fused (strong then light per pass)", ("fused",), "one process"),
    ):
        seconds = sum(clocks[n].wall if unit == GPU else clocks[n].cpu for n in clock_names)
        rows.append(
            {**base, "kind": "fused", "stage": stage, "frames": model_frames, "threads": 1, "resource": unit,
             "seconds": seconds, "busy_s_per_frame": seconds / model_frames, "fps": model_frames / seconds,
             "note": f"model only, one unit: {note}"}
        )  # fmt: skip
    return rows, ideal


def _baseline_rows(
    settings: Settings, spec: JobSpec, dev: torch.device, base: dict[str, Any], clip: Path, root: Path
) -> list[dict[str, Any]]:
    """The floor of any pipeline (PyAV -> Lanczos -> encode), and the models alone on all cores
    against SRVGGNetCompact and RRDBNet, with their compute (all in fp32: no autocast here)."""
    scale, (w, h) = spec.scale, settings.size
    floor = lanczos_floor(clip, root / f"lanczos_x{scale}.mp4", spec)
    rows = [
        {**base, "kind": "baseline", "stage": "PyAV decode -> Lanczos-3 -> encode", "frames": settings.frames,
         "threads": torch.get_num_threads(), "seconds": floor.wall, "cpu_seconds": floor.cpu,
         "fps": settings.frames / floor.wall, "note": "one process, no Ray, no model"}
    ]  # fmt: skip
    (root / f"lanczos_x{scale}.mp4").unlink()
    speed = model_speed(
        settings.strong, settings.light, scale, spec, frames=min(settings.frames, 16), rounds=2, hr=(h * scale, w * scale)
    )
    gmacs = {
        f"{settings.strong}+{settings.light}": gmac_per_frame("strong", settings.strong, scale, (h, w))
        + gmac_per_frame("light", settings.light, scale, (h, w)),
        "SRVGGNetCompact": module_gmac(lambda: srvgg(scale), (w, h)),
        "RRDBNet": module_gmac(lambda: RRDBNet(scale=scale), (w, h)),
    }
    rrdb_fps, rrdb_params = rrdbnet_fps(scale, (w, h), settings.rrdb_frames, dev)
    models = [(r["model"], r["fps"], r["params"], r["frames"]) for r in speed]
    models.append(("RRDBNet", rrdb_fps, rrdb_params, settings.rrdb_frames))
    for name, fps, params, frames in models:
        tflops, utilisation = mfu(gmacs[name], fps, dev, "fp32")
        rows.append(
            {**base, "kind": "baseline", "stage": name, "frames": frames, "threads": torch.get_num_threads(),
             "fps": fps, "seconds": frames / fps, "gmac_per_frame": gmacs[name], "achieved_tflops": tflops,
             "mfu": utilisation, "note": f"model only, {params:,} params, random weights for the baselines"}
        )  # fmt: skip
    return rows


def curves(
    settings: Settings, root: Path, scale: int, main: dict[str, Any], ideal: float, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """End to end against actors per pool (full clip) and against length (one actor per pool), each a
    real job; the main run (one actor, full clip) is a point of both."""
    w, h = settings.size
    base = {"scale": scale, "lr_width": w, "lr_height": h, "hr_width": w * scale, "hr_height": h * scale}
    base |= {"device": str(pick_device(settings.device))}
    rows: list[dict[str, Any]] = []
    clip = clip_path(root, settings.frames, settings.size)
    for actors in settings.actors:
        run = main if actors == 1 else run_e2e(settings, clip, root / "runs" / f"actors{actors}", scale, actors, echo)
        rows += e2e_rows(base, run, actors, ideal, kind="curve: actors")
    for frames in sorted(set(settings.lengths) - {settings.frames}):
        short = clip_path(root, frames, settings.size)
        run = run_e2e(settings, short, root / "runs" / f"length{frames}", scale, 1, echo)
        rows += e2e_rows(base, run, 1, ideal, kind="curve: length")
    rows += e2e_rows(base, main, 1, ideal, kind="curve: length")
    return rows


def bench_throughput(settings: Settings, out: str | Path, echo: Callable[[str], None] = print) -> pa.Table:
    """Measure everything, write OUT/throughput.parquet and OUT/throughput.md, print the tables."""
    started = time.monotonic()
    root = Path(out) / "throughput"
    rows: list[dict[str, Any]] = []
    for i, scale in enumerate(settings.scales):
        scale_rows, main = bench_scale(settings, root, scale, echo)
        rows += scale_rows
        if i == len(settings.scales) - 1 and (settings.actors or settings.lengths):
            ideal = next(r["fps"] for r in scale_rows if r["kind"] == "ideal")
            rows += curves(settings, root, scale, main, ideal, echo)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, Path(out) / "throughput.parquet")
    report = markdown(rows, settings)
    (Path(out) / "throughput.md").write_text(report)
    echo(report)
    echo(
        f"bench: {time.monotonic() - started:.0f} s; {Path(out) / 'throughput.parquet'}, {Path(out) / 'throughput.md'}"
    )
    return table
