"""Decode stage (CPU task): the LR frames of one segment, context included."""

from __future__ import annotations

from actors.rows import Row, run_stage
from pipeline.media import decode_frames
from pipeline.storage import Storage


def decode_segment(row: Row, storage: Storage) -> Row:
    def work(row: Row) -> None:
        with storage.open_read(row["input_uri"]) as source:
            pts = [int(p) for p in row["decode_pts"]] or None  # empty: no reliable pts to seek by
            frames = decode_frames(source, int(row["context_start"]), int(row["context_end"]), pts)
        row["lr"] = frames
        row["lr_height"], row["lr_width"] = int(frames.shape[1]), int(frames.shape[2])

    return run_stage(row, "decode", work)
