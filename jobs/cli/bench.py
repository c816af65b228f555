"""`pssr bench ...`: benchmarks, registered on the main CLI (jobs/cli/main.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import click

from pipeline.config import ConfigError


class _ImportedChoice(click.Choice):
    """A Choice whose values come from the module that owns them, imported the first time they are
    needed (parsing or showing the command's options): that module imports torch and Ray, which
    `pssr --help` and the other commands must not wait for."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self.case_sensitive = True

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._load())


def _methods() -> Sequence[str]:
    from jobs.bench.quality import METHODS

    return METHODS


def _tracks() -> Sequence[str]:
    from jobs.bench.benchset import TRACKS

    return TRACKS


# jobs/bench/benchset.py's BenchSet defaults, written out here for the help texts, which every
# `pssr bench` help and the references show without importing torch; a test keeps them equal.
SET_DEFAULTS: dict[str, float] = {
    "videos": 3,
    "scenes": 4,
    "frames": 24,
    "width": 640,
    "height": 360,
    "scale": 4,
    "seed": 0,
    "max_speed": 8.0,
}


def _set_option(name: str, help: str, kind: type = int) -> Any:
    flag = "--" + name.replace("_", "-")
    return click.option(flag, name, type=kind, help=f"{help}  [default: {SET_DEFAULTS[name]:g}]")


@click.group()
def bench() -> None:
    """Benchmarks of the models through the real pipeline."""


def _photos_option(help: str) -> Any:
    return click.option("--photos", type=click.Path(exists=True, file_okay=False), required=True, help=help)


@bench.command()
@_photos_option("Folder of photos and videos held out from training (`python -m jobs.train.photos natural DIR`).")
@click.option("--out", "out", default="bench-out", show_default=True, help="Folder for the set, runs and results.")
@click.option(
    "--scale",
    type=click.Choice(["2", "3", "4"]),
    callback=lambda _ctx, _param, value: None if value is None else int(value),
    help=f"Upscaling factor.  [default: {SET_DEFAULTS['scale']}]",
)
@_set_option("videos", "Videos in the set.")
@_set_option("scenes", "Scenes (photos) per video, joined by hard cuts.")
@_set_option("frames", "Frames per scene.")
@_set_option("width", "HR frame width.")
@_set_option("height", "HR frame height.")
@_set_option("seed", "Seed of the set (photos, camera moves, degradations).")
@_set_option("max_speed", "Fastest camera move or object in the photo scenes, LR pixels per frame.", float)
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=_ImportedChoice(_methods),
    help="Methods to run (repeatable); default: all.",
)
@click.option("--track", "tracks", multiple=True, type=_ImportedChoice(_tracks), help="Tracks to run; default: both.")
@click.option("--strong-model", default="tiny", show_default=True, help="Strong model of the learned methods.")
@click.option("--light-model", default="tiny", show_default=True, help="Light model of the learned methods.")
@click.option("--speed/--no-speed", default=True, show_default=True, help="Model-only speed test vs SRVGGNetCompact.")
@click.option(
    "--motion/--no-motion",
    default=True,
    show_default=True,
    help="The models alone: neighbour-frame ablation and motion sweep (jobs/bench/motion.py).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML job file for the pipeline settings (pools, segments, Ray, weights_dir).",
)
def quality(
    photos: str,
    out: str,
    methods: tuple[str, ...],
    tracks: tuple[str, ...],
    strong_model: str,
    light_model: str,
    speed: bool,
    motion: bool,
    config: str | None,
    **set_options: Any,
) -> None:
    """PSNR, SSIM, ewarp, tfs, lr_psnr and fps of bicubic, Lanczos, the light model alone, the
    strong model alone and both, on the BI and realistic tracks of a set built from PHOTOS.

    Every figure comes from `pssr run` with the HR reference. Writes OUT/quality.parquet,
    OUT/speed.parquet and OUT/quality.md.
    """
    from jobs.bench.benchset import TRACKS, BenchSet
    from jobs.bench.errors import BenchError
    from jobs.bench.quality import METHODS, bench_quality  # late: torch and Ray import slowly
    from pipeline.models import WeightsError
    from pipeline.storage import StorageError

    try:
        spec = BenchSet(**{name: value for name, value in set_options.items() if value is not None})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        bench_quality(
            photos, out, spec, methods or METHODS, tracks or TRACKS, strong=strong_model, light=light_model,
            config=config, speed=speed, motion=motion, echo=click.echo,
        )  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except (BenchError, WeightsError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None


@bench.command()
@_photos_option("Folder of the held-out natural photos (`python -m jobs.train.photos natural DIR`).")
@click.option("--out", "out", default="bench-out", show_default=True, help="Folder for the results.")
def flicker(photos: str, out: str) -> None:
    """`tfs` and `flicker` of stable outputs (bicubic, Lanczos, the true HR frames, sharpened ones)
    and of outputs whose detail changes from frame to frame, on clips filmed from 6 of PHOTOS as
    training films them (docs/status-and-report.md, "Flicker against tfs").

    Prints and writes OUT/flicker.md (the tables) and OUT/flicker.parquet (every score).
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.flicker import bench_flicker  # late: torch imports slowly
    from pipeline.models import WeightsError

    try:
        bench_flicker(photos, out, echo=click.echo)
    except (BenchError, WeightsError) as exc:
        raise click.ClickException(str(exc)) from None


def _job_options(func: Callable) -> Callable:
    """Where the benchmarks that run the real job write, and the local Ray cluster each run starts."""
    for option in reversed(
        (
            click.option(
                "--out", "out", default="bench-out", show_default=True, help="Folder for the clips, runs and results."
            ),
            click.option(
                "--num-cpus",
                type=click.IntRange(min=1),
                help="CPUs of each run's local Ray cluster  [default: all cores]",
            ),
            click.option(
                "--object-store-mb",
                type=click.IntRange(min=80),
                default=300,
                show_default=True,
                help="Object store of each run's cluster.",
            ),
            click.option(
                "--config",
                type=click.Path(exists=True, dir_okay=False),
                help="YAML job file for the other pipeline settings (models, pools, Ray Data budget).",
            ),
        )
    ):
        func = option(func)
    return func


@bench.command()
@_job_options
@click.option("--frames", type=click.IntRange(min=1), default=64, show_default=True, help="Frames of the short clip.")
@click.option(
    "--factor",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="The long clip is this many times longer.",
)
@click.option("--width", type=click.IntRange(min=16), default=96, show_default=True, help="Input frame width.")
@click.option("--height", type=click.IntRange(min=16), default=54, show_default=True, help="Input frame height.")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), default="4", show_default=True, help="Upscaling factor.")
@click.option(
    "--segment-frames", type=click.IntRange(min=1), default=8, show_default=True, help="Most frames a segment writes."
)
def memory(out: str, scale: str, **options: Any) -> None:
    """Peak memory of the driver and of every Ray process, for a clip and one FACTOR times longer.

    Each run is the real job in a fresh process with its own local Ray cluster. Prints a table
    of peak RSS per role and the ratio long / short, writes OUT/memory.parquet (that table),
    OUT/memory_processes.parquet (every process) and OUT/memory.md, and exits 1 unless every
    ratio is at most 1.2.
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.memory import bench_memory  # late: PyAV and pyarrow import slowly

    try:
        ok = bench_memory(out, scale=int(scale), echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


def _int_list(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[int, ...] | None:
    """Repeatable options that also take comma-separated lists: --scale 2 --scale 4, or --scale 2,4."""
    if not value:
        return None
    try:
        numbers = tuple(int(part) for item in value for part in item.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected whole numbers, got {', '.join(value)}") from None
    if any(n < 1 for n in numbers):
        raise click.BadParameter("every number must be at least 1")
    return numbers


def _size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, e.g. 160x90, got {value!r}") from None
    if width < 16 or height < 16:
        raise click.BadParameter(f"{value}: at least 16x16")
    return width, height


@bench.command()
@_job_options
@click.option(
    "--scale", "scales", multiple=True, callback=_int_list, help="Scales (repeatable or 2,4).  [default: 2,4]"
)
@click.option("--size", default="160x90", show_default=True, callback=_size, help="LR frame size WxH.")
@click.option("--frames", type=click.IntRange(min=1), help="Frames of the clip.  [default: 240; --quick: 16]")
@click.option("--strong", "strong", default="tiny", show_default=True, help="Strong model (registry name).")
@click.option("--light", "light", default="tiny", show_default=True, help="Light model (registry name).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--actors", multiple=True, callback=_int_list, help="Actors per pool on the scaling curve.  [default: 1,2]"
)
@click.option(
    "--lengths", multiple=True, callback=_int_list, help="Clip lengths of the length curve.  [default: 60,120]"
)
@click.option(
    "--rrdb-frames", type=click.IntRange(min=1), help="Frames RRDBNet is timed on (it is slow).  [default: 2]"
)
@click.option("--quick", is_flag=True, help="Tiny settings for tests: 16 frames, x4 only, no curves, 1 RRDBNet frame.")
def throughput(
    out: str,
    scales: tuple[int, ...] | None,
    frames: int | None,
    actors: tuple[int, ...] | None,
    lengths: tuple[int, ...] | None,
    rrdb_frames: int | None,
    quick: bool,
    **options: Any,
) -> None:
    """Frames/s of every stage alone (one CPU core or one GPU), of the whole pipeline (the real job,
    with and without start-up) against its roofline, of baselines (PyAV + Lanczos, SRVGGNetCompact,
    RRDBNet) and of fused vs separate models, with scaling curves over actors per pool and clip length.

    Writes OUT/throughput.parquet (one row per measurement) and OUT/throughput.md.
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.throughput.run import bench_throughput  # late: torch and Ray import slowly
    from jobs.bench.throughput.settings import Settings

    if any(s not in (2, 3, 4) for s in scales or ()):
        raise click.BadParameter("scales are 2, 3 or 4", param_hint="--scale")
    defaults = Settings(scales=(4,), frames=16, actors=(), lengths=(), rrdb_frames=1) if quick else Settings()
    settings = Settings(
        scales=scales or defaults.scales,
        frames=frames or defaults.frames,
        actors=defaults.actors if actors is None else actors,
        lengths=defaults.lengths if lengths is None else lengths,
        rrdb_frames=rrdb_frames or defaults.rrdb_frames,
        **options,
    )
    try:
        bench_throughput(settings, out, echo=click.echo)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None


def _count(flag: str, default: int, help: str, least: int = 1) -> Callable:
    return click.option(flag, type=click.IntRange(min=least), default=default, show_default=True, help=help)


@bench.command()
@click.option("--out", default="bench-out", show_default=True, help="Folder for the clip and the results.")
@_count("--frames", 6000, "Frames of the clip.", least=2)
@click.option("--size", default="640x360", show_default=True, callback=_size, help="Frame size WxH.")
@_count("--gop", 50, "Frames from one keyframe to the next.")
@_count("--scene-frames", 400, "Frames from one scene cut to the next.")
@_count("--nodes", 3, "Nodes of the local cluster, one CPU each.", least=2)
@_count("--range-frames", 750, "segment.range_frames for the shared planning.", least=2)
@_count("--repeat", 2, "Runs of each; the fastest counts.")
def scale(size: tuple[int, int], **options: Any) -> None:
    """A long video's planning, by one task and shared out over a local multi-node Ray cluster.

    Plans the clip alternately by one task scanning it serially and by one task sharing its
    ranges out to Ray tasks (as the job plans a video of two ranges or more). Prints both times
    and the speed-up, writes OUT/scale.parquet and OUT/scale.md, and exits 1 unless the plans are
    identical and the speed-up is at least 1.8.
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.scale import bench_scale  # late: Ray and PyAV import slowly

    width, height = size
    try:
        ok = bench_scale(width=width, height=height, echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


@bench.command("first-chunk")
@click.option("--out", default="bench-out", show_default=True, help="Folder for the clips and the results.")
@click.option(
    "--minutes", default="1,10,60", show_default=True, help="Video lengths, comma-separated; the first is repeated."
)
@click.option("--size", default="640x360", show_default=True, callback=_size, help="Frame size WxH.")
@_count("--repeat", 2, "Runs of each length; the fastest counts.")
def first_chunk(minutes: str, size: tuple[int, int], **options: Any) -> None:
    """Time from `pssr run` to its first chunk written, against the video's length.

    Runs `pssr run` (bicubic/none, x2) on a synthetic clip and on copies of it repeated to the
    longer lengths, each until its first chunk lands in staging. Prints the times, writes
    OUT/first_chunk.parquet and OUT/first_chunk.md, and exits 1 unless every length is within
    1.2x of the shortest.
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.first_chunk import bench_first_chunk  # late: PyAV imports slowly

    try:
        lengths = tuple(float(m) for m in minutes.split(","))
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {minutes!r}", param_hint="--minutes") from None
    width, height = size
    try:
        ok = bench_first_chunk(minutes=lengths, width=width, height=height, echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


@bench.command()
@click.option("--out", default="bench-out", show_default=True, help="Folder for the clip and the results.")
@_count("--clips", 500, "Clips in the bucket (a tenth of them run first).", least=10)
@_count("--frames", 48, "Frames of each clip.", least=2)
@click.option("--size", default="320x180", show_default=True, callback=_size, help="Frame size WxH.")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), default="2", show_default=True, help="Upscaling factor.")
@click.option("--strong", default="bicubic", show_default=True, help="Strong model (bicubic: the pipeline's own cost).")
@click.option("--light", default="none", show_default=True, help="Light model.")
@click.option("--num-cpus", type=click.IntRange(min=1), help="Ray CPUs (default: the machine's).")
@_count("--object-store-mb", 300, "Ray object store size.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="Job config file (YAML) for both runs.")
def bucket(size: tuple[int, int], scale: str, **options: Any) -> None:
    """A bucket of many short clips through one job: no drains between videos.

    A moto S3 server holds CLIPS copies of a synthetic clip. One clip's steady work is measured
    stage by stage in one process; then the job runs on a tenth of the bucket and on all of it,
    each in its own process and Ray cluster. Prints the job's work time (after its start-up)
    against CLIPS x that work / Ray CPUs, the longest gap between chunks written and the driver's
    peak RSS; writes OUT/bucket.parquet and OUT/bucket.md; exits 1 unless the work is within 1.3x
    of the ideal and the driver's peak grew at most 1.2x. Needs moto (pip install -e .[test]).
    """
    from jobs.bench.bucket import bench_bucket  # late: Ray, torch and moto import slowly
    from jobs.bench.errors import BenchError

    width, height = size
    try:
        ok = bench_bucket(width=width, height=height, scale=int(scale), echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


@bench.command()
@click.option("--out", default="bench-out", show_default=True, help="Folder for the results.")
@_count("--keys", 10_000, "Input objects in the bucket (as many outputs again).")
@_count("--repeat", 2, "Decisions timed; the fastest counts.")
def sync(**options: Any) -> None:
    """What a scheduled sync over a big bucket with nothing new costs: a moto S3 server holds KEYS
    inputs, their outputs and the index of the job that did them; the sync's decision runs and
    its time and S3 requests are reported. Writes OUT/sync.parquet and OUT/sync.md; exits 1 unless
    it finds nothing to do in under 10 s. Needs moto (pip install -e .[test]).
    """
    from jobs.bench.errors import BenchError
    from jobs.bench.sync_index import bench_sync  # late: boto3 and moto import slowly

    try:
        ok = bench_sync(echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)
