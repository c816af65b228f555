"""`Storage.open_write`: a seekable writer streamed to its store (S3: part by part, against moto),
whole or nothing at its key, with the full-object CRC32 combined from its parts."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.storage import Storage, StorageError
from pipeline.storage.s3_writer import crc32_b64, crc32_combine

MiB = 1024 * 1024


def _client(storage: Storage) -> Any:
    return boto3.client("s3", endpoint_url=storage.s3.s3_endpoint_url, region_name="us-east-1")


@pytest.mark.parametrize(("a", "b"), [(0, 7), (1, 1), (1000, 12345), (5 * MiB, 3), (3, 0)])
def test_crc32_combine_is_the_crc32_of_the_joined_bytes(a: int, b: int) -> None:
    first, second = os.urandom(a), os.urandom(b)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), b) == zlib.crc32(first + second)


def _write_like_a_muxer(out: Any, expected: bytearray) -> None:
    """Writes of uneven sizes front to back, then patches near the start and near the end."""
    sizes = [1, 4096, 700_000, 3 * MiB + 17, 65_536, 5 * MiB + 1, 2 * MiB, 333]
    for size in sizes:
        data = os.urandom(size)
        out.write(data)
        expected.extend(data)
    end = out.tell()
    for where in (4, 5 * MiB - 2, end - 1000):  # the header, across part 1's end, the unsent end
        out.seek(where)
        out.write(b"PATCH")
        expected[where : where + 5] = b"PATCH"
    out.seek(0, io.SEEK_END)
    out.write(b"trailer")
    expected.extend(b"trailer")


def test_a_large_object_goes_up_part_by_part_and_lands_intact(s3_server: str, s3_bucket: str) -> None:
    storage = Storage(s3_server, "us-east-1", multipart_chunksize=5 * MiB)
    uri, expected = f"s3://{s3_bucket}/big.mkv", bytearray()

    with storage.open_write(uri) as out:
        _write_like_a_muxer(out, expected)

    client = _client(storage)
    head = client.head_object(Bucket=s3_bucket, Key="big.mkv", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")  # 16 MiB in parts of 5 MiB, the first sent last
    assert head["ChecksumType"] == "FULL_OBJECT" and head["ChecksumCRC32"] == crc32_b64(zlib.crc32(expected))
    assert storage.read_bytes(uri) == bytes(expected)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


def test_a_small_object_is_one_put(s3_server: str, s3_bucket: str) -> None:
    storage = Storage(s3_server, "us-east-1", multipart_chunksize=5 * MiB)
    with storage.open_write(f"s3://{s3_bucket}/small.mp4") as out:
        out.write(b"x" * 1000)
        out.seek(0)
        out.write(b"head")
    head = _client(storage).head_object(Bucket=s3_bucket, Key="small.mp4")
    assert "-" not in head["ETag"] and storage.read_bytes(f"s3://{s3_bucket}/small.mp4") == b"head" + b"x" * 996


def test_going_back_into_a_sent_part_fails_and_leaves_nothing(s3_server: str, s3_bucket: str) -> None:
    storage = Storage(s3_server, "us-east-1", multipart_chunksize=5 * MiB)
    uri = f"s3://{s3_bucket}/bad.mkv"
    with pytest.raises(StorageError, match=f"{uri}: the writer went back to byte {6 * MiB}"):
        with storage.open_write(uri) as out:
            out.write(os.urandom(12 * MiB))  # part 2 (bytes 5-10 MiB) is sent
            out.seek(6 * MiB)
            out.write(b"late")
    assert not storage.exists(uri)
    assert "Uploads" not in _client(storage).list_multipart_uploads(Bucket=s3_bucket)  # aborted: no billed parts


def test_a_failure_while_writing_leaves_nothing_at_the_key(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    uri = f"{root}/out/video.mkv"
    storage.write_bytes(uri, b"the old object")
    with pytest.raises(RuntimeError, match="muxer failed"):
        with storage.open_write(uri) as out:
            out.write(os.urandom(11 * MiB))
            raise RuntimeError("muxer failed")
    assert storage.read_bytes(uri) == b"the old object"  # untouched: never a partial object
    if not storage_root[1].startswith("s3://"):
        assert os.listdir(Path(uri).parent) == ["video.mkv"]  # no temp file left


def test_local_writes_land_whole(tmp_path: Path) -> None:
    expected = bytearray()
    with Storage().open_write(str(tmp_path / "a" / "v.mkv")) as out:
        _write_like_a_muxer(out, expected)
    assert (tmp_path / "a" / "v.mkv").read_bytes() == bytes(expected)
