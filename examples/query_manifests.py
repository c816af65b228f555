"""Query a PS-SR job's manifests with pyarrow: failed videos, segments to review, benchmark figures.

    python examples/query_manifests.py OUTPUT [--s3-endpoint-url URL] [--region REGION]

OUTPUT is what `pssr run` wrote to: a local folder or an s3:// prefix. Only pyarrow is needed (S3 credentials
come from the environment, as for any AWS SDK), so the queries below can be copied into a notebook. The columns
are documented in docs/manifest.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

MANIFESTS = "_pssr/manifest"
FLAGS = {"flag_lr_psnr": "lr_psnr", "flag_tfs": "tfs", "flag_flicker": "flicker", "flag_light_delta": "light_delta"}


def manifest_tables(output: str, endpoint_url: str | None, region: str) -> tuple[pa.Table, pa.Table] | None:
    """(video rows, segment rows) of every job that wrote to OUTPUT; None when it holds no manifests."""
    if output.startswith("s3://"):
        options = {"region": region}
        if endpoint_url:  # pyarrow takes host:port and the scheme apart
            endpoint = urlsplit(endpoint_url)
            options |= {"endpoint_override": endpoint.netloc, "scheme": endpoint.scheme or "https"}
        filesystem, root = pafs.S3FileSystem(**options), output.removeprefix("s3://").rstrip("/")
    else:
        filesystem, root = pafs.LocalFileSystem(), os.path.abspath(output)
    tables = []
    for kind in ("videos", "segments"):
        path = f"{root}/{MANIFESTS}/{kind}"
        if filesystem.get_file_info(path).type != pafs.FileType.Directory:
            return None
        dataset = ds.dataset(path, format="parquet", filesystem=filesystem)
        # Manifests of older versions may lack newer columns: read every file with the union of their columns.
        schema = pa.unify_schemas([fragment.physical_schema for fragment in dataset.get_fragments()])
        tables.append(dataset.replace_schema(schema).to_table())
    return tables[0], tables[1]


def latest_rows(videos: pa.Table, segments: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Manifests accumulate, one file per video per run: each video's latest row, and that run's segment rows."""
    last = videos.group_by("video_key").aggregate([("finished_at", "max")])
    videos = videos.join(last, keys=["video_key", "finished_at"], right_keys=["video_key", "finished_at_max"])
    segments = segments.join(videos.select(["job_id", "video_key"]), keys=["job_id", "video_key"])
    return videos.sort_by("video_key"), segments.sort_by([("video_key", "ascending"), ("segment_index", "ascending")])


def timecode(seconds: float) -> str:
    """HH:MM:SS.mmm from the video's first frame, as players count."""
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def report(videos: pa.Table, segments: pa.Table) -> list[str]:
    failed = videos.filter(pc.equal(videos["status"], "failed"))
    flagged = segments.filter(pc.equal(segments["flagged"], True))
    ok = videos.num_rows - failed.num_rows
    summary = f"{videos.num_rows} video(s), as their latest run left them: {ok} ok, {failed.num_rows} failed"
    lines = [f"{summary}; {flagged.num_rows} segment(s) flagged for review"]
    if failed.num_rows:
        lines.append("failed videos:")
        lines += [f"  {row['video_key']}: {row['error']}  (job {row['job_id']})" for row in failed.to_pylist()]
    if flagged.num_rows:
        lines.append("flagged segments:")
        for row in flagged.to_pylist():
            # .get: a flag newer than the manifests (flag_flicker) is absent from their columns.
            flags = ", ".join(f"{metric} {row[metric]:.4g}" for flag, metric in FLAGS.items() if row.get(flag))
            span = f"{timecode(row['start_s'])}-{timecode(row['end_s'])}"
            frames = f"frames {row['core_start']}-{row['core_end'] - 1}"
            lines.append(f"  {row['video_key']} segment {row['segment_index']}: {span} ({frames}): {flags}")
    measured = videos.filter(pc.is_valid(videos["psnr"]))
    if measured.num_rows:  # benchmark mode: the job had HR references
        lines.append("against the reference (psnr dB, ssim, ewarp):")
        for row in measured.to_pylist():
            ewarp = "n/a" if row["ewarp"] is None else f"{row['ewarp']:.4g}"
            lines.append(f"  {row['video_key']}: {row['psnr']:.2f}  {row['ssim']:.4f}  {ewarp}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the job's OUTPUT: a local folder or s3://bucket/prefix/")
    parser.add_argument("--s3-endpoint-url", help="S3 endpoint (MinIO, moto); default: AWS")
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    )
    args = parser.parse_args(argv)
    tables = manifest_tables(args.output, args.s3_endpoint_url, args.region)
    if tables is None:
        print(f"{args.output}: no manifests under {MANIFESTS}/", file=sys.stderr)
        return 2
    print("\n".join(report(*latest_rows(*tables))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
