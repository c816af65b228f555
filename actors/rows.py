"""Segment records across the Ray Data boundary, and per-segment error capture.

Ray Data moves plain rows and numpy batches: each stage turns what it gets into `SegmentRecord`s
(pipeline/segment.py), works on those, and hands plain rows on. Ray Data fails the whole Dataset
on an exception a stage raises, so every stage runs its work through `run_stage`: a failure is
recorded on the segment (`status`, `error`), later stages pass it through, and the driver turns
it into its manifest row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from pipeline.runs.attempts import mark_run
from pipeline.segment import Row, SegmentRecord
from pipeline.storage import Storage

log = logging.getLogger(__name__)


def run_stage(segment: SegmentRecord, stage: str, work: Callable[[SegmentRecord], None], storage: Storage) -> None:
    """Run `work` on a segment to do, recording a failure on it and the seconds it took in its
    `<stage>_s`. Anything else passes through untouched: a segment that failed before, a chunk an
    earlier run finished (`reused`), a row standing for a whole video (pipeline/segment.py).

    Each run first leaves a marker next to the segment's chunk, so the driver can count how
    many times Ray ran the stage (a run cut short by a lost worker or node counts too)."""
    if segment.status != "ok" or segment.reused:
        return
    started = time.perf_counter()
    try:
        mark_run(storage, segment.chunk_uri, stage)
        work(segment)
    except Exception as exc:  # noqa: BLE001 - one segment's failure must not fail the Dataset
        segment.fail(f"{stage} of frames {segment.core_start}-{segment.core_end - 1}: {type(exc).__name__}: {exc}")
        log.warning("%s segment %s: %s", segment.video_key, segment.segment_index, segment.error)
    setattr(segment, f"{stage}_s", time.perf_counter() - started)


def batch_rows(batch: dict[str, np.ndarray]) -> list[Row]:
    names = list(batch)
    count = len(batch[names[0]]) if names else 0
    return [{name: batch[name][i] for name in names} for i in range(count)]


def records_from_batch(batch: dict[str, np.ndarray]) -> list[SegmentRecord]:
    return [SegmentRecord.from_row(row) for row in batch_rows(batch)]


def records_to_batch(segments: list[SegmentRecord]) -> dict[str, np.ndarray]:
    """Columns for Ray Data; frame arrays of different shapes go in object arrays (ragged tensors)."""
    rows: list[Row] = [segment.to_row() for segment in segments]
    batch: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if isinstance(values[0], np.ndarray) and values[0].ndim > 0:
            column = np.empty(len(values), dtype=object)
            for i, value in enumerate(values):  # item by item: slice assignment would broadcast
                column[i] = value
            batch[name] = column
        else:
            batch[name] = np.asarray(values)
    return batch
