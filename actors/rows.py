"""Segment rows as they travel through the Ray Data stages, and per-row error capture.

Ray Data fails the whole Dataset on an exception raised by a stage, so every stage catches
per-segment failures and records them on the row (`status`, `error`); later stages pass
failed rows through untouched and the driver turns them into manifest rows.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.runs.attempts import mark_run
from pipeline.quality.review import unlocated
from pipeline.storage import Storage

log = logging.getLogger(__name__)

Row = dict[str, Any]

# Frame columns are replaced by an empty array on failure, never dropped: Ray Data needs every
# row of a block to carry the same columns.
EMPTY_FRAMES = np.zeros((0, 0, 0, 3), dtype=np.uint8)
FRAME_COLUMNS = ("lr", "hr")
REFERENCE_METRICS = ("psnr", "ssim", "ewarp")  # benchmark mode only: NaN (null) without a reference
PAIR_METRICS = ("flicker", "ewarp")  # means over frame pairs: a video weights its segments by their pairs
METRIC_COLUMNS = ("tfs", "flicker", "lr_psnr", "detail_gain", "light_delta", *REFERENCE_METRICS)
TIMING_COLUMNS = ("decode_s", "strong_s", "light_s", "encode_s")


def new_row_fields() -> Row:
    """Status, timing, metric and frame fields every segment row starts with, so rows keep
    the same columns (and types) whichever stage fails them."""
    return {
        "status": "ok",
        "error": "",
        "encoder": "",  # the FFmpeg encoder that wrote the chunk, once it is written
        "encoded_at": math.nan,  # when it was written (Unix time)
        "lr": EMPTY_FRAMES,
        "hr": EMPTY_FRAMES,
        "pts": np.zeros(0, dtype=np.int64),
        **{name: 0.0 for name in TIMING_COLUMNS},
        **{name: math.nan for name in METRIC_COLUMNS},
        **unlocated(),
    }


def run_stage(row: Row, stage: str, work: Callable[[Row], None], storage: Storage) -> Row:
    """Run `work` on an ok row, timing it into `<stage>_s`; record a failure on the row.

    Each run first leaves a marker next to the segment's chunk, so the driver can count how
    many times Ray ran the stage (a run cut short by a lost worker or node counts too)."""
    if row["status"] != "ok":
        return row
    started = time.perf_counter()
    try:
        mark_run(storage, row["chunk_uri"], stage)
        work(row)
    except Exception as exc:  # noqa: BLE001 - one segment's failure must not fail the Dataset
        row["status"] = "failed"
        row["error"] = f"{stage} of frames {row['core_start']}-{row['core_end'] - 1}: {type(exc).__name__}: {exc}"
        for name in FRAME_COLUMNS:
            row[name] = EMPTY_FRAMES
        log.warning("%s segment %s: %s", row["video_key"], row["segment_index"], row["error"])
    row[f"{stage}_s"] = time.perf_counter() - started
    return row


def batch_to_rows(batch: dict[str, np.ndarray]) -> list[Row]:
    names = list(batch)
    count = len(batch[names[0]]) if names else 0
    return [{name: batch[name][i] for name in names} for i in range(count)]


def rows_to_batch(rows: list[Row]) -> dict[str, np.ndarray]:
    """Columns for Ray Data; frame arrays of different shapes go in object arrays (ragged tensors)."""
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
