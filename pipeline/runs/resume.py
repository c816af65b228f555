"""What earlier runs already did, read back from what they wrote: finished videos from the
manifests, finished chunks from staging. Nothing survives a driver's death but these."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipeline.runs import index
from pipeline.segment import SegmentRecord
from pipeline.storage import Storage

# Written next to each chunk once the chunk itself is in place: a chunk with its record is whole.
RECORD_SUFFIX = ".json"
RECORD_FIELDS = ("segment_index", "core_start", "core_end", "decode_s", "strong_s", "light_s",
                 "tfs", "flicker", "lr_psnr", "detail_gain", "light_delta",
                 "reference_uri", "psnr", "ssim", "ewarp",
                 "start_s", "end_s", "tfs_worst_frame", "tfs_worst_s", "flicker_worst_frame", "flicker_worst_s",
                 "lr_psnr_worst_frame", "lr_psnr_worst_s", "encoder", "access_encoder", "encoded_at")  # fmt: skip


@dataclass(frozen=True)
class FinishedVideo:
    input_uri: str
    input_version: str
    config_hash: str
    output_uri: str
    job_id: str
    reference_uri: str | None  # the HR reference its psnr/ssim/ewarp were measured against
    access_uri: str | None = None  # its access copy (JobSpec.access), if one was asked for


@dataclass(frozen=True)
class History:
    """What the manifests under an output root say of earlier runs."""

    finished: dict[str, FinishedVideo]  # the latest successful row of each video key, unless removed since
    failures: dict[tuple[str, str], int]  # (video key, input version that failed last) -> its failed rows

    def attempt(self, key: str, version: str) -> int:
        """This run's attempt at the input version: the failed runs before it, plus one."""
        return self.failures.get((key, version), 0) + 1


def video_history(storage: Storage, output_root: str) -> History:
    """The finished videos and the failures per input version under `output_root`, from the
    manifests (through their compact index, pipeline/runs/index.py)."""
    entries, _, _ = index.load(storage, output_root)
    return History(
        finished={key: FinishedVideo(**e.done) for key, e in entries.items() if e.done is not None},
        failures={(key, e.failed_version): e.failures for key, e in entries.items() if e.failed_version},
    )


def chunk_record_uri(chunk_uri: str) -> str:
    return chunk_uri + RECORD_SUFFIX


def chunk_record(segment: SegmentRecord) -> bytes:
    """What a finished chunk's record keeps of its segment: the frames it holds, and the timings and
    metrics measured on the way (as a row crosses Ray: NaN, -1 or "" where absent)."""
    row = segment.to_row(frames=False)
    return json.dumps({name: row[name] for name in RECORD_FIELDS}).encode()


def reusable_chunks(storage: Storage, staging_prefix: str) -> dict[int, dict]:
    """segment index -> the record of each chunk an earlier run finished under this prefix."""
    records = {}
    for uri in storage.list_uris(staging_prefix):
        if uri.endswith(RECORD_SUFFIX):
            record = json.loads(storage.read_bytes(uri))
            records[int(record["segment_index"])] = record
    return records


def reused(segment: SegmentRecord, record: dict | None) -> SegmentRecord | None:
    """The segment as an earlier run finished it, when `record` is of the same frames and its
    figures were taken against the same reference (or none, both times); else None."""
    row = segment.to_row(frames=False)
    if record is None or (record["core_start"], record["core_end"], record.get("reference_uri", "")) != (
        row["core_start"], row["core_end"], row["reference_uri"]
    ):  # fmt: skip
        return None
    return SegmentRecord.from_row({**row, **record, "reused": True})
