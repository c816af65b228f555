"""The manifest files under the output prefix: where they are, writing them (validated against the
schemas) and reading them back.

Layout (one pair of files per finished video, so an interrupted job keeps what it finished)::

    <output>/_pssr/manifest/segments/<job_id>/<video_id>.parquet
    <output>/_pssr/manifest/videos/<job_id>/<video_id>.parquet
    <output>/_pssr/manifest/access/<job_id>/<video_id>.parquet   (its access copy's row, when one was made)

The schemas are the contract (docs/manifest.md), read off the records the rows come from:
`SEGMENT_SCHEMA` off `pipeline/segment.py: SegmentRecord`, `VIDEO_SCHEMA` off
`pipeline/manifest/video.py: VideoRecord`; each field's ``description`` metadata documents it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import numbers
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.manifest.video import VIDEO_SCHEMA
from pipeline.segment import SEGMENT_SCHEMA
from pipeline.storage import PIPELINE_AREA, Storage, join_uri

STATUSES = ("ok", "failed", "removed")  # removed: an orphan's output, deleted by `pssr sync --delete-orphans`

_INT_RANGES = {pa.int32(): (-(2**31), 2**31 - 1), pa.int64(): (-(2**63), 2**63 - 1)}


def video_id(video_key: str) -> str:
    """Short stable id of an input key, used as the manifest file name."""
    return hashlib.sha1(video_key.encode("utf-8")).hexdigest()[:16]


def manifest_root(output_root: str) -> str:
    return join_uri(output_root, PIPELINE_AREA, "manifest")


def _check_value(where: str, field: pa.Field, value: Any) -> None:
    if value is None:
        if not field.nullable:
            raise ValueError(f"{where}: column '{field.name}' must not be null")
        return
    type_ = field.type
    if pa.types.is_string(type_):
        ok = isinstance(value, str)
    elif pa.types.is_integer(type_):
        # numbers.Integral covers numpy integers (rows may come out of Ray Data); bool is no count.
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if ok and not _INT_RANGES[type_][0] <= int(value) <= _INT_RANGES[type_][1]:
            raise ValueError(f"{where}: column '{field.name}' value {value} is out of range for {type_}")
    elif pa.types.is_floating(type_):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif pa.types.is_boolean(type_):
        ok = isinstance(value, (bool, np.bool_))
    elif pa.types.is_timestamp(type_):
        # A naive datetime would be read as local time somewhere and UTC elsewhere.
        ok = isinstance(value, dt.datetime) and value.tzinfo is not None
    else:
        raise AssertionError(f"no check for {type_}")
    if not ok:
        raise ValueError(f"{where}: column '{field.name}' expects {type_}, got {type(value).__name__} {value!r}")


def _validate(where: str, row: dict[str, Any], schema: pa.Schema) -> None:
    unknown = sorted(set(row) - set(schema.names))
    if unknown:
        raise ValueError(f"{where}: unknown column '{unknown[0]}'")
    for field in schema:
        if field.name not in row:
            raise ValueError(f"{where}: missing column '{field.name}'")
        _check_value(where, field, row[field.name])
    if row["status"] not in STATUSES:
        raise ValueError(f"{where}: column 'status' must be one of {STATUSES}, got {row['status']!r}")


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def write_video_manifest(
    storage: Storage,
    output_root: str,
    job_id: str,
    video_row: dict[str, Any],
    segment_rows: list[dict[str, Any]],
    access_row: dict[str, Any] | None = None,
) -> None:
    """Validate and write one video's manifest files (segments first, its access copy's row, then the
    video row, which says the video is done).

    Re-running the same job rewrites the same files, so delivery twice is harmless.
    """
    if not job_id or "/" in job_id:
        raise ValueError(f"job_id {job_id!r} must be non-empty and contain no '/'")
    _validate("video row", video_row, VIDEO_SCHEMA)
    accessed = [] if access_row is None else [("access row", access_row)]
    for where, row in accessed:
        _validate(where, row, VIDEO_SCHEMA)
    for i, row in enumerate(segment_rows):
        _validate(f"segment row {i}", row, SEGMENT_SCHEMA)
    segments = [(f"segment row {i}", row) for i, row in enumerate(segment_rows)]
    for where, row in [("video row", video_row), *accessed, *segments]:
        if row["job_id"] != job_id or row["video_key"] != video_row["video_key"]:
            raise ValueError(
                f"{where}: column 'job_id'/'video_key' does not match job {job_id!r}, video {video_row['video_key']!r}"
            )
    name = f"{video_id(video_row['video_key'])}.parquet"
    root = manifest_root(output_root)
    storage.write_bytes(join_uri(root, "segments", job_id, name), _parquet_bytes(segment_rows, SEGMENT_SCHEMA))
    if access_row is not None:
        storage.write_bytes(join_uri(root, "access", job_id, name), _parquet_bytes([access_row], VIDEO_SCHEMA))
    storage.write_bytes(join_uri(root, "videos", job_id, name), _parquet_bytes([video_row], VIDEO_SCHEMA))


def write_removal(storage: Storage, output_root: str, job_id: str, video_key: str, finished_by: str) -> None:
    """Record in job `job_id`'s manifest that the output of `video_key`, as job `finished_by` wrote
    it, was deleted now (its input gone): that row again with status `removed` and this job's id and
    time, and no segment rows."""
    name = f"{video_id(video_key)}.parquet"
    table = pq.read_table(io.BytesIO(storage.read_bytes(join_uri(manifest_root(output_root), "videos", finished_by, name))))
    row = {
        **table.to_pylist()[0],
        "job_id": job_id,
        "status": "removed",
        "error": "its input is gone: output deleted by pssr sync --delete-orphans",
        "finished_at": dt.datetime.now(dt.timezone.utc),
    }
    write_video_manifest(storage, output_root, job_id, row, [])


def _read_dataset(storage: Storage, uri: str, schema: pa.Schema, sort_keys: list[str]) -> pa.Table:
    filesystem, path = storage.arrow_filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.Directory:
        return schema.empty_table()
    table = ds.dataset(path, schema=schema, format="parquet", filesystem=filesystem).to_table()
    return table.sort_by([(key, "ascending") for key in sort_keys])


def read_video_manifests(storage: Storage, output_root: str) -> pa.Table:
    """The video rows of all manifests under `output_root`, every job included (half the reads
    of `read_manifests`: what a re-run needs to know what is done)."""
    return _read_dataset(storage, join_uri(manifest_root(output_root), "videos"), VIDEO_SCHEMA, ["job_id", "video_key"])


def read_access_manifests(storage: Storage, output_root: str) -> pa.Table:
    """The access copies' rows of all manifests under `output_root` (the video rows' columns)."""
    return _read_dataset(storage, join_uri(manifest_root(output_root), "access"), VIDEO_SCHEMA, ["job_id", "video_key"])


def read_video_rows(storage: Storage, output_root: str, job_ids: list[str]) -> list[dict[str, Any]]:
    """The video rows of the manifests of these jobs only."""
    root = join_uri(manifest_root(output_root), "videos")
    return [
        row
        for job_id in job_ids
        for row in _read_dataset(storage, join_uri(root, job_id), VIDEO_SCHEMA, ["video_key"]).to_pylist()
    ]


def read_manifests(storage: Storage, output_root: str) -> tuple[pa.Table, pa.Table]:
    """All manifests under `output_root` as (videos, segments), every job included."""
    root = manifest_root(output_root)
    videos = read_video_manifests(storage, output_root)
    segments = _read_dataset(
        storage, join_uri(root, "segments"), SEGMENT_SCHEMA, ["job_id", "video_key", "segment_index"]
    )
    return videos, segments


def read_latest(storage: Storage, output_root: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Where each video stands: its latest video row (of the last job that finished or failed it;
    a run that skipped it as done wrote none), and that job's segment rows of it; both in order of
    video key (and segment index)."""
    videos, segments = read_manifests(storage, output_root)
    latest = {row["video_key"]: row for row in videos.sort_by("finished_at").to_pylist()}
    wanted = {(row["job_id"], row["video_key"]) for row in latest.values()}
    segments = segments.filter(pc.is_in(segments["job_id"], pa.array(sorted({job for job, _ in wanted}), pa.string())))
    rows = [row for row in segments.to_pylist() if (row["job_id"], row["video_key"]) in wanted]
    return [latest[key] for key in sorted(latest)], sorted(rows, key=lambda r: (r["video_key"], r["segment_index"]))
