"""`pssr bench bucket`: a bucket of many short clips goes through as one stream, with no drains.

A moto S3 server on 127.0.0.1 (the test extra: `pip install -e .[test]`) holds `clips` copies of
one short synthetic clip. First every stage of the job runs alone on one clip, in this process
(`jobs/bench/throughput/stages.py`: the plan task, decode, both model stages, encode, stitch, one
torch thread): their CPU seconds are one clip's steady work, and `clips` x that over the Ray CPUs
is the ideal. Then the real job runs on a tenth of the bucket and on all of it, each in its own
process with its own Ray cluster (`jobs/bench/memory.py: measure_run`, which also takes every
process's peak RSS). The job's work time (its wall time after its start-up, which it reports on
its own) must be within `WALL_LIMIT` of the ideal, and the driver's peak RSS for 10x the videos
within `RSS_LIMIT`. A drain between batches of videos would show as a gap in the chunks' writing
times (the segments' `encoded_at`): the longest gap is reported beside the median.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.bench.errors import BenchError
from jobs.bench.memory import measure_run, role_of
from jobs.bench.tables import Column, table
from jobs.bench.throughput.settings import STAGES
from jobs.bench.throughput.stages import measure_stages
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.media.synthetic import make_clip
from pipeline.storage import Storage

WALL_LIMIT = 1.3  # the job's work time over clips x one clip's steady work / workers
RSS_LIMIT = 1.2  # the driver's peak RSS, 10x the videos
BUCKET_SCHEMA = pa.schema(
    [("clips", pa.int64()), ("frames", pa.int64()), ("job_s", pa.float64()), ("startup_s", pa.float64())]
    + [("work_s", pa.float64()), ("ideal_s", pa.float64()), ("ratio", pa.float64())]
    + [("longest_gap_s", pa.float64()), ("median_gap_s", pa.float64()), ("driver_mb", pa.float64())]
)


def chunk_gaps(segments: pa.Table) -> tuple[float, float]:
    """The longest and the median time between one chunk's writing and the next's."""
    times = sorted(t.timestamp() for t in segments.column("encoded_at").to_pylist())
    gaps = [b - a for a, b in zip(times, times[1:])] or [0.0]
    return max(gaps), statistics.median(gaps)


def _moto() -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise BenchError("pssr bench bucket needs moto's server (pip install -e .[test])") from exc
    # moto takes any key; boto3, here and in the job's process, must find some.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def bench_bucket(
    out: str,
    *,
    clips: int = 500,
    frames: int = 48,
    width: int = 320,
    height: int = 180,
    scale: int = 2,
    strong: str = "bicubic",
    light: str = "none",
    num_cpus: int | None = None,
    object_store_mb: int = 300,
    config: str | None = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Run the benchmark; print and write OUT/bucket.parquet and OUT/bucket.md; True when both
    targets are met."""
    root = Path(out)
    clip = root / "clips" / f"bucket_{frames}f_{width}x{height}.mp4"
    if not clip.exists():
        clip.parent.mkdir(parents=True, exist_ok=True)
        part = clip.with_suffix(".part.mp4")
        make_clip(part, frames=frames, size=(width, height), audio_streams=1)
        part.rename(clip)
    cpus = num_cpus or os.cpu_count() or 1
    server = _moto()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        body = clip.read_bytes()
        echo(f"putting {clips} clips of {frames} frames ({width}x{height}) into a moto bucket ...")
        for i in range(clips):
            client.put_object(Bucket="bench", Key=f"in/{i // 100:02d}/clip{i:05d}.mp4", Body=body)
        fields = {"scale": scale, "models.strong": strong, "models.light": light, "storage.s3_endpoint_url": endpoint}
        one = {**fields, "input": "s3://bench/in/00/clip00000.mp4", "output": "s3://bench/stages"}
        clocks, _ = measure_stages(load_job_spec(config, one), lambda _: None)
        per_clip = sum(clocks[stage].cpu for stage in STAGES)
        echo(f"one clip's steady work: {per_clip:.2f} CPU s ({', '.join(f'{s} {clocks[s].cpu:.2f}' for s in STAGES)})")
        ray_init = {"num_cpus": cpus, "object_store_memory": object_store_mb * 2**20}
        rows = []
        for count in sorted({max(1, clips // 10), clips}):
            job_fields = {**fields, "input": "s3://bench/in", "output": f"s3://bench/out{count}", "limit": count}
            echo(f"job: {count} clips on {cpus} Ray CPUs ...")
            peaks, driver, summary = measure_run(job_fields, config, ray_init, echo=lambda _: None)
            if not summary["ok"] or summary["frames"] != count * frames:
                raise BenchError(f"the job on {count} clips failed: {summary['failed']}")
            segments = read_manifests(Storage(s3_endpoint_url=endpoint), job_fields["output"])[1]
            longest, median = chunk_gaps(segments)
            work = summary["job_wall_s"] - summary["startup_s"]
            ideal = count * per_clip / cpus
            driver_mb = max(p.peak_bytes for p in peaks if role_of(p, driver) == "driver") / 2**20
            rows.append(
                {"clips": count, "frames": summary["frames"], "job_s": summary["job_wall_s"],
                 "startup_s": summary["startup_s"], "work_s": work, "ideal_s": ideal, "ratio": work / ideal,
                 "longest_gap_s": longest, "median_gap_s": median, "driver_mb": driver_mb}
            )  # fmt: skip
            echo(f"  {work:.1f} s of work after {summary['startup_s']:.1f} s of start-up (ideal {ideal:.1f} s)")
    finally:
        server.stop()
    whole, tenth = rows[-1], rows[0]
    rss_ratio = whole["driver_mb"] / tenth["driver_mb"]
    ok = whole["ratio"] <= WALL_LIMIT and rss_ratio <= RSS_LIMIT
    columns: list[Column] = [("clips", "clips", "d"), ("frames", "frames", "d"), ("job s", "job_s", ".1f")]
    columns += [("start-up s", "startup_s", ".1f"), ("work s", "work_s", ".1f"), ("ideal s", "ideal_s", ".1f")]
    columns += [("work / ideal", "ratio", ".2f"), ("longest gap s", "longest_gap_s", ".2f")]
    columns += [("median gap s", "median_gap_s", ".2f"), ("driver peak MiB", "driver_mb", ".0f")]
    text = table(rows, columns)
    verdict = (
        f"{clips} clips: work {whole['ratio']:.2f}x the ideal (target <= {WALL_LIMIT}); driver peak RSS "
        f"{rss_ratio:.2f}x for {clips // tenth['clips']}x the videos (target <= {RSS_LIMIT}): "
        + ("met" if ok else "NOT met")
    )
    echo(text + "\n" + verdict)
    pq.write_table(pa.Table.from_pylist(rows, BUCKET_SCHEMA), root / "bucket.parquet")
    (root / "bucket.md").write_text(text + "\n\n" + verdict + "\n")
    return ok
