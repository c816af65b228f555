"""Planning stage, the head of the job's Ray Data pipeline (a task per video): probe a
stored video, plan its segments, and hand them on as rows; chunks an interrupted run finished go
on as they are (pipeline/runs/resume.py), and a sync first takes the video's lease (actors/leases.py).
A long video's probe is shared out: its ranges are scanned by Ray tasks spread over the cluster
(pipeline/media/ranges.py), and the plan is the serial scan's.

Here, with the other things Ray runs, and importing no torch: the task's worker stays light.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np
import ray
from ray.actor import ActorHandle

from actors.leases import CLAIMED
from actors.rows import batch_rows, records_to_batch
from pipeline.config import JobSpec
from pipeline.media.ranges import FrameRange, RangeScan, RangeScanner, ShardingFailed, scan_range
from pipeline.plan import ReferenceMismatch, VideoPlan, plan_video, segment_records
from pipeline.runs.resume import reusable_chunks, reused
from pipeline.segment import Row, SegmentRecord
from pipeline.storage import Storage, StorageError


def video_row(key: str, input_uri: str, reference_uri: str | None, staging: str, version: str, output_uri: str) -> Row:
    """What the planning stage takes of a video (jobs/run/job.py makes one per listed video)."""
    return {
        "video_key": key, "input_uri": input_uri, "reference_uri": reference_uri or "", "staging": staging,
        "input_version": version, "output_uri": output_uri,
    }  # fmt: skip


def plan_videos(batch: dict[str, np.ndarray], **context: Any) -> dict[str, np.ndarray]:
    """The stage's `map_batches` function (a batch of one video): its segments as one batch, which
    Ray Data then cuts into a block per segment (jobs/run/dataset.py)."""
    (row,) = batch_rows(batch)
    return records_to_batch(list(plan_video_segments(row, **context)))


def plan_video_segments(
    row: Row,
    storage: Storage,
    spec: JobSpec,
    temporal_radius: int,
    progress: ActorHandle | None = None,
    leases: ActorHandle | None = None,
) -> Iterator[SegmentRecord]:
    """The video's segments for the decode stage, each carrying the video's probe; a video that
    cannot be planned (or that a sync leaves to another run) gives one record standing for it
    (`SegmentRecord.whole_video`), which the stages pass through to the driver."""
    key, uri, reference = row["video_key"], row["input_uri"], row["reference_uri"] or None
    started = time.time()
    if leases is not None:
        status, reason = ray.get(leases.claim.remote(key, row["input_version"], row["output_uri"]))
        if status != CLAIMED:
            yield SegmentRecord.whole_video(key, uri, status, reason)
            return
    version = row["input_version"]  # as listed: a replaced or deleted input fails its planning
    scanner = range_scanner(storage, uri, spec, version)
    plan, error = plan_stored_video(storage, uri, spec, temporal_radius, reference, scanner, version)
    if plan is None:
        failed = SegmentRecord.whole_video(key, uri, "failed", error)
        failed.planned_at = started
        yield failed
        return
    segments = segment_records(
        plan, spec, video_key=key, input_uri=uri, reference_uri=reference, staging=row["staging"]
    )
    if progress is not None:  # for the progress line's totals, before any segment is through
        progress.planned.remote(uri, sum(s.frames for s in segments), len(segments))
    finished = reusable_chunks(storage, row["staging"])
    for segment in segments:
        segment = reused(segment, finished.get(segment.segment_index)) or segment
        segment.probe, segment.planned_at = plan.probe, started
        yield segment


@ray.remote
def _scan_stored_range(
    storage: Storage, uri: str, version: str | None, frames: FrameRange, detect_scenes: bool
) -> RangeScan:
    with storage.open_read(uri, version) as source:
        return scan_range(source, frames, detect_scenes)


def range_scanner(storage: Storage, uri: str, spec: JobSpec, version: str | None = None) -> RangeScanner:
    """Scans a video's ranges as Ray tasks spread over the nodes (the planning task waiting on them
    lends Ray its CPU meanwhile); a range that fails, however, is ShardingFailed: the probe then
    scans the video serially, which names a damaged file's fault as it always has."""
    options = {"num_cpus": spec.ray.task_cpus, "max_retries": spec.ray.task_retries, "scheduling_strategy": "SPREAD"}

    def scan(ranges: list[FrameRange]) -> list[RangeScan]:
        task = _scan_stored_range.options(**options)
        refs = [task.remote(storage, uri, version, frames, spec.segment.detect_scenes) for frames in ranges]
        try:
            return ray.get(refs)
        except Exception as exc:  # a task's fault, a lost worker, a storage error alike
            for ref in refs:
                ray.cancel(ref)
            raise ShardingFailed(f"a range failed: {exc}") from exc

    return scan


@contextmanager
def _open_reference(storage: Storage, uri: str | None) -> Iterator[BinaryIO | None]:
    if uri is None:
        yield None
        return
    try:
        reader = storage.open_read(uri)
    except StorageError as exc:
        raise ReferenceMismatch(f"cannot open it: {exc}") from exc
    with reader:
        yield reader


def plan_stored_video(
    storage: Storage,
    uri: str,
    spec: JobSpec,
    temporal_radius: int,
    reference_uri: str | None = None,
    scan_ranges: RangeScanner | None = None,
    version: str | None = None,
) -> tuple[VideoPlan | None, str]:
    """plan_video on a stored object (and its stored HR reference, if any): a bad input's or
    reference's error is returned, never raised, so it fails its own video and not the job. With
    `version`, an object that is no longer the version listed fails too (Storage.open_read)."""
    try:
        with storage.open_read(uri, version) as source, _open_reference(storage, reference_uri) as reference:
            deinterlace = (spec.deinterlace, spec.deinterlace_rate)
            plan = plan_video(
                source, spec.segment, temporal_radius, spec.limits, reference, spec.scale, scan_ranges, deinterlace
            )
            return plan, ""
    except ReferenceMismatch as exc:
        return None, f"reference {reference_uri}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
        return None, f"{type(exc).__name__}: {exc}"
