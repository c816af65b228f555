"""Decode stage (a Ray Data map task): the LR frames of one segment, context included."""

from __future__ import annotations

import numpy as np

from actors.rows import run_stage
from pipeline.host_memory import keep_freed_memory
from pipeline.media import decode_frames
from pipeline.media.decode import frames_per_frame
from pipeline.segment import Row, SegmentRecord
from pipeline.storage import Storage


def decode_segment(row: Row, storage: Storage) -> Row:
    keep_freed_memory()  # this worker process holds the segment's frames (pipeline/host_memory.py)
    segment = SegmentRecord.from_row(row)

    def work(segment: SegmentRecord) -> None:
        # At field rate the segment counts output frames, two per source frame: decode the source
        # frames that hold its fields, then keep its own.
        k = frames_per_frame(segment.deinterlace)
        first, stop = segment.context_start // k, -(-segment.context_end // k)
        with storage.open_read(segment.input_uri) as source:
            frames, pts = decode_frames(
                source,
                first,
                stop,
                segment.seek,
                deep=segment.frames_16bit,
                colour=segment.colour,
                deinterlace=segment.deinterlace,
            )
        own = slice(segment.context_start - first * k, segment.context_end - first * k)
        frames, pts = frames[own], pts[own]
        # The chunk keeps the source's timing; a source without reliable pts is timed by frame
        # index (the probe then reports its time base as 1/frame rate).
        core_pts = pts[segment.core] if segment.seekable else range(segment.core_start, segment.core_end)
        segment.pts = np.asarray(core_pts, dtype=np.int64)
        segment.lr = frames
        segment.lr_height, segment.lr_width = int(frames.shape[1]), int(frames.shape[2])

    run_stage(segment, "decode", work, storage)
    return segment.to_row()
