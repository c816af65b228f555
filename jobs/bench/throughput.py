"""`pssr bench throughput`: frames/s of every stage alone, of the whole pipeline, and of baselines,
on the same clip, in one run.

Definitions (also in docs/benchmarks.md, "Throughput"):

* Stage alone: the pipeline's own stage code (plan task, `decode_segment`, `StrongStage`,
  `LightStage`, `encode_segment`, `stitch_video`) run over every segment of the clip in this
  process, without Ray, on ONE unit: torch threads 1 on CPU, one GPU on CUDA. A stage's busy
  seconds per frame are its CPU seconds (all threads of the process: PyAV's decoder threads count)
  over the clip's frames for the CPU stages, and its wall seconds (synchronised) for the model
  stages on a GPU. CPU seconds are what a CPU stage takes from the cores, and they barely move
  when other programs load the machine; its fps is 1 / busy seconds per frame.
* Ideal (roofline): for each resource kind (CPU cores, GPUs), the units the job has over the sum
  of the busy seconds per frame of the stages that run on it; the smallest such figure
  (`roofline`). The plan stage (probe and scene detection, a CPU task of the job) is included.
* End to end: the real job (`run_job`) on the same clip in a fresh process with its own local Ray
  cluster (`jobs.bench_memory.measure_run`, which also samples every process's peak RSS):
  "with start-up" from launching that process to the job's end (imports and Ray start included);
  "job" from `run_job`'s call to its return (Ray up; listing, planning, pool start-up with model
  loading, every segment, stitching); "steady" the rate once the pipeline is full, from the chunks'
  writing times (the segments manifest's `encoded_at`; `steady_fps`), so start-up and the first
  segment's trip through every stage (the pipeline's fill) do not enter. Efficiency = fps / ideal.
* Baselines: a plain PyAV decode -> Lanczos-3 -> encode loop in one process (the floor of any
  pipeline), and model-only fps at the same sizes, all cores, random weights: the strong+light pair
  and SRVGGNetCompact (`jobs.bench_quality.model_speed`) and RRDBNet (on fewer frames: it is slow).
* Fused vs separate: model-only, one unit, per segment: strong then light per pass in one process,
  against the two models' separate passes; and end to end, the job with both models in one pool
  (`fused: true`, as many actors as the two pools have together) against the two pools.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.flop_counter import FlopCounterMode

from actors.decode import decode_segment
from actors.encode import encode_segment
from actors.light import LightStage
from actors.model_stage import ModelStage
from actors.rows import Row, batch_to_rows, rows_to_batch
from actors.strong import StrongStage
from jobs.bench.memory import measure_run, role_of
from jobs.bench.quality import model_speed
from jobs.run.job import Job, segment_rows
from pipeline.config import JobSpec, PoolSpec, load_job_spec
from pipeline.host_memory import keep_freed_memory
from pipeline.manifest.files import read_manifests
from pipeline.media import ENCODERS
from pipeline.media.synthetic import make_clip
from pipeline.models import lanczos_upscale, pick_device
from pipeline.models.baselines import RRDBNet
from pipeline.models.cost import gmac_per_frame
from pipeline.plan import plan_stored_video
from actors.stitch import stitch_video
from pipeline.storage import Storage
from pipeline.models.inference import run_light, run_strong, to_pixels, to_tensor

if TYPE_CHECKING:
    from typing_extensions import Self

CPU, GPU = "cpu", "gpu"
STAGES = ("plan", "decode", "strong", "light", "encode", "stitch")
MODEL_STAGES = ("strong", "light")
# Dense bf16 tensor-core peaks (FLOP/s) by device name; MFU is NaN for any other device.
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12}
SCHEMA = pa.schema(
    [("kind", pa.string()), ("stage", pa.string()), ("scale", pa.int32())]
    + [(n, pa.int32()) for n in ("lr_width", "lr_height", "hr_width", "hr_height", "frames", "actors", "threads")]
    + [("device", pa.string()), ("resource", pa.string())]
    + [(n, pa.float64()) for n in ("seconds", "cpu_seconds", "busy_s_per_frame", "fps", "ideal_fps", "efficiency")]
    + [(n, pa.float64()) for n in ("gmac_per_frame", "achieved_tflops", "mfu", "peak_rss_mb", "gpu_mem_mb")]
    + [("gpu_util", pa.float64()), ("note", pa.string())]
)


class BenchError(RuntimeError):
    """A measured run failed: its figures would not be those of the work asked for."""


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures (the CLI's options)."""

    scales: tuple[int, ...] = (2, 4)
    size: tuple[int, int] = (160, 90)  # LR (w, h)
    frames: int = 240
    strong: str = "tiny"
    light: str = "tiny"
    device: str = "auto"
    actors: tuple[int, ...] = (1, 2)  # actors per pool on the scaling curve
    lengths: tuple[int, ...] = (60, 120)  # frames on the length curve (plus `frames`)
    rrdb_frames: int = 2
    num_cpus: int | None = None  # CPUs of each job's Ray cluster (the roofline's CPU units)
    object_store_mb: int = 300
    config: str | None = None


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


class _Clock:
    """Wall and CPU seconds (every thread of this process) of the blocks run under `timed`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    @contextmanager
    def timed(self) -> Iterator[None]:
        self._sync()
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self._sync()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clip_path(root: Path, frames: int, size: tuple[int, int]) -> Path:
    """The benchmark clip (kept between runs: the same settings give the same file); a clip of N
    frames is the first N frames of any longer one."""
    path = root / "clips" / f"{frames}f_{size[0]}x{size[1]}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part.mp4")
        make_clip(part, frames=frames, size=size, audio_streams=1)
        part.rename(path)
    return path


def _stage(
    model: type[ModelStage], spec: JobSpec, pool: PoolSpec, name: str, sha256: str | None, job: Job
) -> ModelStage:
    """The pool's stage callable on one unit: one torch thread on CPU (the job's own pool settings on a GPU)."""
    one_unit = pool if pick_device(spec.device).type == "cuda" else pool.model_copy(update={"torch_threads": 1})
    return model(name, spec.scale, spec.device, one_unit, spec.models.weights_dir, sha256, job.storage)


def _checked(row: Row) -> Row:
    if row["status"] != "ok":
        raise BenchError(f"segment {row['segment_index']}: {row['error']}")
    return row


def measure_stages(spec: JobSpec, echo: Callable[[str], None]) -> tuple[dict[str, _Clock], int]:
    """Every stage of the job alone on one unit, over every segment of spec.input (one video), and
    the models alone on the first segment (separate passes, and fused: strong then light per pass),
    with that segment's frame count. Writes the output under spec.output."""
    keep_freed_memory()  # as the job's actors and tasks do
    dev = pick_device(spec.device)
    job = Job(spec, echo=lambda _: None)
    (state,) = job.list_videos()
    clocks = {name: _Clock(dev) for name in (*STAGES, "strong model", "light model", "fused")}
    with torch_threads(1):
        with clocks["plan"].timed():
            radius = job.strong.temporal_radius
            state.plan, state.error = plan_stored_video(
                job.storage, state.info.uri, spec.segment, radius, spec.limits, None, spec.scale
            )
        if state.plan is None:
            raise BenchError(f"{state.info.uri}: {state.error}")
        rows = segment_rows(state, spec, job.config_hash)
        strong = _stage(StrongStage, spec, spec.strong_pool, spec.models.strong, spec.models.strong_sha256, job)
        light = _stage(LightStage, spec, spec.light_pool, spec.models.light, spec.models.light_sha256, job)
        warm = decode_segment(dict(rows[0]), job.storage)  # allocator and oneDNN kernel choice: not timed
        light(strong(rows_to_batch([warm])))
        for row in rows:
            with clocks["decode"].timed():
                _checked(decode_segment(row, job.storage))
            if row is rows[0]:  # its own segment is enough for the model-only figures (they are slow)
                _models_alone(strong, light, row, clocks)
            with clocks["strong"].timed():
                (row,) = batch_to_rows(strong(rows_to_batch([row])))
            with clocks["light"].timed():
                (row,) = batch_to_rows(light(rows_to_batch([_checked(row)])))
            with clocks["encode"].timed():
                _checked(encode_segment(_checked(row), job.storage, spec.encode))
            echo(f"  segment {row['segment_index'] + 1}/{len(rows)}")
        probe = state.plan.probe
        with clocks["stitch"].timed():
            stitch_video(
                job.storage, state.info.uri, [r["chunk_uri"] for r in rows], state.output_uri,
                spec.encode.container_format, probe.n_frames, probe.sample_aspect_ratio, job.provenance(state),
            )  # fmt: skip
    return clocks, int(rows[0]["core_end"]) - int(rows[0]["core_start"])


@torch.inference_mode()
def _models_alone(strong: ModelStage, light: ModelStage, row: Row, clocks: dict[str, _Clock]) -> None:
    lr = to_tensor(row["lr"], strong.device)
    offset = int(row["core_start"]) - int(row["context_start"])
    core = slice(offset, offset + int(row["core_end"]) - int(row["core_start"]))
    radius, per_pass, light_pass = strong.model.temporal_radius, strong.frames_per_pass, light.frames_per_pass
    with clocks["strong model"].timed():
        hr = run_strong(strong.model, lr, core, radius, per_pass)
    with clocks["light model"].timed():
        run_light(light.model, hr, light_pass)
    with clocks["fused"].timed():
        for start in range(core.start, core.stop, per_pass):
            part = run_strong(strong.model, lr, slice(start, min(start + per_pass, core.stop)), radius, per_pass)
            run_light(light.model, part, light_pass)


def lanczos_floor(clip: Path, out: Path, spec: JobSpec) -> _Clock:
    """Decode -> Lanczos-3 -> encode in one plain PyAV loop, all cores, no Ray: the floor of any
    pipeline (the job's codec, crf and preset; batches of the light pool's frames per pass)."""
    clock = _Clock(torch.device("cpu"))
    batch_size = spec.light_pool.frames_per_pass
    with clock.timed(), av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = sink.add_stream(ENCODERS[spec.encode.codec], rate=video.average_rate)
        stream.width, stream.height = video.codec_context.width * spec.scale, video.codec_context.height * spec.scale
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(spec.encode.crf), "preset": spec.encode.preset}

        def flush(batch: list[np.ndarray]) -> None:
            frames = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255)
            for pixels in to_pixels(lanczos_upscale(frames, spec.scale), np.uint8):
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    sink.mux(packet)

        batch: list[np.ndarray] = []
        for frame in source.decode(video):
            batch.append(frame.to_ndarray(format="rgb24"))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        sink.mux(stream.encode())
    return clock


@torch.inference_mode()
def rrdbnet_fps(scale: int, lr: tuple[int, int], frames: int, device: torch.device) -> tuple[float, int]:
    """(frames/s, params) of RRDBNet (64 features, 23 blocks, growth 32) one frame at a time, all cores."""
    model = RRDBNet(scale=scale).to(device).eval()
    x = torch.rand(1, 3, lr[1], lr[0], generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        model(x)  # warm-up (cuDNN's choice of kernels); on CPU one frame takes seconds and this is noise
    clock = _Clock(device)
    with clock.timed():
        for _ in range(frames):
            model(x)
    return frames / clock.wall, sum(p.numel() for p in model.parameters())


def module_gmac(build: Callable[[], torch.nn.Module], lr: tuple[int, int]) -> float:
    """GMAC per frame of a per-frame module on an LR frame (w, h), counted on the meta device."""
    with torch.device("meta"):
        model, x = build(), torch.empty(1, 3, lr[1], lr[0])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def peak_flops(device: torch.device) -> float:
    """The device's dense bf16 peak (FLOP/s), NaN when unknown (any CPU)."""
    if device.type != "cuda":
        return math.nan
    name = torch.cuda.get_device_name(device)
    return next((peak for mark, peak in PEAK_FLOPS.items() if mark in name), math.nan)


class GpuSampler:
    """nvidia-smi's utilisation and memory of the GPUs, sampled every 250 ms while in use."""

    def __init__(self) -> None:
        self.util: list[float] = []
        self.memory_mb: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if shutil.which("nvidia-smi"):
            query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "250"]
            self._process = subprocess.Popen(["nvidia-smi", *query], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            util, memory = (float(v) for v in line.split(",")[:2])
            self.util.append(util)
            self.memory_mb.append(memory)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()

    def summary(self) -> tuple[float, float]:
        """(mean utilisation %, peak memory MiB); NaN when nvidia-smi is absent."""
        if not self.util:
            return math.nan, math.nan
        return sum(self.util) / len(self.util), max(self.memory_mb)


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
    rows: list[dict[str, Any]] = []

    echo(f"x{scale}: stages alone, one unit ({dev})")
    shutil.rmtree(spec.output, ignore_errors=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    clocks, model_frames = measure_stages(spec, echo)
    shutil.rmtree(spec.output, ignore_errors=True)
    gpu_mem = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
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

    echo(f"x{scale}: baselines, all cores")
    floor = lanczos_floor(clip, root / f"lanczos_x{scale}.mp4", spec)
    rows.append(
        {**base, "kind": "baseline", "stage": "PyAV decode -> Lanczos-3 -> encode", "frames": settings.frames,
         "threads": torch.get_num_threads(), "seconds": floor.wall, "cpu_seconds": floor.cpu,
         "fps": settings.frames / floor.wall, "note": "one process, no Ray, no model"}
    )  # fmt: skip
    (root / f"lanczos_x{scale}.mp4").unlink()
    peak = peak_flops(dev)
    speed = model_speed(
        settings.strong,
        settings.light,
        scale,
        spec,
        frames=min(settings.frames, 16),
        rounds=2,
        hr=(h * scale, w * scale),
    )
    gmacs = {
        f"{settings.strong}+{settings.light}": gmac_per_frame("strong", settings.strong, scale, (h, w))
        + gmac_per_frame("light", settings.light, scale, (h, w)),
        "SRVGGNetCompact": module_gmac(lambda: _srvgg(scale), (w, h)),
    }
    rrdb_fps, rrdb_params = rrdbnet_fps(scale, (w, h), settings.rrdb_frames, dev)
    models = [(r["model"], r["fps"], r["params"], r["frames"]) for r in speed]
    models.append(("RRDBNet", rrdb_fps, rrdb_params, settings.rrdb_frames))
    gmacs["RRDBNet"] = module_gmac(lambda: RRDBNet(scale=scale), (w, h))
    for name, fps, params, frames in models:
        achieved = 2 * gmacs[name] * 1e9 * fps
        rows.append(
            {**base, "kind": "baseline", "stage": name, "frames": frames, "threads": torch.get_num_threads(),
             "fps": fps, "seconds": frames / fps, "gmac_per_frame": gmacs[name], "achieved_tflops": achieved / 1e12,
             "mfu": achieved / peak, "note": f"model only, {params:,} params, random weights for the baselines"}
        )  # fmt: skip
    if dev.type == "cuda":  # each of the pair's models at its stage's rate
        for stage in MODEL_STAGES:
            gmac = gmac_per_frame(stage, settings.strong if stage == "strong" else settings.light, scale, (h, w))
            achieved = 2 * gmac * 1e9 / busy[stage][1]
            row = next(r for r in rows if r["kind"] == "stage" and r["stage"] == stage)
            row |= {"gmac_per_frame": gmac, "achieved_tflops": achieved / 1e12, "mfu": achieved / peak}

    main = run_e2e(settings, clip, root / "runs" / f"x{scale}", scale, 1, echo)
    rows += e2e_rows(base, main, 1, ideal) + rss_rows(base, main)
    fused = run_e2e(settings, clip, root / "runs" / f"x{scale}-fused", scale, 1, echo, fused=True)
    rows += e2e_rows(base, fused, 2, ideal, label="fused pool, ")
    return rows, main


def _srvgg(scale: int) -> torch.nn.Module:
    from pipeline.models.baselines import SRVGGNetCompact

    return SRVGGNetCompact(num_feat=64, num_conv=16, upscale=scale)


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


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


# One column of a report table: header, row field, format spec.
Column = tuple[str, str, str]
SCALE: Column = ("scale", "scale", "d")
STAGE_TABLE: list[Column] = [SCALE, ("stage", "stage", "s"), ("resource", "resource", "s")]
STAGE_TABLE += [("busy ms/frame", "busy_ms", ".2f"), ("fps", "fps", ".1f")]
E2E_TABLE: list[Column] = [SCALE, ("run", "stage", "s"), ("frames", "frames", "d"), ("actors/pool", "actors", "d")]
E2E_TABLE += [("seconds", "seconds", ".1f"), ("fps", "fps", ".2f"), ("ideal fps", "ideal_fps", ".2f")]
E2E_TABLE += [("efficiency", "efficiency", ".2f"), ("GPU util %", "gpu_util", ".0f"), ("GPU MiB", "gpu_mem_mb", ".0f")]
BASELINE_TABLE: list[Column] = [SCALE, ("baseline", "stage", "s"), ("frames", "frames", "d")]
BASELINE_TABLE += [("threads", "threads", "d"), ("fps", "fps", ".2f"), ("GMAC/frame", "gmac_per_frame", ".2f")]
BASELINE_TABLE += [("TFLOP/s", "achieved_tflops", ".4f"), ("MFU", "mfu", ".3f")]
FUSED_TABLE: list[Column] = [SCALE, ("mode", "stage", "s"), ("fps", "fps", ".2f")]
CURVE_TABLE: list[Column] = [("curve", "curve", "s"), *E2E_TABLE[:-2]]
RSS_TABLE: list[Column] = [SCALE, ("role", "stage", "s"), ("peak MiB", "peak_rss_mb", ".0f")]


def table(rows: Iterable[dict[str, Any]], columns: Sequence[Column]) -> str:
    align = "|" + "|".join("---" if spec == "s" else "---:" for _, _, spec in columns) + "|"  # text left, numbers right
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", align]
    lines += ["| " + " | ".join(_cell(r.get(f), spec) for _, f, spec in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]], settings: Settings) -> str:
    """The report: stages and roofline, end to end, baselines, fused vs separate, curves, peaks."""

    def of(*kinds: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["kind"] in kinds]

    w, h = settings.size
    sizes = ", ".join(f"x{s}: {w}x{h} -> {w * s}x{h * s}" for s in settings.scales)
    stages = [{**r, "busy_ms": 1e3 * r["busy_s_per_frame"]} if r["kind"] == "stage" else {**r, "stage": "IDEAL"}
              for r in of("stage", "ideal")]  # fmt: skip
    curves = [{**r, "curve": r["kind"].removeprefix("curve: ")} for r in rows if r["kind"].startswith("curve")]
    parts = [
        f"Throughput: {settings.frames} frames ({sizes}), {settings.strong} + {settings.light}, {rows[0]['device']}.",
        "Stages alone on one unit (busy: CPU seconds on CPU, wall seconds on a GPU) and the roofline (IDEAL):",
        table(stages, STAGE_TABLE),
        "End to end: the real job in its own process and Ray cluster (steady: once the pipeline is full, from the "
        "chunks' writing times); efficiency = fps / ideal:",
        table(of("e2e"), E2E_TABLE),
        "Baselines on all cores; the models model-only, random weights for SRVGGNetCompact and RRDBNet:",
        table(of("baseline"), BASELINE_TABLE),
        "Fused vs separate, model-only on one unit (end to end: the fused pool rows above):",
        table(of("fused"), FUSED_TABLE),
    ]
    if curves:
        parts += ["Scaling curves, real jobs (actors per pool on the full clip; length with one actor per pool):"]
        parts += [table(curves, CURVE_TABLE)]
    parts += ["Peak RSS of the end-to-end run per process role (its largest process):", table(of("rss"), RSS_TABLE)]
    return "\n\n".join(parts) + "\n"
