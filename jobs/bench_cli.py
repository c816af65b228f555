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
