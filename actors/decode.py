"""Decode stage (CPU task): the LR frames of one segment, context included."""

from __future__ import annotations

import numpy as np

from actors.rows import Row, run_stage
from pipeline.media import decode_frames
from pipeline.storage import Storage


def decode_segment(row: Row, storage: Storage) -> Row:
    def work(row: Row) -> None:
        start, stop = int(row["context_start"]), int(row["context_end"])
        seekable = bool(row["seekable"])
        seek = (int(row["seek_first_pts"]), int(row["seek_last_pts"])) if seekable else None
        with storage.open_read(row["input_uri"]) as source:
            frames, pts = decode_frames(source, start, stop, seek)
        core = slice(int(row["core_start"]) - start, int(row["core_end"]) - start)
        # The chunk keeps the source's timing; a source without reliable pts is timed by frame
        # index (the probe then reports its time base as 1/frame rate).
        core_pts = pts[core] if seekable else range(int(row["core_start"]), int(row["core_end"]))
        row["pts"] = np.asarray(core_pts, dtype=np.int64)
        row["lr"] = frames
        row["lr_height"], row["lr_width"] = int(frames.shape[1]), int(frames.shape[2])

    return run_stage(row, "decode", work, storage)
