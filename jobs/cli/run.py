"""`pssr run`, `pssr sync` and `pssr plan`: the commands that take a JobSpec."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from jobs.cli.options import job_options, job_spec, output_options, refusals, spec_option
from jobs.run.logs import JobLog
from jobs.run.reporters import JsonReporter, QuietReporter, Reporter, console_reporter, reserved_stdout
from jobs.run.summary import JobSummary
from pipeline.config import JobSpec


@contextmanager
def _reporting(quiet: bool, as_json: bool) -> Iterator[Reporter]:
    """The reporter the options ask for; on a terminal (stderr), with a live status line. What
    else the job's process prints goes to the job's log file (JobLog)."""
    if quiet and as_json:
        raise click.UsageError("--quiet and --json exclude each other")
    if as_json:
        with reserved_stdout() as stdout, JobLog() as job_log:
            yield JsonReporter(stdout, job_log=job_log)
        return
    with JobLog() as job_log:
        if quiet:
            for handler in logging.getLogger().handlers:  # the console's: the job's log file keeps INFO
                handler.setLevel(logging.ERROR)
            yield QuietReporter(job_log)
        else:
            yield console_reporter(click.echo, job_log.console, job_log)


@click.command()
@click.argument("input_uri", metavar="INPUT")
@click.argument("output_uri", metavar="OUTPUT")
@job_options
@spec_option("--reference", field="reference")
@output_options
def run(input_uri: str, output_uri: str, config: str | None, quiet: bool, as_json: bool, **options: Any) -> None:
    """Upscale INPUT (a video file, a folder, or s3://bucket/prefix/) into OUTPUT.

    Each video is written to OUTPUT under its relative path with a scale suffix
    (a/b.mov -> a/b_x4.mp4); Parquet manifests go to OUTPUT/_pssr/manifest/. With --reference
    (benchmark mode) they also hold psnr, ssim and ewarp against the HR reference videos.
    Exits 1 when any video failed (the manifest says why), 2 on bad usage or when the input
    or the weights cannot be found.
    """
    spec = job_spec(input_uri, output_uri, config, options)
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
        with refusals(), reporter:
            summary = runner(spec, report=reporter, launched=_process_started_at())
        _report(summary, reporter, *([first(summary)] if first else []))


def _process_started_at() -> float | None:
    """The wall time this process started (Linux's /proc), so the job's start-up counts the
    imports; None elsewhere."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    ticks = int(stat.rpartition(")")[2].split()[19])  # field 22, starttime: clock ticks after boot
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def _report(summary: JobSummary, reporter: Reporter, *first: str) -> None:
    """The job's closing lines (after the `first` ones), and its exit status: 1 when any video failed."""
    status = 0 if summary.ok else 1
    totals = (
        f"job {summary.job_id}: {len(summary.videos_ok)} ok, {len(summary.videos_failed)} failed, "
        f"{len(summary.videos_skipped)} already done, {summary.segments_reused} segment(s) reused; "
        f"{summary.frames} frames in {summary.wall_s:.1f} s"
    )
    times = [f"started up in {summary.startup_s:.1f} s"] if summary.startup_s is not None else []
    if summary.first_output_s is not None:
        times.append(f"first chunk after {summary.first_output_s:.1f} s")
    if times:
        totals += f" ({', '.join(times)})"
    outputs = [f"output   {uri}" for uri in summary.outputs.values()]
    outputs += [f"access   {uri}" for uri in summary.access_copies.values()]
    lines = [*first, totals, *outputs, f"manifest {summary.output.rstrip('/')}/_pssr/manifest/"]
    reporter.finished(summary, status, lines)
    sys.exit(status)


@click.command()
@click.argument("src_uri", metavar="SRC")
@click.argument("dst_uri", metavar="DST")
@job_options
@spec_option("--reference", field="reference")
@spec_option("--lease-seconds", field="sync.lease_seconds", type=int)
@spec_option("--max-attempts", field="sync.max_attempts", type=int)
@spec_option("--delete-orphans/--keep-orphans", field="sync.delete_orphans")
@output_options
def sync(src_uri: str, dst_uri: str, config: str | None, quiet: bool, as_json: bool, **options: Any) -> None:
    """Upscale what is new or changed in SRC since the last successful run into DST; for a schedule.

    Takes every option of `pssr run`. Unchanged videos (same ETag, or mtime and size, and same
    settings) are skipped from the listing alone, never downloaded. Each video is leased under
    DST/_pssr/leases/ while it is processed, so runs that overlap split the work: a video leased
    by a live run is skipped, the lease of a run that died is taken over once it expires
    (--lease-seconds after its last renewal). An input version that failed --max-attempts runs
    (default 3) is left alone until it changes. Outputs whose input is gone from SRC are reported
    as orphans, and deleted with --delete-orphans (recorded in the manifest). Exit status as
    `pssr run`.
    """
    spec = job_spec(src_uri, dst_uri, config, options)
    from jobs.run.sync import SyncSummary, run_sync  # imported late, as run_job

    def counts(summary: SyncSummary) -> str:
        return (
            f"sync: {len(summary.videos_new)} new, {len(summary.videos_changed)} changed, "
            f"{len(summary.videos_redone)} redone (settings changed or output gone), "
            f"{len(summary.videos_skipped)} unchanged, {len(summary.videos_leased)} leased by another run, "
            f"{len(summary.videos_done_elsewhere)} done by another run meanwhile, "
            f"{len(summary.leases_taken_over)} expired lease(s) taken over, "
            f"{len(summary.videos_gave_up)} given up (failed {spec.sync.max_attempts} times), "
            f"{len(summary.orphans)} orphan(s) {'deleted' if spec.sync.delete_orphans else 'kept'}"
        )

    _execute(run_sync, spec, quiet, as_json, counts)


@click.command()
@click.argument("input_uri", metavar="INPUT")
@job_options
def plan(input_uri: str, config: str | None, **options: Any) -> None:
    """Print the segment plan of INPUT (probe and scene cuts; no models run)."""
    spec = job_spec(input_uri, "plan-only", config, options)
    from jobs.reports.plan import print_plan

    with refusals():
        all_ok = print_plan(spec, click.echo)
    sys.exit(0 if all_ok else 1)
