"""Encode stage (a Ray Data map task): a segment's core frames become one closed-GOP chunk in staging,
and with an access copy asked for (JobSpec.access), a second chunk beside it in the access copy's
format, from the same frames.

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
from pipeline.naming import access_uri
from pipeline.runs.resume import chunk_record, chunk_record_uri
from pipeline.segment import Row, SegmentRecord
from pipeline.storage import Storage


def encode_segment(row: Row, storage: Storage, encode: EncodeSpec, access: EncodeSpec | None = None) -> Row:
    keep_freed_memory()  # this worker process holds the segment's frames (pipeline/host_memory.py)
    segment = SegmentRecord.from_row(row)

    def write(segment: SegmentRecord, spec: EncodeSpec, uri: str, tmp: str) -> str:
        """Encode the core frames as `spec` asks and upload the chunk to `uri`: the encoder used."""
        path = os.path.join(tmp, f"chunk.{spec.container_format}")
        encoder = encode_chunk(
            segment.hr,
            [int(p) for p in segment.pts],
            segment.time_base,
            path,
            codec=spec.codec,
            crf=spec.crf,
            preset=spec.preset,
            pix_fmt=spec.pix_fmt,
            container_format=spec.container_format,
            gop=spec.gop,
            rate=segment.rate,
            sample_aspect_ratio=segment.sample_aspect_ratio,
            colour=segment.colour,
            hardware=spec.hardware,
        )
        storage.upload(path, uri)
        return encoder

    def work(segment: SegmentRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="pssr-chunk-") as tmp:
            segment.encoder = write(segment, encode, segment.chunk_uri, tmp)
            if access is not None:
                uri = access_uri(segment.chunk_uri, access.container_format)
                segment.access_encoder = write(segment, access, uri, tmp)
        segment.encoded_at = datetime.now(timezone.utc)
        # Last: a chunk with its record is whole (its access chunk too), and a resumed run can take them as they are.
        storage.write_bytes(chunk_record_uri(segment.chunk_uri), chunk_record(segment))

    run_stage(segment, "encode", work, storage)
    # Frames and timing stop here: only the small row goes on to the driver.
    return segment.to_row(frames=False)
