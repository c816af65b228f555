"""`pssr bench ...`: benchmarks, registered on the main CLI (jobs/cli.py)."""

from __future__ import annotations

from typing import Any

import click

from pipeline.config import ConfigError

# pipeline.benchset's BenchSet defaults and TRACKS, and jobs.bench_quality's METHODS, written
# out here because importing those modules (torch, PyAV) would slow every `pssr` command; a
# test keeps them equal.
SET_DEFAULTS: dict[str, int] = {
    "videos": 2,
    "scenes": 3,
    "frames": 16,
    "width": 640,
    "height": 360,
    "scale": 4,
    "seed": 0,
}
TRACKS = ("bi", "realistic")
METHODS = ("bicubic", "lanczos", "light", "strong", "strong+light")


def _set_option(name: str, help: str) -> Any:
    return click.option(f"--{name}", type=int, help=f"{help}  [default: {SET_DEFAULTS[name]}]")


@click.group()
def bench() -> None:
    """Benchmarks of the models through the real pipeline."""


@bench.command()
@click.option(
    "--photos",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="Folder of photos held out from training (`python -m jobs.photos bench DIR`).",
)
@click.option("--out", "out", default="bench-out", show_default=True, help="Folder for the set, runs and results.")
@click.option(
    "--scale", type=click.Choice(["2", "3", "4"]), help=f"Upscaling factor.  [default: {SET_DEFAULTS['scale']}]"
)
@_set_option("videos", "Videos in the set.")
@_set_option("scenes", "Scenes (photos) per video, joined by hard cuts.")
@_set_option("frames", "Frames per scene.")
@_set_option("width", "HR frame width.")
@_set_option("height", "HR frame height.")
@_set_option("seed", "Seed of the set (photos, camera moves, degradations).")
@click.option(
    "--method", "methods", multiple=True, type=click.Choice(METHODS), help="Methods to run (repeatable); default: all."
)
@click.option("--track", "tracks", multiple=True, type=click.Choice(TRACKS), help="Tracks to run; default: both.")
@click.option("--strong-model", default="tiny", show_default=True, help="Strong model of the learned methods.")
@click.option("--light-model", default="tiny", show_default=True, help="Light model of the learned methods.")
@click.option("--speed/--no-speed", default=True, show_default=True, help="Model-only speed test vs SRVGGNetCompact.")
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
    config: str | None,
    **set_options: Any,
) -> None:
    """PSNR, SSIM, ewarp, tfs, lr_psnr and fps of bicubic, Lanczos, the light model alone, the
    strong model alone and both, on the BI and realistic tracks of a set built from PHOTOS.

    Every figure comes from `pssr run` with the HR reference. Writes OUT/quality.parquet,
    OUT/speed.parquet and OUT/quality.md.
    """
    from jobs.bench_quality import BenchError, bench_quality  # late: torch and Ray import slowly
    from pipeline.benchset import BenchSet
    from pipeline.models import WeightsError
    from pipeline.storage import StorageError

    try:
        spec = BenchSet(**{name: int(value) for name, value in set_options.items() if value is not None})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        bench_quality(
            photos, out, spec, methods or METHODS, tracks or TRACKS, strong=strong_model, light=light_model,
            config=config, speed=speed, echo=click.echo,
        )  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except (BenchError, WeightsError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None


@bench.command()
@click.option("--out", "out", default="bench-out", show_default=True, help="Folder for the clips, runs and results.")
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
@click.option(
    "--num-cpus", type=click.IntRange(min=1), help="CPUs of each run's local Ray cluster  [default: all cores]"
)
@click.option(
    "--object-store-mb",
    type=click.IntRange(min=80),
    default=300,
    show_default=True,
    help="Object store of each run's cluster.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML job file for the other pipeline settings (models, pools, Ray Data budget).",
)
def memory(out: str, scale: str, **options: Any) -> None:
    """Peak memory of the driver and of every Ray process, for a clip and one FACTOR times longer.

    Each run is the real job in a fresh process with its own local Ray cluster. Prints a table
    of peak RSS per role and the ratio long / short, writes OUT/memory.parquet (that table),
    OUT/memory_processes.parquet (every process) and OUT/memory.md, and exits 1 unless every
    ratio is at most 1.2.
    """
    from jobs.bench_memory import BenchError, bench_memory  # late: PyAV and pyarrow import slowly

    try:
        ok = bench_memory(out, scale=int(scale), echo=click.echo, **options)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)
