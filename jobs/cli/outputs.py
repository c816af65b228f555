"""`pssr verify`, `pssr bag`, `pssr status` and `pssr report`: the commands that read what jobs wrote."""

from __future__ import annotations

import sys

import click

from jobs.cli.options import Refused, storage_options


@click.command()
@click.argument("output_uri", metavar="OUTPUT_FILE")
@click.option(
    "--source", "source_uri", help="The original (path or s3:// URI): check that its sha256 is the recorded one."
)
@storage_options
def verify(output_uri: str, source_uri: str | None, s3_endpoint_url: str | None, region: str | None) -> None:
    """Read the provenance PS-SR wrote into OUTPUT_FILE (a path or s3:// URI) and check it.

    Prints the com.pssr.* tags; checks that the video stream holds the pictures PS-SR wrote
    (com.pssr.video_sha256), that the file matches its checksum sidecars (OUTPUT_FILE.md5 and
    .sha256, where present) and, with --source, that the source's sha256 is the recorded one.
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
        checked = ", ".join(["video stream", *(f"{uri.rsplit('/', 1)[-1]}" for uri in result.sidecars)])
        checked += " and source" if source_uri else ""
        click.echo(f"verified: {output_uri} ({checked} match its provenance)")
    sys.exit(0 if result.ok else 1)


@click.command()
@click.argument("output_uri", metavar="OUTPUT")
@click.option("--flagged", is_flag=True, help="Also list the flagged segments: time codes, frames, flags, values.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the tables.")
@storage_options
def status(output_uri: str, flagged: bool, as_json: bool, s3_endpoint_url: str | None, region: str | None) -> None:
    """Where the videos under OUTPUT (a folder or s3:// prefix) stand, from its manifests.

    First the jobs running there, from the progress each rewrites every 30 s: frames, rate, ETA
    and a line per unfinished video. Then one line per video, as its latest manifest row says:
    ok, flagged (ok, with segments past a review threshold) or failed, with frames, duration and
    wall time; then the totals and the errors of failed videos. Exits 0 when no video's latest
    row failed (flagged ones included), 1 when any did, 2 when OUTPUT holds neither manifests nor
    a running job, or cannot be read.
    """
    from jobs.reports.status import job_status, no_manifests_message, print_status, status_json
    from pipeline.storage import Storage, StorageError

    try:
        result = job_status(Storage(s3_endpoint_url=s3_endpoint_url, region=region), output_uri)
    except (StorageError, OSError) as exc:  # OSError: pyarrow's reading of the manifests
        raise Refused(str(exc)) from None
    if not result.videos and not result.running:
        raise Refused(no_manifests_message(output_uri))
    if as_json:
        click.echo(status_json(result, flagged))
    else:
        print_status(result, click.echo, flagged)
    sys.exit(1 if result.any_failed else 0)


@click.command()
@click.argument("output_uri", metavar="OUTPUT")
@click.option(
    "--out", "out_uri", default="report.html", show_default=True, help="Where to write the HTML (path or s3:// URI)."
)
@click.option(
    "--max-crops", type=click.IntRange(min=0), default=12, show_default=True, help="Crop pairs per video, at most."
)
@storage_options
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
            raise Refused(no_manifests_message(output_uri))
        storage.write_bytes(out_uri, html.encode())
    except (StorageError, OSError) as exc:
        raise Refused(str(exc)) from None
    click.echo(f"report {out_uri} ({len(html) // 1024} KiB)")


@click.command()
@click.argument("output_uri", metavar="OUTPUT")
@click.argument("dest_uri", metavar="DEST")
@click.option("--job", "job_id", help="The job whose outputs to bag; default: the latest with checksum lists.")
@storage_options
def bag(output_uri: str, dest_uri: str, job_id: str | None, s3_endpoint_url: str | None, region: str | None) -> None:
    """Copy one job's outputs under OUTPUT into a BagIt bag at DEST (a new folder or s3:// prefix).

    The payload (DEST/data/, the outputs by their paths below OUTPUT) is what the job's checksum
    lists name; each copy must match both its MD5 and its SHA-256 there, which become the bag's
    manifests. Exits 0 with the bag written, 1 when a file no longer matches its checksum (named),
    2 when the lists or a file cannot be read or DEST is not empty.
    """
    from pipeline.bag import BagError, ChangedFile, make_bag  # late, like the other commands' work
    from pipeline.storage import Storage, StorageError

    storage = Storage(s3_endpoint_url=s3_endpoint_url, region=region)
    try:
        made = make_bag(storage, output_uri, dest_uri, job_id)
    except BagError as exc:
        click.echo(f"pssr bag: {exc}", err=True)
        sys.exit(1 if isinstance(exc, ChangedFile) else 2)
    except (StorageError, OSError) as exc:
        click.echo(f"cannot read: {exc}", err=True)
        sys.exit(2)
    click.echo(f"bag {made.uri}: {made.files} file(s), {made.bytes} bytes, the outputs of job {made.job_id}")
