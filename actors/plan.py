"""Planning stage, the head of the job's Ray Data pipeline (a task per video): probe a
stored video, plan its segments, and hand them on as rows; chunks an interrupted run finished go
on as they are (pipeline/runs/resume.py), and a sync first takes the video's lease (actors/leases.py).
A long video's probe is shared out: its ranges are scanned by Ray tasks spread over the cluster
(pipeline/media/ranges.py), and the plan is the serial scan's. Its segments go on as the ranges
come in (pipeline/plan.py: plan_video_stream), so the first reach the models within seconds,
whatever the video's length.

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
from pipeline.media import VideoProbe
from pipeline.media.decode import frames_per_frame
from pipeline.media.ranges import FrameRange, RangeScan, RangeScanner, ShardingFailed, scan_range
from pipeline.plan import ReferenceMismatch, VideoPlan, plan_video_stream, segment_records
from pipeline.runs.resume import reusable_chunks, reused
from pipeline.segment import COUNT_NOT_YET_KNOWN, Row, SegmentRecord
from pipeline.storage import Storage, StorageError


def video_row(key: str, input_uri: str, reference_uri: str | None, staging: str, version: str, output_uri: str) -> Row:
    """What the planning stage takes of a video (jobs/run/job.py makes one per listed video)."""
    return {
        "video_key": key, "input_uri": input_uri, "reference_uri": reference_uri or "", "staging": staging,
        "input_version": version, "output_uri": output_uri,
    }  # fmt: skip


def plan_videos(batch: dict[str, np.ndarray], **context: Any) -> Iterator[dict[str, np.ndarray]]:
    """The stage's `map_batches` function (a batch of one video), a generator: its segments in
    batches, each as soon as they are planned, which Ray Data then cuts into a block per segment
    (jobs/run/dataset.py)."""
    (row,) = batch_rows(batch)
    for records in plan_video_segments(row, **context):
        yield records_to_batch(records)


def plan_video_segments(
    row: Row,
    storage: Storage,
    spec: JobSpec,
    temporal_radius: int,
    progress: ActorHandle | None = None,
    leases: ActorHandle | None = None,
) -> Iterator[list[SegmentRecord]]:
    """The video's segments for the decode stage, in batches as they are planned, each segment
    carrying the video's probe. Segments told before the scan ends carry its head and
    COUNT_NOT_YET_KNOWN; the last batch carries the whole probe and the count (the driver takes
    them from there). A video that cannot be planned (or that a sync leaves to another run) gives
    one record standing for it (`SegmentRecord.whole_video`), after any told before; the stages
    pass it through to the driver."""
    key, uri, reference = row["video_key"], row["input_uri"], row["reference_uri"] or None
    started = time.time()
    if leases is not None:
        status, reason = ray.get(leases.claim.remote(key, row["input_version"], row["output_uri"]))
        if status != CLAIMED:
            yield [SegmentRecord.whole_video(key, uri, status, reason)]
            return
    version = row["input_version"]  # as listed: a replaced or deleted input fails its planning
    scanner = range_scanner(storage, uri, spec, version)
    finished = reusable_chunks(storage, row["staging"])
    told: list[VideoPlan] = []
    for plan in plan_stored_video_stream(storage, uri, spec, temporal_radius, reference, scanner, version):
        if isinstance(plan, str):
            yield [_failed(key, uri, plan, started)]
            return
        if progress is not None and not told:  # for the progress line's totals, before any segment is through
            k = frames_per_frame(plan.deinterlace)
            progress.planned.remote(uri, plan.probe.n_frames * k, len(plan.segments) if plan.complete else 0)
        records = segment_records(
            plan, spec, video_key=key, input_uri=uri, reference_uri=reference, staging=row["staging"]
        )
        if plan.complete:
            mismatch = _told_differently(told, plan)
            if mismatch:
                yield [_failed(key, uri, mismatch, started)]
                return
            records = records[sum(len(p.segments) for p in told) :]
        else:
            told.append(plan)
        for i, segment in enumerate(records):
            records[i] = segment = reused(segment, finished.get(segment.segment_index)) or segment
            segment.probe, segment.planned_at = plan.probe, started
            segment.segment_count = len(plan.segments) if plan.complete else COUNT_NOT_YET_KNOWN
        yield records


def _failed(key: str, uri: str, error: str, started: float) -> SegmentRecord:
    failed = SegmentRecord.whole_video(key, uri, "failed", error)
    failed.planned_at = started
    return failed


def _told_differently(told: list[VideoPlan], plan: VideoPlan) -> str:
    """Why the whole plan does not hold the segments told before the scan ended, as they were told
    (a sharded scan that failed part way, redone serially, found other frames than the index); "" when it does."""
    if not told:
        return ""
    segments = [s for p in told for s in p.segments]
    seeks = [s for p in told for s in p.seek_pts or []]
    if (
        plan.segments[: len(segments)] != segments
        or (plan.seek_pts or [])[: len(seeks)] != seeks
        or _record_facts(told[0].probe) != _record_facts(plan.probe)
        or plan.deinterlace != told[0].deinterlace
    ):
        return (
            f"its frames are not those its index lists ({plan.probe.planning}), and its first segments were "
            "planned from the index: set segment.range_frames above its frame count to plan it serially"
        )
    return ""


def _record_facts(probe: VideoProbe) -> tuple[object, ...]:
    """What a segment record takes from its video's probe (pipeline/plan.py: segment_records)."""
    return (
        probe.width, probe.height, probe.time_base, probe.avg_rate, probe.start_s, probe.sample_aspect_ratio,
        probe.colour,
    )  # fmt: skip


@ray.remote
def _scan_stored_range(
    storage: Storage, uri: str, version: str | None, frames: FrameRange, detect_scenes: bool
) -> RangeScan:
    with storage.open_read(uri, version) as source:
        return scan_range(source, frames, detect_scenes)


def range_scanner(storage: Storage, uri: str, spec: JobSpec, version: str | None = None) -> RangeScanner:
    """Scans a video's ranges and gives their findings in order, each as soon as it and those
    before it are in. The first range is the planning task's own (its worker is warm: the video's
    first segments wait for no worker's start), scanned before any other starts, so that they
    compete with nothing; the others are Ray tasks spread over the nodes, at most half as many at
    once as there are task slots free, earliest first (the stages behind planning need CPUs too;
    the planning task waiting on them lends Ray its own). A range that fails,
    however, is ShardingFailed: the probe then scans the video serially, which names a damaged
    file's fault as it always has."""
    options = {"num_cpus": spec.ray.task_cpus, "max_retries": spec.ray.task_retries, "scheduling_strategy": "SPREAD"}
    detect = spec.segment.detect_scenes

    def scan(ranges: list[FrameRange]) -> Iterator[RangeScan]:
        task = _scan_stored_range.options(**options)
        # Half the task slots free now (the pools' actors hold theirs): the stages behind need the rest.
        window = max(1, int(ray.available_resources().get("CPU", 0.0) / spec.ray.task_cpus) // 2)
        in_flight: dict[int, ray.ObjectRef] = {}
        try:
            for index, frames in enumerate(ranges):
                for ahead in range(index, min(index + window, len(ranges))) if index else ():
                    if ahead not in in_flight:
                        in_flight[ahead] = task.remote(storage, uri, version, ranges[ahead], detect)
                try:
                    if index == 0:
                        with storage.open_read(uri, version) as source:
                            found = scan_range(source, frames, detect)
                    else:
                        found = ray.get(in_flight.pop(index))
                except Exception as exc:  # a task's fault, a lost worker, a storage error alike
                    raise ShardingFailed(f"a range failed: {exc}") from exc
                yield found
        finally:  # a failed range, or a caller that stopped reading: the rest is not wanted
            for ref in in_flight.values():
                ray.cancel(ref)

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
    *_, last = plan_stored_video_stream(storage, uri, spec, temporal_radius, reference_uri, scan_ranges, version)
    return (None, last) if isinstance(last, str) else (last, "")


def plan_stored_video_stream(
    storage: Storage,
    uri: str,
    spec: JobSpec,
    temporal_radius: int,
    reference_uri: str | None = None,
    scan_ranges: RangeScanner | None = None,
    version: str | None = None,
) -> Iterator[VideoPlan | str]:
    """plan_video_stream on a stored object, as plan_stored_video: the plans, or after any of them
    the error that fails the video."""
    try:
        with storage.open_read(uri, version) as source, _open_reference(storage, reference_uri) as reference:
            deinterlace = (spec.deinterlace, spec.deinterlace_rate)
            yield from plan_video_stream(
                source, spec.segment, temporal_radius, spec.limits, reference, spec.scale, scan_ranges, deinterlace
            )
    except ReferenceMismatch as exc:
        yield f"reference {reference_uri}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
        yield f"{type(exc).__name__}: {exc}"
