"""The `pssr` command line.

Every option maps onto one field of the JobSpec (pipeline/config.py); a YAML job file given
with --config supplies the rest, and options given here win over it. Environment variables
PSSR_<COMMAND>_<OPTION> (e.g. PSSR_RUN_S3_ENDPOINT_URL) act like the option.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from jobs.cli.bench import bench
from jobs.run.logs import configure_logging
from jobs.run.progress import JsonReporter, QuietReporter, Reporter, console_reporter, reserved_stdout
from pipeline.config import ConfigError, JobSpec, load_job_spec

if TYPE_CHECKING:
    from jobs.run.job import JobSummary  # Ray's import is slow: the commands import it late

# option name -> dotted JobSpec field, filled by _option as the options are declared
RUN_FIELDS: dict[str, str] = {}


def _spec(input_uri: str, output_uri: str, config: str | None, options: dict[str, Any]) -> JobSpec:
    overrides: dict[str, Any] = {"input": input_uri, "output": output_uri}
    if options.get("scale"):
        options = {**options, "scale": int(options["scale"])}  # a click.Choice of strings
    overrides.update({RUN_FIELDS[name]: value for name, value in options.items() if name in RUN_FIELDS})
    try:
        return load_job_spec(config, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


class _Refused(click.ClickException):
    exit_code = 2  # like bad usage: the job could not run as given


@contextmanager
def _refusals() -> Iterator[None]:
    """StorageError, WeightsError and TileError as one line (`Error: <uri>: no such bucket`) and
    exit status 2 instead of a traceback. They come from listing the input (a bucket, prefix or
    folder that does not exist), finding the weights or checking a pool's tile against its
    model, before any work; or from the output store failing under a running job, which cannot
    go on either. A video's own failures never get here: they are manifest rows, and exit
    status 1."""
    from pipeline.models import WeightsError  # late, like run_job: torch's import is slow
    from pipeline.storage import StorageError
    from pipeline.models.tiling import TileError

    try:
        yield
    except (StorageError, WeightsError, TileError) as exc:
        raise _Refused(str(exc)) from None


def _describe(field: str) -> str:
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


def _option(*decls: str, field: str, **kwargs: Any) -> Callable:
    # click's parameter name: "--detect-scenes/--no-detect-scenes" -> "detect_scenes"
    RUN_FIELDS[decls[0].split("/")[0].lstrip("-").replace("-", "_")] = field
    return click.option(*decls, help=_describe(field), default=None, **kwargs)


def job_options(func: Callable) -> Callable:
    options = [
        _option("--scale", field="scale", type=click.Choice(["2", "3", "4"])),
        _option("--deinterlace", field="deinterlace", type=click.Choice(["auto", "always", "never"])),
        _option("--device", field="device", type=click.Choice(["auto", "cpu", "cuda"])),
        _option("--limit", field="limit", type=int),
        _option("--wave-videos", field="wave_videos", type=int),
        _option("--strong-model", field="models.strong"),
        _option("--light-model", field="models.light"),
        _option("--weights-dir", field="models.weights_dir", type=click.Path(file_okay=False)),
        _option("--segment-frames", field="segment.max_core_frames", type=int),
        _option("--context-frames", field="segment.context_frames", type=int),
        _option("--scene-threshold", field="segment.scene_threshold", type=float),
        _option("--detect-scenes/--no-detect-scenes", field="segment.detect_scenes"),
        _option("--codec", field="encode.codec", type=click.Choice(["h264", "hevc", "av1", "ffv1", "prores"])),
        _option("--crf", field="encode.crf", type=int),
        _option("--preset", field="encode.preset"),
        _option("--pix-fmt", field="encode.pix_fmt"),
        _option("--container", field="encode.container", type=click.Choice(["auto", "mp4", "mkv", "mov"])),
        _option("--max-width", field="limits.max_width", type=int),
        _option("--max-height", field="limits.max_height", type=int),
        _option("--max-duration", field="limits.max_duration_s", type=float),
        _option("--min-lr-psnr", field="review.min_lr_psnr", type=float),
        _option("--max-tfs", field="review.max_tfs", type=float),
        _option("--max-flicker", field="review.max_flicker", type=float),
        _option("--max-light-delta", field="review.max_light_delta", type=float),
        _option("--strong-actors", field="strong_pool.size", type=int),
        _option("--strong-batch", field="strong_pool.batch_size", type=int),
        _option("--strong-gpus", field="strong_pool.num_gpus", type=float),
        _option("--light-actors", field="light_pool.size", type=int),
        _option("--light-batch", field="light_pool.batch_size", type=int),
        _option("--light-gpus", field="light_pool.num_gpus", type=float),
        _option("--fused/--separate-pools", field="fused"),
        _option("--s3-endpoint-url", field="storage.s3_endpoint_url"),
        _option("--region", field="storage.region"),
        _option("--ray-address", field="ray.address"),
        _option("--num-cpus", field="ray.num_cpus", type=int),
    ]
    for option in reversed(options):
        func = option(func)
    return click.option(
        "--config", "config", type=click.Path(exists=True, dir_okay=False), help="YAML job file (a JobSpec)."
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PSSR"})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log records on stderr as text or as JSON objects; each carries the running job's id.",
)
def cli(verbose: bool, log_format: str) -> None:
    """PS-SR: upscale long videos with a two-tier super-resolution model on Ray.

    Inputs and outputs are local paths or s3://bucket/prefix/ addresses.
    """
    configure_logging(verbose, log_format)


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


@contextmanager
def _reporting(quiet: bool, as_json: bool) -> Iterator[Reporter]:
    """The reporter the options ask for; on a terminal (stderr), with a live status line."""
    if quiet and as_json:
        raise click.UsageError("--quiet and --json exclude each other")
    if as_json:
        with reserved_stdout() as stdout:
            yield JsonReporter(stdout)
        return
    if quiet:
        logging.getLogger().setLevel(logging.ERROR)
        yield QuietReporter()
    else:
        yield console_reporter(click.echo, sys.stderr)


@cli.command()
@click.argument("input_uri", metavar="INPUT")
@click.argument("output_uri", metavar="OUTPUT")
@job_options
@_option("--reference", field="reference")
@output_options
def run(input_uri: str, output_uri: str, config: str | None, quiet: bool, as_json: bool, **options: Any) -> None:
    """Upscale INPUT (a video file, a folder, or s3://bucket/prefix/) into OUTPUT.

    Each video is written to OUTPUT under its relative path with a scale suffix
    (a/b.mov -> a/b_x4.mp4); Parquet manifests go to OUTPUT/_pssr/manifest/. With --reference
    (benchmark mode) they also hold psnr, ssim and ewarp against the HR reference videos.
    Exits 1 when any video failed (the manifest says why), 2 on bad usage or when the input
    or the weights cannot be found.
    """
    spec = _spec(input_uri, output_uri, config, options)
    from jobs.run.job import run_job  # imported late: Ray's import is slow and --help needs none of it

    _execute(run_job, spec, quiet, as_json)


def _execute(
    runner: Callable[..., JobSummary],
    spec: JobSpec,
    quiet: bool,
    as_json: bool,
    first: Callable[..., str] | None = None,
) -> None:
    """Run the job with the reporter the options ask for; print its closing lines (`first(summary)`
    leading them) and exit with its status: 1 when any video failed."""
    with _reporting(quiet, as_json) as reporter:
        with _refusals(), reporter:
            summary = runner(spec, report=reporter)
        _report(summary, reporter, *([first(summary)] if first else []))


def _report(summary: JobSummary, reporter: Reporter, *first: str) -> None:
    """The job's closing lines (after the `first` ones), and its exit status: 1 when any video failed."""
    status = 0 if summary.ok else 1
    totals = (
        f"job {summary.job_id}: {len(summary.videos_ok)} ok, {len(summary.videos_failed)} failed, "
        f"{len(summary.videos_skipped)} already done, {summary.segments_reused} segment(s) reused; "
        f"{summary.frames} frames in {summary.wall_s:.1f} s"
    )
    outputs = [f"output   {uri}" for uri in summary.outputs.values()]
    lines = [*first, totals, *outputs, f"manifest {summary.output.rstrip('/')}/_pssr/manifest/"]
    reporter.finished(summary, status, lines)
    sys.exit(status)


@cli.command()
@click.argument("src_uri", metavar="SRC")
@click.argument("dst_uri", metavar="DST")
@job_options
@_option("--reference", field="reference")
@_option("--lease-seconds", field="sync.lease_seconds", type=int)
@output_options
def sync(src_uri: str, dst_uri: str, config: str | None, quiet: bool, as_json: bool, **options: Any) -> None:
    """Upscale what is new or changed in SRC since the last successful run into DST; for a schedule.

    Takes every option of `pssr run`. Unchanged videos (same ETag, or mtime and size, and same
    settings) are skipped from the listing alone, never downloaded. Each video is leased under
    DST/_pssr/leases/ while it is processed, so runs that overlap split the work: a video leased
    by a live run is skipped, the lease of a run that died is taken over once it expires
    (--lease-seconds after its last renewal). Exit status as `pssr run`.
    """
    spec = _spec(src_uri, dst_uri, config, options)
    from jobs.run.sync import SyncSummary, run_sync  # imported late, as run_job

    def counts(summary: SyncSummary) -> str:
        return (
            f"sync: {len(summary.videos_new)} new, {len(summary.videos_changed)} changed, "
            f"{len(summary.videos_redone)} redone (settings changed or output gone), "
            f"{len(summary.videos_skipped)} unchanged, {len(summary.videos_leased)} leased by another run, "
            f"{len(summary.videos_done_elsewhere)} done by another run meanwhile, "
            f"{len(summary.leases_taken_over)} expired lease(s) taken over"
        )

    _execute(run_sync, spec, quiet, as_json, counts)


@cli.command()
@click.argument("input_uri", metavar="INPUT")
@job_options
def plan(input_uri: str, config: str | None, **options: Any) -> None:
    """Print the segment plan of INPUT (probe and scene cuts; no models run)."""
    spec = _spec(input_uri, "plan-only", config, options)
    from jobs.reports.plan import print_plan

    with _refusals():
        all_ok = print_plan(spec, click.echo)
    sys.exit(0 if all_ok else 1)


@cli.command()
@click.option("--scale", type=click.Choice(["2", "3", "4"]), default="4", show_default=True)
def models(scale: str) -> None:
    """List the registered models: parameters, temporal radius R, cost per output frame at
    160x90 input, and where the weights are (trained, or the bicubic-equivalent start)."""
    from pipeline.models import MODELS, get_spec
    from pipeline.models.cost import gmac_per_frame, parameters

    click.echo(f"{'kind':6} {'name':7} {'params':>12} {'R':>3} {'GMAC/frame':>10}  weights (x{scale})")
    for kind, registry in MODELS.items():
        for name in registry:
            spec = get_spec(kind, name)
            params, radius = parameters(kind, name, int(scale))
            gmac = gmac_per_frame(kind, name, int(scale))
            if not spec.needs_weights:
                where = "not needed (classical)"
            elif entry := spec.weights.get(int(scale)):
                state = "trained" if entry.trained else "bicubic start"
                where = f"bundled, {state}" if entry.bundled else f"weights_dir: {entry.filename} ({state})"
            else:
                where = "none"
            click.echo(f"{kind:6} {name:7} {params:>12,} {radius:>3} {gmac:>10.3f}  {where}")


@cli.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="YAML training file (a TrainSpec).")
@click.option("--out", help="Folder for checkpoints, weights and training.json (resumes from its checkpoints).")
@click.option("--model", help="Registry size to train.  [default: tiny]")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), help="Upscaling factor.  [default: 4]")
@click.option("--stages", help="Comma-separated: strong, light or strong,light.  [default: strong,light]")
@click.option("--strong-steps", type=int)
@click.option("--light-steps", type=int)
@click.option("--batch", type=int, help="Clips per step.")
@click.option("--patch", type=int, help="LR patch side.")
@click.option("--seed", type=int)
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="Autocast precision on CUDA.")
def train(data: tuple[str, ...], config: str | None, **options: Any) -> None:
    """Train the strong model on clips made from DATA (folders of photos and/or videos), then
    the light model on the frozen strong model's output; prints each weight file's sha256."""
    from jobs.train.train import train as run_training
    from pipeline.training.spec import load_train_spec

    if options.get("scale"):
        options["scale"] = int(options["scale"])
    if options.get("stages"):
        options["stages"] = [s.strip() for s in options["stages"].split(",")]
    options["strong.steps"] = options.pop("strong_steps")
    options["light.steps"] = options.pop("light_steps")
    from pipeline.training.sources import SourceError

    try:
        spec = load_train_spec(config, {"data": list(data), **options})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        run_training(spec, echo=click.echo)
    except SourceError as exc:
        raise _Refused(str(exc)) from None


def _storage_options(func: Callable) -> Callable:
    """S3 settings of the commands that only read outputs (PSSR_<COMMAND>_S3_ENDPOINT_URL works too)."""
    func = click.option("--region", help="S3 region; default: boto3's standard chain.")(func)
    return click.option("--s3-endpoint-url", help="S3 endpoint (MinIO, moto, other regions); default: AWS.")(func)


@cli.command()
@click.argument("output_uri", metavar="OUTPUT_FILE")
@click.option(
    "--source", "source_uri", help="The original (path or s3:// URI): check that its sha256 is the recorded one."
)
@_storage_options
def verify(output_uri: str, source_uri: str | None, s3_endpoint_url: str | None, region: str | None) -> None:
    """Read the provenance PS-SR wrote into OUTPUT_FILE (a path or s3:// URI) and check it.

    Prints the com.pssr.* tags; checks that the video stream holds the pictures PS-SR wrote
    (com.pssr.video_sha256) and, with --source, that the source's sha256 is the recorded one.
    Exits 0 when verified, 1 on a mismatch or a file without PS-SR provenance, 2 when a file
    cannot be read.
    """
    from pipeline.media import MediaError  # late, like run_job: the other commands need none of it
    from pipeline.provenance import NotProvenanced, verify_stored
    from pipeline.storage import Storage, StorageError

    storage = Storage(s3_endpoint_url=s3_endpoint_url, region=region)
    try:
        result = verify_stored(storage, output_uri, source_uri)
    except NotProvenanced as exc:
        click.echo(f"{output_uri}: {exc}", err=True)
        sys.exit(1)
    except (MediaError, StorageError, OSError) as exc:
        click.echo(f"cannot read: {exc}", err=True)
        sys.exit(2)
    for key, value in result.tags.items():
        click.echo(f"{key}: {value}")
    for problem in result.problems:
        click.echo(f"MISMATCH {problem}", err=True)
    if result.ok:
        checked = "video stream" + (" and source" if source_uri else "")
        click.echo(f"verified: {output_uri} ({checked} match its provenance)")
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.argument("output_uri", metavar="OUTPUT")
@click.option("--flagged", is_flag=True, help="Also list the flagged segments: time codes, frames, flags, values.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the tables.")
@_storage_options
def status(output_uri: str, flagged: bool, as_json: bool, s3_endpoint_url: str | None, region: str | None) -> None:
    """Where the videos under OUTPUT (a folder or s3:// prefix) stand, from its manifests.

    One line per video, as its latest manifest row says: ok, flagged (ok, with segments past a
    review threshold) or failed, with frames, duration and wall time; then the totals and the
    errors of failed videos. Exits 0 when no video's latest row failed (flagged ones included),
    1 when any did, 2 when OUTPUT holds no manifests or cannot be read.
    """
    from jobs.reports.status import job_status, no_manifests_message, print_status, status_json
    from pipeline.storage import Storage, StorageError

    try:
        result = job_status(Storage(s3_endpoint_url=s3_endpoint_url, region=region), output_uri)
    except (StorageError, OSError) as exc:  # OSError: pyarrow's reading of the manifests
        raise _Refused(str(exc)) from None
    if not result.videos:
        raise _Refused(no_manifests_message(output_uri))
    if as_json:
        click.echo(status_json(result, flagged))
    else:
        print_status(result, click.echo, flagged)
    sys.exit(1 if result.any_failed else 0)


@cli.command()
@click.argument("output_uri", metavar="OUTPUT")
@click.option(
    "--out", "out_uri", default="report.html", show_default=True, help="Where to write the HTML (path or s3:// URI)."
)
@click.option(
    "--max-crops", type=click.IntRange(min=0), default=12, show_default=True, help="Crop pairs per video, at most."
)
@_storage_options
def report(output_uri: str, out_uri: str, max_crops: int, s3_endpoint_url: str | None, region: str | None) -> None:
    """Write a self-contained HTML report of the videos under OUTPUT (opens offline, no script).

    The job summary; per video, tfs, flicker, lr_psnr and detail_gain per segment over time with the review
    thresholds; per flagged segment, the input upscaled bicubic next to the output at its worst
    frame, around where they differ most. Exits 0 when written, 2 when OUTPUT holds no manifests
    or cannot be read (`pssr status` gives the job's state as an exit status).
    """
    from jobs.reports.report import build_report  # late: torch (bicubic crops) is slow to import
    from jobs.reports.status import no_manifests_message
    from pipeline.storage import Storage, StorageError

    storage = Storage(s3_endpoint_url=s3_endpoint_url, region=region)
    try:
        html, result = build_report(storage, output_uri, max_crops, echo=click.echo)
        if not result.videos:
            raise _Refused(no_manifests_message(output_uri))
        storage.write_bytes(out_uri, html.encode())
    except (StorageError, OSError) as exc:
        raise _Refused(str(exc)) from None
    click.echo(f"report {out_uri} ({len(html) // 1024} KiB)")


cli.add_command(bench)


def main() -> None:
    cli(prog_name="pssr")


if __name__ == "__main__":
    main()
