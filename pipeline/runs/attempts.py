"""Run markers: how many times each segment was processed, counted from what the stages wrote.

Ray delivers at least once: a worker, actor or node lost mid-job makes it run a stage again for
the same segment (task retries, actor restarts, lineage reconstruction of lost blocks), and a
run whose result was thrown away leaves no trace on the row that arrives. So every stage run
leaves its own small marker next to the segment's chunk in staging, before it starts work, and
the driver counts them when the video finishes (staging is then removed with them).
"""

from __future__ import annotations

import posixpath
import uuid
from collections import Counter

from pipeline.storage import Storage

MARKER_SUFFIX = ".run"


def run_marker_uri(chunk_uri: str, stage: str) -> str:
    """A new marker for one run of `stage` on the segment whose chunk is `chunk_uri`: each run
    gets its own name, so a re-run never overwrites an earlier run's marker."""
    if not stage.isidentifier():
        raise ValueError(f"stage name {stage!r} must be a plain word")
    return f"{chunk_uri}.{stage}.{uuid.uuid4().hex[:16]}{MARKER_SUFFIX}"


def mark_run(storage: Storage, chunk_uri: str, stage: str) -> None:
    storage.write_bytes(run_marker_uri(chunk_uri, stage), b"")


def segment_attempts(storage: Storage, staging_prefix: str) -> dict[str, int]:
    """Chunk file name -> runs of that segment's most-run stage (1: no stage ran twice), from the
    markers under `staging_prefix` (an interrupted earlier run's included: its runs happened)."""
    runs: Counter[tuple[str, str]] = Counter()
    for uri in storage.list_uris(staging_prefix):
        name = posixpath.basename(uri)
        if name.endswith(MARKER_SUFFIX):
            chunk, stage, _run_id = name[: -len(MARKER_SUFFIX)].rsplit(".", 2)
            runs[chunk, stage] += 1
    attempts: dict[str, int] = {}
    for (chunk, _stage), count in runs.items():
        attempts[chunk] = max(attempts.get(chunk, 0), count)
    return attempts
