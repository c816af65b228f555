"""`pssr bench sync`: what a scheduled sync over a big bucket with nothing new costs.

A moto S3 server on 127.0.0.1 (moto's server mode, the test extra: `pip install -e .[test]`)
holds `keys` input objects and their outputs, and the compact index (pipeline/runs/index.py) of
one earlier job that did them all. The sync's decision (`SyncJob.list_videos`: the listings, the
index, the manifests it does not fold in, the orphans) then runs `repeat` times; the fastest
counts, with the requests it made by operation. Every video must come out as done: nothing to
process, nothing HEADed or read per object.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config

from jobs.bench.errors import BenchError
from jobs.bench.tables import Column, table
from jobs.run.sync import SyncJob
from pipeline.config import load_job_spec
from pipeline.naming import output_key
from pipeline.runs.index import Entry, write_index
from pipeline.storage import Storage, relative_key

FILL_THREADS = 16
SECONDS_TARGET = 10.0  # "a sync over 100k objects with nothing new finishes in seconds"
SYNC_SCHEMA = pa.schema(
    [("keys", pa.int64()), ("seconds", pa.float64()), ("requests", pa.int64()), ("by_operation", pa.string())]
    + [("to_process", pa.int64()), ("skipped", pa.int64())]
)


def _fill(client: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=FILL_THREADS) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"pssr"), keys))


def _decide(spec_fields: dict[str, Any]) -> tuple[float, Counter, SyncJob, int]:
    """One sync's decision, timed, with the S3 requests it made by operation."""
    job = SyncJob(load_job_spec(None, spec_fields), echo=lambda _: None)
    requests: Counter = Counter()
    job.storage.s3.client.meta.events.register("before-call.s3.*", lambda model, **_: requests.update([model.name]))
    started = time.perf_counter()
    todo = job.list_videos()
    return time.perf_counter() - started, requests, job, len(todo)


def bench_sync(out: str, *, keys: int = 10_000, repeat: int = 2, echo: Callable[[str], None] = print) -> bool:
    """Run the benchmark; print and write OUT/sync.parquet and OUT/sync.md; True when it decides in
    under SECONDS_TARGET with nothing to do."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise BenchError("pssr bench sync needs moto's server (pip install -e .[test])") from exc
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto takes any; boto3 must find some
        os.environ.setdefault(name, "bench")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(max_pool_connections=FILL_THREADS)
        )
        client.create_bucket(Bucket="bench")
        src, dst = "s3://bench/in", "s3://bench/out"
        fields = {"input": src, "output": dst, "storage.s3_endpoint_url": endpoint, "models.strong": "bicubic",
                  "models.light": "none"}  # fmt: skip
        names = [f"clips/{i // 1000:03d}/v{i:06d}.mp4" for i in range(keys)]
        echo(f"putting {keys} inputs and {keys} outputs into a moto bucket ...")
        container = load_job_spec(None, fields).encode.container_format
        _fill(client, "bench", [f"in/{n}" for n in names] + [f"out/{output_key(n, 4, container)}" for n in names])
        # The index of one earlier job that did every video (the same settings, so the same config hash).
        job = SyncJob(load_job_spec(None, fields), echo=lambda _: None)
        now = datetime.now(timezone.utc)
        entries = {}
        for info in Storage(s3_endpoint_url=endpoint).list_videos(src, [".mp4"]):
            key = relative_key(src, info.uri)
            done = {"input_uri": info.uri, "input_version": info.version, "config_hash": job.config_hash,
                    "output_uri": f"{dst}/{output_key(key, 4, container)}", "job_id": "earlier", "reference_uri": None}  # fmt: skip
            entries[key] = Entry(done, now)
        write_index(job.storage, dst, entries, {"earlier"})
        runs = [_decide(fields) for _ in range(repeat)]
    finally:
        server.stop()
    seconds, requests, decided, todo = min(runs, key=lambda run: run[0])
    for took, _, _, _ in runs:
        echo(f"  decided in {took:.2f} s")
    row = {
        "keys": keys, "seconds": seconds, "requests": sum(requests.values()),
        "by_operation": ", ".join(f"{name} {count}" for name, count in sorted(requests.items())),
        "to_process": todo, "skipped": len(decided.summary.videos_skipped),
    }  # fmt: skip
    ok = todo == 0 and row["skipped"] == keys and seconds < SECONDS_TARGET
    columns: list[Column] = [("keys", "keys", "d"), ("seconds", "seconds", ".2f"), ("requests", "requests", "d")]
    columns += [("by operation", "by_operation", "s"), ("to process", "to_process", "d"), ("skipped", "skipped", "d")]
    text = table([row], columns)
    verdict = f"nothing to do decided in {seconds:.2f} s (target < {SECONDS_TARGET:g} s): {'met' if ok else 'NOT met'}"
    echo(text + "\n" + verdict)
    pq.write_table(pa.Table.from_pylist([row], SYNC_SCHEMA), root / "sync.parquet")
    (root / "sync.md").write_text(text + "\n\n" + verdict + "\n")
    return ok
