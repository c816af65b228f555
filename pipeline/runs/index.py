"""A compact index of the video manifests: the latest state of each video key, so a run decides
what is done without reading every manifest file ever written.

`OUTPUT/_pssr/index/videos.parquet` holds one row per video key: its latest successful row's
facts (none once removed as an orphan), and the failed runs of the input version that failed
last. Its metadata names the jobs whose manifests it folds in. A run reads the index, lists the
job folders of the manifests (one request per thousand jobs on S3) and reads only those of jobs
the index does not name; a job still running (its progress object, pipeline/runs/live.py, is
there) is read but never written into the index, whose jobs are then complete. Each job rewrites
the index when it ends (one atomic write). Two jobs that end together may each write an index
without the other: the one that lost is then read from its manifests, as before any index, so
the index only ever saves reads; deleting it loses nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.manifest.files import manifest_root, read_video_rows
from pipeline.runs.live import read_live
from pipeline.storage import PIPELINE_AREA, Storage, join_uri

log = logging.getLogger(__name__)

# A job whose progress object has not changed for this long died without ending: its manifests are complete.
DEAD_AFTER = timedelta(hours=1)

_DONE = ("input_uri", "input_version", "config_hash", "output_uri", "job_id", "reference_uri", "access_uri")
INDEX_SCHEMA = pa.schema(
    [pa.field("video_key", pa.string(), nullable=False)]
    + [pa.field(name, pa.string()) for name in _DONE]
    + [
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
        pa.field("failed_version", pa.string()),
        pa.field("failures", pa.int64(), nullable=False),
    ]
)
_JOBS = b"pssr.jobs"  # the index's metadata key: the jobs whose manifests it folds in


@dataclasses.dataclass
class Entry:
    """One video key's state: its latest successful row (None: never, or removed since) and when,
    and the failed runs of the input version that failed last."""

    done: dict[str, Any] | None = None  # the _DONE fields
    finished_at: datetime | None = None
    failed_version: str | None = None
    failures: int = 0


def index_uri(output_root: str) -> str:
    return join_uri(output_root, PIPELINE_AREA, "index", "videos.parquet")


def fold(entries: dict[str, Entry], rows: Iterable[dict[str, Any]]) -> None:
    """Bring `entries` up to date with video rows (any order: a successful or removed row counts
    only when it is the latest seen for its key; every failed row counts once)."""
    for row in sorted(rows, key=lambda r: r["finished_at"]):
        entry = entries.setdefault(row["video_key"], Entry())
        if row["status"] == "failed":
            if row["input_version"] != entry.failed_version:
                entry.failed_version, entry.failures = row["input_version"], 0
            entry.failures += 1
        elif entry.finished_at is None or row["finished_at"] >= entry.finished_at:
            entry.finished_at = row["finished_at"]
            entry.done = {name: row[name] for name in _DONE} if row["status"] == "ok" else None


def read_index(storage: Storage, output_root: str) -> tuple[dict[str, Entry], set[str]]:
    """The index's entries and the jobs it folds in; none when there is no index, or one that cannot
    be read (then every manifest is read, as before any index, and the job's end writes a good one)."""
    uri = index_uri(output_root)
    if not storage.exists(uri):
        return {}, set()
    try:
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
        jobs = set(json.loads((table.schema.metadata or {}).get(_JOBS, b"[]")))
    except (pa.ArrowException, ValueError) as exc:
        log.warning("%s cannot be read (%s): reading every manifest instead", uri, exc)
        return {}, set()
    entries = {
        row["video_key"]: Entry(
            # .get: an index written before a column was added lacks it (null, as in the manifests)
            {name: row.get(name) for name in _DONE} if row["job_id"] is not None else None,
            row["finished_at"],
            row["failed_version"],
            row["failures"],
        )
        for row in table.to_pylist()
    }
    return entries, jobs


def write_index(storage: Storage, output_root: str, entries: dict[str, Entry], jobs: set[str]) -> None:
    rows = [
        {"video_key": key, **(e.done or dict.fromkeys(_DONE)), "finished_at": e.finished_at,
         "failed_version": e.failed_version, "failures": e.failures}
        for key, e in sorted(entries.items())
    ]  # fmt: skip
    schema = INDEX_SCHEMA.with_metadata({_JOBS: json.dumps(sorted(jobs)).encode()})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    storage.write_bytes(index_uri(output_root), sink.getvalue())


def running_jobs(storage: Storage, output_root: str) -> set[str]:
    """Jobs whose progress object says they are running (updated within DEAD_AFTER)."""
    now = datetime.now(timezone.utc)
    return {
        doc["job_id"]
        for doc in read_live(storage, output_root)
        if now - datetime.fromisoformat(doc["updated_at"]) < DEAD_AFTER
    }


def load(storage: Storage, output_root: str) -> tuple[dict[str, Entry], dict[str, Entry], set[str]]:
    """(every video's state now, the state of the finished jobs only, those jobs): the index with the
    manifests of the jobs it does not fold in yet read on top."""
    entries, folded = read_index(storage, output_root)
    jobs = set(storage.list_folders(join_uri(manifest_root(output_root), "videos")))
    running = running_jobs(storage, output_root)
    finished_new = sorted(jobs - folded - running)
    fold(entries, read_video_rows(storage, output_root, finished_new))
    complete = {key: dataclasses.replace(e) for key, e in entries.items()}
    fold(entries, read_video_rows(storage, output_root, sorted((jobs - folded) & running)))
    return entries, complete, folded | set(finished_new)


def refresh(storage: Storage, output_root: str) -> None:
    """Rewrite the index with the manifests of every job that has ended (a job calls it once its own ended)."""
    _, complete, jobs = load(storage, output_root)
    write_index(storage, output_root, complete, jobs)

