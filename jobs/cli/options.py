"""What the `pssr` commands share: the options of `pssr run`, `sync` and `plan`, each mapped onto one
JobSpec field (pipeline/config.py), and the refusals that exit with status 2.

A YAML job file given with --config supplies the rest, and options given here win over it.
Environment variables PSSR_<COMMAND>_<OPTION> (e.g. PSSR_RUN_S3_ENDPOINT_URL) act like the option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from pipeline.config import ConfigError, JobSpec, load_job_spec

# option name -> dotted JobSpec field, filled by `spec_option` as the options are declared
RUN_FIELDS: dict[str, str] = {}


def job_spec(input_uri: str, output_uri: str, config: str | None, options: dict[str, Any]) -> JobSpec:
    overrides: dict[str, Any] = {"input": input_uri, "output": output_uri}
    if options.get("scale"):
        options = {**options, "scale": int(options["scale"])}  # a click.Choice of strings
    overrides.update({RUN_FIELDS[name]: value for name, value in options.items() if name in RUN_FIELDS})
    try:
        return load_job_spec(config, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


class Refused(click.ClickException):
    exit_code = 2  # like bad usage: the job could not run as given


@contextmanager
def refusals() -> Iterator[None]:
    """StorageError, WeightsError and TileError as one line (`Error: <uri>: no such bucket`) and
    exit status 2 instead of a traceback. They come from listing the input (a bucket, prefix or
    folder that does not exist), finding the weights or checking a pool's tile against its
    model, before any work; or from the output store failing under a running job, which cannot
    go on either. A video's own failures never get here: they are manifest rows, and exit
    status 1."""
    from pipeline.models import WeightsError  # late, like run_job: torch's import is slow
    from pipeline.models.tiling import TileError
    from pipeline.storage import StorageError

    try:
        yield
    except (StorageError, WeightsError, TileError) as exc:
        raise Refused(str(exc)) from None


def describe(field: str) -> str:
    """The help text of a JobSpec field, so the CLI and the config reference cannot drift."""
    model: Any = JobSpec
    *parents, leaf = field.split(".")
    for name in parents:
        model = model.model_fields[name].annotation
    info = model.model_fields[leaf]
    if info.default is None and "default:" in (info.description or ""):
        return f"{info.description} [{field}]"  # the description says what no value means
    default = info.default if info.default is not None else "unset"
    return f"{info.description} [{field}; default: {default}]"


def spec_option(*decls: str, field: str, **kwargs: Any) -> Callable:
    # click's parameter name: "--detect-scenes/--no-detect-scenes" -> "detect_scenes"
    RUN_FIELDS[decls[0].split("/")[0].lstrip("-").replace("-", "_")] = field
    return click.option(*decls, help=describe(field), default=None, **kwargs)


def job_options(func: Callable) -> Callable:
    options = [
        spec_option("--scale", field="scale", type=click.Choice(["2", "3", "4"])),
        spec_option("--deinterlace", field="deinterlace", type=click.Choice(["auto", "always", "never"])),
        spec_option("--deinterlace-rate", field="deinterlace_rate", type=click.Choice(["frame", "field"])),
        spec_option("--device", field="device", type=click.Choice(["auto", "cpu", "cuda"])),
        spec_option("--limit", field="limit", type=int),
        spec_option("--strong-model", field="models.strong"),
        spec_option("--light-model", field="models.light"),
        spec_option("--weights-dir", field="models.weights_dir", type=click.Path(file_okay=False)),
        spec_option("--segment-frames", field="segment.max_core_frames", type=int),
        spec_option("--context-frames", field="segment.context_frames", type=int),
        spec_option("--scene-threshold", field="segment.scene_threshold", type=float),
        spec_option("--detect-scenes/--no-detect-scenes", field="segment.detect_scenes"),
        spec_option("--codec", field="encode.codec", type=click.Choice(["h264", "hevc", "av1", "ffv1", "prores"])),
        spec_option("--crf", field="encode.crf", type=int),
        spec_option("--preset", field="encode.preset"),
        spec_option("--pix-fmt", field="encode.pix_fmt"),
        spec_option("--container", field="encode.container", type=click.Choice(["auto", "mp4", "mkv", "mov"])),
        spec_option("--max-width", field="limits.max_width", type=int),
        spec_option("--max-height", field="limits.max_height", type=int),
        spec_option("--max-duration", field="limits.max_duration_s", type=float),
        spec_option("--min-lr-psnr", field="review.min_lr_psnr", type=float),
        spec_option("--max-tfs", field="review.max_tfs", type=float),
        spec_option("--max-flicker", field="review.max_flicker", type=float),
        spec_option("--max-light-delta", field="review.max_light_delta", type=float),
        spec_option("--strong-actors", field="strong_pool.size", type=int),
        spec_option("--strong-batch", field="strong_pool.batch_size", type=int),
        spec_option("--strong-gpus", field="strong_pool.num_gpus", type=float),
        spec_option("--light-actors", field="light_pool.size", type=int),
        spec_option("--light-batch", field="light_pool.batch_size", type=int),
        spec_option("--light-gpus", field="light_pool.num_gpus", type=float),
        spec_option("--fused/--separate-pools", field="fused"),
        spec_option("--s3-endpoint-url", field="storage.s3_endpoint_url"),
        spec_option("--region", field="storage.region"),
        spec_option("--ray-address", field="ray.address"),
        spec_option("--num-cpus", field="ray.num_cpus", type=int),
    ]
    for option in reversed(options):
        func = option(func)
    return click.option(
        "--config", "config", type=click.Path(exists=True, dir_okay=False), help="YAML job file (a JobSpec)."
    )(func)


def output_options(func: Callable) -> Callable:
    """What `pssr run` and `pssr sync` print while the job runs."""
    func = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="JSON Lines on stdout, one object per event (video_ok, video_failed, ...), a progress object every "
        "30 s and a closing summary; nothing else goes to stdout.",
    )(func)
    return click.option(
        "-q", "--quiet", is_flag=True, help="Print nothing but errors (on stderr); the exit status tells the rest."
    )(func)


def storage_options(func: Callable) -> Callable:
    """S3 settings of the commands that only read outputs (PSSR_<COMMAND>_S3_ENDPOINT_URL works too)."""
    func = click.option("--region", help="S3 region; default: boto3's standard chain.")(func)
    return click.option("--s3-endpoint-url", help="S3 endpoint (MinIO, moto, other regions); default: AWS.")(func)
