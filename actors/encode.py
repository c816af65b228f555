"""Encode stage (CPU task): a segment's core frames become one closed-GOP chunk in staging.

The same segment always writes the same bytes to the same staging key, so a retried or
duplicated delivery (Ray Data is at-least-once) is harmless.
"""

from __future__ import annotations

import os
import tempfile
import time
from fractions import Fraction

from actors.decode import row_colour
from actors.rows import FRAME_COLUMNS, Row, run_stage
from pipeline.config import EncodeSpec
from pipeline.host_memory import keep_freed_memory
from pipeline.media import encode_chunk
from pipeline.runs.resume import chunk_record_uri, record_bytes
from pipeline.storage import Storage


def _fraction(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(int(numerator), int(denominator)) if int(denominator) else None


def encode_segment(row: Row, storage: Storage, encode: EncodeSpec) -> Row:
    keep_freed_memory()  # this worker process holds the segment's frames (pipeline/host_memory.py)

    def work(row: Row) -> None:
        rate = _fraction(row["rate_num"], row["rate_den"])
        with tempfile.TemporaryDirectory(prefix="pssr-chunk-") as tmp:
            path = os.path.join(tmp, f"chunk.{encode.container_format}")
            row["encoder"] = encode_chunk(
                row["hr"],
                [int(p) for p in row["pts"]],
                Fraction(int(row["time_base_num"]), int(row["time_base_den"])),
                path,
                codec=encode.codec,
                crf=encode.crf,
                preset=encode.preset,
                pix_fmt=encode.pix_fmt,
                container_format=encode.container_format,
                gop=encode.gop,
                rate=rate,
                sample_aspect_ratio=_fraction(row["sar_num"], row["sar_den"]),
                colour=row_colour(row),
                hardware=encode.hardware,
            )
            storage.upload(path, row["chunk_uri"])
        row["encoded_at"] = time.time()
        # Last: a chunk with its record is whole, and a resumed run can take both as they are.
        storage.write_bytes(chunk_record_uri(row["chunk_uri"]), record_bytes(row))

    run_stage(row, "encode", work, storage)
    # Frames and timing stop here: only the small row goes on to the driver.
    for name in (*FRAME_COLUMNS, "pts"):
        row.pop(name, None)
    return row
