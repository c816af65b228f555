from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.manifest.files import read_latest, read_manifests, video_id, write_video_manifest
from pipeline.manifest.video import VIDEO_SCHEMA
from pipeline.segment import SEGMENT_SCHEMA
from pipeline.storage import Storage, join_uri

FINISHED = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


def _video_row(job_id: str, key: str, status: str = "ok") -> dict[str, Any]:
    failed = status == "failed"
    return {
        "job_id": job_id,
        "video_key": key,
        "input_uri": f"s3://in/{key}",
        "input_size": 123_456_789_012,
        "input_version": "9b2cf535f27731c974343645a3985328",
        "output_uri": None if failed else f"s3://out/{key}",
        "access_uri": None,
        "status": status,
        "error": "decode failed: invalid data" if failed else None,
        "attempt": 2 if failed else 1,
        "max_attempts": None,
        "frames_in": 96,
        "frames_out": 0 if failed else 96,
        "duration_in_s": 4.0,
        "duration_out_s": 0.0 if failed else 4.0,
        "width": 64,
        "height": 48,
        "out_width": 256,
        "out_height": 192,
        "scale": 4,
        "codec": "h264",
        "encoder": "libx264",
        "segments": 2,
        "segments_reused": 1,
        "segment_retries": 1 if failed else 0,
        "scenes": 1,
        "audio_streams_copied": 1,
        "audio_streams_retimed": 0,
        "subtitle_streams_copied": 0,
        "flicker": None if failed else 3.2e-4,
        "reference_uri": None if failed else f"s3://hr/{key}",
        "psnr": None if failed else 31.5,
        "ssim": None if failed else 0.91,
        "ewarp": None if failed else 0.0021,
        "config_hash": "c0ffee",
        "segments_flagged": 0 if failed else 2,
        "min_lr_psnr": 38.0,
        "max_tfs": 0.5,
        "max_flicker": 5e-3,
        "max_light_delta": None,
        "pix_fmt": "yuv420p10le",
        "bit_depth": 10,
        "color_primaries": "bt470bg",
        "color_transfer": None,
        "color_matrix": "bt470bg",
        "color_range": "tv",
        "sample_aspect_ratio": "16:15",
        "rotation": 90,
        "field_order": "tff",
        "timecode": "10:00:00:00",
        "timecode_source": "tmcd track",
        "planning": "sharded: 3 ranges",
        "deinterlaced": True,
        "deinterlace_mode": "bwdif=mode=send_frame:parity=auto:deint=interlaced",
        "source_sha256": "ab" * 32,
        "video_sha256": None if failed else "cd" * 32,
        "output_md5": None if failed else "ef" * 16,
        "output_sha256": None if failed else "01" * 32,
        "tool_version": "0.1.0",
        "strong_model": "tiny",
        "strong_sha256": "ef" * 32,
        "light_model": "none",
        "light_sha256": None,
        "wall_s": 12.5,
        "finished_at": FINISHED,
    }


def _segment_row(job_id: str, key: str, index: int, status: str = "ok") -> dict[str, Any]:
    failed = status == "failed"
    return {
        "job_id": job_id,
        "video_key": key,
        "input_uri": f"s3://in/{key}",
        "segment_index": index,
        "segment_count": 2,
        "scene_index": 0,
        "core_start": 48 * index,
        "core_end": 48 * (index + 1),
        "context_start": max(48 * index - 3, 0),
        "context_end": min(48 * (index + 1) + 3, 96),
        "frames": 0 if failed else 48,
        "lr_width": 64,
        "lr_height": 48,
        "hr_width": 256,
        "hr_height": 192,
        "strong_model": "tiny",
        "strong_sha256": "a" * 64,
        "light_model": "tiny",
        "light_sha256": "b" * 64,
        "decode_s": 0.1,
        "strong_s": 1.5,
        "light_s": 0.5,
        "encode_s": 0.2,
        "tfs": None if failed else 0.8,
        "flicker": None if failed else 3.2e-4,
        "lr_psnr": None if failed else 41.2,
        "detail_gain": None if failed else 0.02,
        "light_delta": None if failed else 0.004,
        "psnr": None if failed else 31.5,
        "ssim": None if failed else 0.91,
        "ewarp": None if failed else 0.0021,
        "flag_lr_psnr": False,
        "flag_tfs": not failed,  # tfs 0.8 against the video row's max_tfs 0.5
        "flag_flicker": False,
        "flag_light_delta": False,
        "flagged": not failed,
        "start_s": None if failed else 2.0 * index,
        "end_s": None if failed else 2.0 * index + 1.958,
        "tfs_worst_frame": None if failed else 48 * index + 7,
        "tfs_worst_s": None if failed else 2.0 * index + 0.292,
        "flicker_worst_frame": None if failed else 48 * index + 8,
        "flicker_worst_s": None if failed else 2.0 * index + 0.333,
        "lr_psnr_worst_frame": None if failed else 48 * index + 30,
        "lr_psnr_worst_s": None if failed else 2.0 * index + 1.25,
        "chunk_uri": None if failed else f"s3://out/_pssr/staging/{index}.mp4",
        "encoder": None if failed else "libx264",
        "access_encoder": None,
        "encoded_at": None if failed else dt.datetime(2026, 11, 26, 9, 0, index, tzinfo=dt.timezone.utc),
        "status": status,
        "error": "CUDA out of memory" if failed else None,
        "attempts": 2 if failed else 1,
        "reused": False,
    }


def test_video_id_is_short_and_stable() -> None:
    assert video_id("a/b.mp4") == video_id("a/b.mp4") != video_id("a/c.mp4")
    assert len(video_id("a/b.mp4")) == 16 and int(video_id("a/b.mp4"), 16) >= 0


def test_every_column_is_described() -> None:
    for field in list(VIDEO_SCHEMA) + list(SEGMENT_SCHEMA):
        assert field.metadata and field.metadata[b"description"], field.name


def test_round_trip_through_pyarrow_dataset(storage_root: tuple[Storage, str]) -> None:
    storage, output = storage_root
    ok_segments = [_segment_row("j1", "b/ok.mp4", i) for i in range(2)]
    failed_segments = [_segment_row("j1", "a.mkv", 0), _segment_row("j1", "a.mkv", 1, status="failed")]
    write_video_manifest(storage, output, "j1", _video_row("j1", "b/ok.mp4"), ok_segments)
    write_video_manifest(storage, output, "j1", _video_row("j1", "a.mkv", "failed"), failed_segments)
    write_video_manifest(storage, output, "j2", _video_row("j2", "b/ok.mp4"), [])
    # A retry rewrites the same files rather than adding rows.
    write_video_manifest(storage, output, "j1", _video_row("j1", "b/ok.mp4"), ok_segments)

    videos, segments = read_manifests(storage, output)

    assert videos.schema.equals(VIDEO_SCHEMA, check_metadata=True)
    assert segments.schema.equals(SEGMENT_SCHEMA, check_metadata=True)
    assert videos.to_pylist() == [
        _video_row("j1", "a.mkv", "failed"),
        _video_row("j1", "b/ok.mp4"),
        _video_row("j2", "b/ok.mp4"),
    ]
    assert segments.to_pylist() == failed_segments + ok_segments
    assert storage.list_uris(join_uri(output, "_pssr/manifest")) == sorted(
        join_uri(output, "_pssr/manifest", kind, job, f"{video_id(key)}.parquet")
        for kind in ("segments", "videos")
        for job, key in [("j1", "b/ok.mp4"), ("j1", "a.mkv"), ("j2", "b/ok.mp4")]
    )


def test_the_latest_row_of_each_video_and_its_segments(storage_root: tuple[Storage, str]) -> None:
    """Runs add rows: a video failed by job j1 and redone by j2 stands as j2 left it; one that j2
    skipped (done) stands as j1 left it."""
    storage, output = storage_root
    later = FINISHED + dt.timedelta(hours=1)
    write_video_manifest(storage, output, "j1", _video_row("j1", "a.mkv", "failed"), [_segment_row("j1", "a.mkv", 0)])
    write_video_manifest(storage, output, "j1", _video_row("j1", "b.mp4"), [_segment_row("j1", "b.mp4", 0)])
    redone = [_segment_row("j2", "a.mkv", i) for i in range(2)]
    write_video_manifest(storage, output, "j2", _video_row("j2", "a.mkv") | {"finished_at": later}, redone)

    videos, segments = read_latest(storage, output)

    latest = [(v["job_id"], v["video_key"], v["status"]) for v in videos]
    assert latest == [("j2", "a.mkv", "ok"), ("j1", "b.mp4", "ok")]
    assert segments == redone + [_segment_row("j1", "b.mp4", 0)]


def test_numpy_scalars_are_accepted(storage_root: tuple[Storage, str]) -> None:
    # Rows that went through Ray Data carry numpy scalars.
    storage, output = storage_root
    segment = _segment_row("j", "v.mp4", 0) | {"frames": np.int64(48), "tfs": np.float32(0.5)}
    write_video_manifest(storage, output, "j", _video_row("j", "v.mp4") | {"width": np.int32(64)}, [segment])

    videos, segments = read_manifests(storage, output)

    assert videos.column("width").to_pylist() == [64]
    assert segments.column("frames").to_pylist() == [48] and segments.column("tfs").to_pylist() == [0.5]


def test_nothing_written_yet_gives_empty_tables(storage_root: tuple[Storage, str]) -> None:
    storage, output = storage_root
    videos, segments = read_manifests(storage, output)
    assert videos.num_rows == segments.num_rows == 0
    assert videos.schema.equals(VIDEO_SCHEMA) and segments.schema.equals(SEGMENT_SCHEMA)


@pytest.mark.parametrize(
    ("target", "change", "message"),
    [
        ("video", {"frames_in": None}, "video row: column 'frames_in' must not be null"),
        ("video", {"width": "64"}, "video row: column 'width' expects int32, got str"),
        ("video", {"wall_s": True}, "column 'wall_s' expects double"),
        ("video", {"finished_at": FINISHED.replace(tzinfo=None)}, "column 'finished_at' expects timestamp"),
        ("video", {"input_size": 1.5}, "column 'input_size' expects int64"),
        ("video", {"status": "done"}, "column 'status' must be one of"),
        ("video", {"extra": 1}, "unknown column 'extra'"),
        ("video", {"job_id": "other"}, "column 'job_id'/'video_key' does not match"),
        ("segment", {"segment_index": 2**31}, "segment row 1: column 'segment_index' value 2147483648 is out of"),
        ("segment", {"strong_model": None}, "segment row 1: column 'strong_model' must not be null"),
        ("segment", {"video_key": "other.mp4"}, "segment row 1: column 'job_id'/'video_key' does not match"),
    ],
)
def test_invalid_rows_name_the_column(tmp_path: Path, target: str, change: dict[str, Any], message: str) -> None:
    storage = Storage()
    video = _video_row("j", "v.mp4")
    segments = [_segment_row("j", "v.mp4", 0), _segment_row("j", "v.mp4", 1)]
    if target == "video":
        video |= change
    else:
        segments[1] |= change

    with pytest.raises(ValueError, match=message):
        write_video_manifest(storage, str(tmp_path), "j", video, segments)
    assert storage.list_uris(str(tmp_path)) == []


@pytest.mark.parametrize("column", ["decode_s", "attempts", "finished_at"])
def test_missing_column_is_named(tmp_path: Path, column: str) -> None:
    video, segment = _video_row("j", "v.mp4"), _segment_row("j", "v.mp4", 0)
    (video if column in video else segment).pop(column)
    with pytest.raises(ValueError, match=f"missing column '{column}'"):
        write_video_manifest(Storage(), str(tmp_path), "j", video, [segment])


def test_job_id_must_be_one_path_component(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="job_id"):
        write_video_manifest(Storage(), str(tmp_path), "a/b", _video_row("a/b", "v.mp4"), [])


def test_manifests_from_before_a_column_read_back_with_nulls(storage_root: tuple[Storage, str]) -> None:
    """A manifest written before flicker existed: its rows read back with flicker (and its flag) null."""
    storage, output = storage_root
    newer = {"flicker", "flag_flicker", "flicker_worst_frame", "flicker_worst_s", "max_flicker"}
    rows = {"videos": _video_row("j0", "old.mp4"), "segments": _segment_row("j0", "old.mp4", 0)}
    for kind, schema in (("videos", VIDEO_SCHEMA), ("segments", SEGMENT_SCHEMA)):
        old = pa.schema([f for f in schema if f.name not in newer])
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([rows[kind]], schema=old), buffer)
        storage.write_bytes(join_uri(output, "_pssr/manifest", kind, "j0", "old.parquet"), buffer.getvalue())

    videos, segments = read_latest(storage, output)

    assert videos[0]["flicker"] is None and videos[0]["max_flicker"] is None and videos[0]["max_tfs"] == 0.5
    assert segments[0]["flicker"] is None and segments[0]["flag_flicker"] is None and segments[0]["tfs"] == 0.8
