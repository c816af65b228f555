"""Encode stage (a Ray Data map task): a segment's core frames become one closed-GOP chunk in staging.

The same segment always writes the same bytes to the same staging key, so a retried or
duplicated delivery (Ray Data is at-least-once) is harmless.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone

from actors.rows import run_stage
from pipeline.config import EncodeSpec
from pipeline.host_memory import keep_freed_memory
from pipeline.media import encode_chunk
from pipeline.runs.resume import chunk_record, chunk_record_uri
from pipeline.segment import Row, SegmentRecord
from pipeline.storage import Storage


def encode_segment(row: Row, storage: Storage, encode: EncodeSpec) -> Row:
    keep_freed_memory()  # this worker process holds the segment's frames (pipeline/host_memory.py)
    segment = SegmentRecord.from_row(row)

    def work(segment: SegmentRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="pssr-chunk-") as tmp:
            path = os.path.join(tmp, f"chunk.{encode.container_format}")
            segment.encoder = encode_chunk(
                segment.hr,
                [int(p) for p in segment.pts],
                segment.time_base,
                path,
                codec=encode.codec,
                crf=encode.crf,
                preset=encode.preset,
                pix_fmt=encode.pix_fmt,
                container_format=encode.container_format,
                gop=encode.gop,
                rate=segment.rate,
                sample_aspect_ratio=segment.sample_aspect_ratio,
                colour=segment.colour,
                hardware=encode.hardware,
            )
            storage.upload(path, segment.chunk_uri)
        segment.encoded_at = datetime.now(timezone.utc)
        # Last: a chunk with its record is whole, and a resumed run can take both as they are.
        storage.write_bytes(chunk_record_uri(segment.chunk_uri), chunk_record(segment))

    run_stage(segment, "encode", work, storage)
    # Frames and timing stop here: only the small row goes on to the driver.
    return segment.to_row(frames=False)
