"""`pssr bench quality`: quality and speed of the methods, through the real pipeline.

For each track (BI, realistic) and method, one `run_job` with the HR reference: the figures
are the manifests' own (`psnr`, `ssim`, `ewarp`, `flicker`, `tfs`, `lr_psnr`), so the benchmark measures
exactly what a job does, context frames, segment seams and 8-bit hand-offs included. Methods
are pairs of registry names (classical stand-ins have no weights):

    bicubic       bicubic + none        lanczos       lanczos + none
    light         bicubic + <light>     strong        <strong> + none
    strong+light  <strong> + <light>

Beside it, model-only speed at a fixed 640x360 output: the strong+light pair (with the
pipeline's per-pass settings) against Real-ESRGAN's SRVGGNetCompact (random weights).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
import torch

from jobs.bench.benchset import TRACKS, BenchSet, build_bench_set
from jobs.bench.errors import BenchError
from jobs.bench.motion import Methods, ablation, motion_sweep, psnr_markdown
from jobs.bench.tables import table
from jobs.run.job import run_job
from jobs.run.ray_cluster import connect
from pipeline.config import JobSpec, load_job_spec
from pipeline.host_memory import keep_freed_memory
from pipeline.manifest.files import read_manifests
from pipeline.models import get_spec, load_model, pick_device
from pipeline.models.baselines import SRVGGNetCompact
from pipeline.models.inference import run_light, run_strong
from pipeline.storage import Storage

METHODS = ("bicubic", "lanczos", "light", "strong", "strong+light")
METRICS = ("psnr", "ssim", "ewarp", "flicker", "tfs", "lr_psnr")
SPEED_HR = (360, 640)  # output size of the model-only speed test (h, w): 160x90 -> 640x360 at x4
QUALITY_SCHEMA = pa.schema(
    [("track", pa.string()), ("method", pa.string())]
    + [(name, pa.string()) for name in ("strong_model", "light_model", "strong_sha256", "light_sha256")]
    + [(name, pa.int32()) for name in ("scale", "videos", "scenes")]
    + [("frames", pa.int64()), ("seconds", pa.float64()), ("fps", pa.float64())]
    + [(name, pa.float64()) for name in METRICS]
    + [("job_id", pa.string())]
)


def method_models(method: str, strong: str, light: str) -> tuple[str, str]:
    """(strong, light) registry names of a method."""
    return {
        "bicubic": ("bicubic", "none"),
        "lanczos": ("lanczos", "none"),
        "light": ("bicubic", light),
        "strong": (strong, "none"),
        "strong+light": (strong, light),
    }[method]


def _weighted_mean(segments: pa.Table, column: str) -> float | None:
    """A segment metric over the run, as the video rows aggregate it: weighted by the frames it
    was taken on (tfs, ewarp and flicker: frame pairs, what they average over); None if no segment has it."""
    rows = segments.filter(pc.is_valid(segments[column]))
    pairs = column in ("tfs", "ewarp", "flicker")
    weights = [f - 1 if pairs else f for f in rows["frames"].to_pylist()]
    total = sum(weights)
    return sum(v * w for v, w in zip(rows[column].to_pylist(), weights)) / total if total else None


def run_method(
    config: str | None,
    scale: int,
    set_root: Path,
    out: Path,
    track: str,
    models: tuple[str, str],
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """One pipeline run of one track with one pair of models; its row of the quality table."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: resume would skip finished videos
    spec = load_job_spec(
        config,
        {
            "scale": scale,
            "input": str(set_root / track),
            "output": str(out),
            "reference": str(set_root / "hr"),
            "models.strong": models[0],
            "models.light": models[1],
            # Metrics are taken before the encode; FFV1 keeps the written frames exactly those.
            "encode.codec": "ffv1",
        },
    )
    # The job file's own weights (strong_sha256/light_sha256) are for the learned models: a
    # classical stand-in of a method takes none.
    own = {
        f"{kind}_sha256": None
        for kind, name in zip(("strong", "light"), models)
        if not get_spec(kind, name).needs_weights
    }
    spec = spec.model_copy(update={"models": spec.models.model_copy(update=own)})
    summary = run_job(spec, echo=echo)
    if not summary.ok:
        raise BenchError(f"{track} with {models[0]} + {models[1]}: {summary.videos_failed}")
    videos, segments = read_manifests(Storage(), str(out))
    segments = segments.filter(pc.equal(segments["job_id"], summary.job_id))
    videos = videos.filter(pc.equal(videos["job_id"], summary.job_id))
    return {
        "track": track,
        "strong_model": models[0],
        "light_model": models[1],
        "strong_sha256": segments["strong_sha256"][0].as_py(),
        "light_sha256": segments["light_sha256"][0].as_py(),
        "scale": spec.scale,
        "videos": videos.num_rows,
        "scenes": sum(videos["scenes"].to_pylist()),
        "frames": summary.frames,
        "seconds": summary.wall_s,
        "fps": summary.frames / summary.wall_s,
        **{m: _weighted_mean(segments, m) for m in METRICS},
        "job_id": summary.job_id,
    }


def _timed(work: Callable[[], Any], device: torch.device) -> float:
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


@torch.inference_mode()
def model_speed(
    strong: str,
    light: str,
    scale: int,
    job: JobSpec | None = None,
    frames: int = 24,
    rounds: int = 3,
    hr: tuple[int, int] = SPEED_HR,
) -> list[dict[str, Any]]:
    """Model-only frames/s of the strong+light pair and of SRVGGNetCompact (64 features, 16
    convs), at output size `hr` (h, w), torch threads = all cores, warm-up excluded.

    The pair runs as the pools do (`job`'s device and per-pass settings): a segment of `frames`
    core frames with the strong model's R context frames each side, in passes of
    `strong_pool.frames_per_pass` output frames, each re-reading its R context frames;
    SRVGGNetCompact takes the light pool's passes. The two alternate round by round, so load
    from elsewhere on the machine falls on both alike.
    """
    job = job or load_job_spec(None, {"input": "-", "output": "-"})
    torch.set_num_threads(os.cpu_count() or 1)
    keep_freed_memory()  # as the pools' actors do
    dev = pick_device(job.device)
    weights = job.models.weights_dir
    strong_model, _ = load_model("strong", strong, scale, dev, weights, job.models.strong_sha256)
    light_model, _ = load_model("light", light, scale, dev, weights, job.models.light_sha256)
    radius = strong_model.temporal_radius
    srvgg = SRVGGNetCompact(num_feat=64, num_conv=16, upscale=scale).to(dev).eval()
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(frames + 2 * radius, 3, hr[0] // scale, hr[1] // scale, generator=gen).to(dev)
    core = slice(radius, radius + frames)
    strong_pass, light_pass = job.strong_pool.frames_per_pass, job.light_pool.frames_per_pass

    def pair() -> None:
        run_light(light_model, run_strong(strong_model, lr, core, radius, strong_pass), light_pass)

    def compact() -> None:
        for i in range(core.start, core.stop, light_pass):
            srvgg(lr[i : min(i + light_pass, core.stop)])

    # name -> (work, its modules, frames per pass)
    runs = {
        f"{strong}+{light}": (pair, (strong_model, light_model), strong_pass),
        "SRVGGNetCompact": (compact, (srvgg,), light_pass),
    }
    seconds = dict.fromkeys(runs, 0.0)
    for work, _, _ in runs.values():
        work()  # warm-up: allocator, oneDNN kernel choice
    for _ in range(rounds):
        for name, (work, _, _) in runs.items():
            seconds[name] += _timed(work, dev)
    fps = {name: frames * rounds / s for name, s in seconds.items()}
    return [
        {
            "model": name,
            "params": sum(p.numel() for m in modules for p in m.parameters()),
            "lr_width": hr[1] // scale,
            "lr_height": hr[0] // scale,
            "hr_width": hr[1],
            "hr_height": hr[0],
            "device": str(dev),
            "threads": torch.get_num_threads(),
            "frames_per_pass": per_pass,
            "frames": frames * rounds,
            "seconds": seconds[name],
            "fps": fps[name],
            "relative_to_srvgg": fps[name] / fps["SRVGGNetCompact"],
        }
        for name, (_, modules, per_pass) in runs.items()
    ]


QUALITY_COLUMNS = (
    ("track", "track", "s"), ("method", "method", "s"), ("strong + light", "pair", "s"),
    ("PSNR dB", "psnr", ".2f"), ("SSIM", "ssim", ".4f"), ("ewarp", "ewarp", ".4g"), ("flicker", "flicker", ".3g"),
    ("tfs", "tfs", ".3f"), ("lr_psnr dB", "lr_psnr", ".2f"), ("fps", "fps", ".2f"),
)  # fmt: skip
SPEED_COLUMNS = (("model", "model", "s"), ("params", "params", ",d"), ("fps", "fps", ".2f"),
                 ("x SRVGGNetCompact", "relative_to_srvgg", ".2f"))  # fmt: skip


def quality_markdown(rows: list[dict[str, Any]]) -> str:
    return table(({**r, "pair": f"{r['strong_model']} + {r['light_model']}"} for r in rows), QUALITY_COLUMNS)


def speed_markdown(rows: list[dict[str, Any]]) -> str:
    r0 = rows[0]
    head = (
        f"Model-only speed, {r0['lr_width']}x{r0['lr_height']} -> {r0['hr_width']}x{r0['hr_height']}, "
        f"{r0['device']}, {r0['threads']} threads:"
    )
    return head + "\n\n" + table(rows, SPEED_COLUMNS)


def bench_quality(
    photos: str | Path,
    out: str | Path,
    bench_set: BenchSet | None = None,
    methods: Iterable[str] = METHODS,
    tracks: Iterable[str] = TRACKS,
    strong: str = "tiny",
    light: str = "tiny",
    config: str | None = None,
    speed: bool = True,
    motion: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[pa.Table, pa.Table | None]:
    """Build (or reuse) the set under OUT/set, run every track x method into OUT/runs, write
    OUT/quality.parquet, OUT/speed.parquet, OUT/ablation.parquet, OUT/sweep.parquet (jobs/bench/motion.py)
    and OUT/quality.md; returns the first two tables.

    `config` is a YAML JobSpec for the pipeline settings (pools, segments, Ray); the benchmark
    sets input, output, reference, models, scale and codec itself.
    """
    out = Path(out)
    bench_set = bench_set or BenchSet()
    started = time.monotonic()
    set_root = out / "set"
    names = build_bench_set(photos, set_root, bench_set)
    echo(
        f"bench set: {len(names)} video(s) of {bench_set.scenes} scenes x {bench_set.frames} frames, "
        f"{bench_set.width}x{bench_set.height} HR, x{bench_set.scale}, in {set_root} "
        f"({time.monotonic() - started:.1f} s)"
    )
    job = load_job_spec(config, {"input": "-", "output": "-"})  # the settings every run shares

    speed_rows = []
    if speed:  # before Ray starts, so its processes take no CPU from the measurement
        speed_rows = model_speed(strong, light, bench_set.scale, job)
        echo(speed_markdown(speed_rows))
    motion_tables = []
    if motion:  # the models alone, in this process: the ablation and the motion sweep
        methods_alone = Methods(strong, light, bench_set.scale, job)
        ablation_rows = ablation(set_root, bench_set, methods_alone, echo)
        sweep_rows = motion_sweep(photos, bench_set, methods_alone, echo)
        pq.write_table(pa.Table.from_pylist(ablation_rows), out / "ablation.parquet")
        pq.write_table(pa.Table.from_pylist(sweep_rows), out / "sweep.parquet")
        motion_tables = [
            "Neighbour frames (the models alone, on the set's scenes, PSNR dB):\n\n"
            + psnr_markdown(ablation_rows, "scenes", "scenes"),
            "Motion sweep (the models alone, PSNR dB):\n\n" + psnr_markdown(sweep_rows, "speed", "LR px/frame"),
        ]
        echo("\n\n".join(motion_tables))

    own_ray = not ray.is_initialized()
    ray_started = time.monotonic()
    connect(job.ray)  # one Ray session for every run; run_job joins it
    echo(f"ray: up in {time.monotonic() - ray_started:.1f} s")
    rows = []
    try:
        for track in tracks:
            for method in methods:
                models = method_models(method, strong, light)
                echo(f"--- {track} / {method}: {models[0]} + {models[1]}")
                row = run_method(config, bench_set.scale, set_root, out / "runs" / track / method, track, models, echo)
                rows.append({"method": method, **row})
                if row["scenes"] != bench_set.videos * bench_set.scenes:
                    echo(
                        f"warning: the pipeline found {row['scenes']} scenes, the set has "
                        f"{bench_set.videos * bench_set.scenes}: tfs and ewarp include pairs across a missed cut"
                    )
    finally:
        if own_ray:
            ray.shutdown()
    quality = pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA)
    pq.write_table(quality, out / "quality.parquet")
    report = quality_markdown(rows)
    speed_table = pa.Table.from_pylist(speed_rows) if speed_rows else None
    if speed_table is not None:
        pq.write_table(speed_table, out / "speed.parquet")
        report += "\n\n" + speed_markdown(speed_rows)
    report += "".join("\n\n" + table for table in motion_tables)
    (out / "quality.md").write_text(report + "\n")
    echo(quality_markdown(rows))
    echo(f"bench: {time.monotonic() - started:.0f} s; {out / 'quality.parquet'}, {out / 'quality.md'}")
    return quality, speed_table
