from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Any

import av
import boto3
import numpy as np
import pyarrow.fs as pafs
import pytest

from pipeline.storage import (
    ObjectInfo,
    Storage,
    StorageError,
    is_s3,
    join_uri,
    relative_key,
    to_local_path,
)

MiB = 1024 * 1024
VIDEO_EXTS = [".mp4", "mkv", ".MOV"]


def _noise_video(frames: int = 24, width: int = 64, height: int = 48) -> bytes:
    """A small H.264 MP4 of random frames (moov at the end, so readers must seek)."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def _s3_client(storage: Storage) -> Any:
    return boto3.client("s3", endpoint_url=storage.s3.s3_endpoint_url, region_name="us-east-1")


def _relative(root: str, infos: list[ObjectInfo]) -> list[str]:
    return [relative_key(root, i.uri) for i in infos]


# --- URI helpers -------------------------------------------------------------------------


def test_uri_helpers(tmp_path: Path) -> None:
    assert is_s3("s3://b/k") and not is_s3(str(tmp_path))
    assert to_local_path(f"file://{tmp_path}/a b.mp4") == f"{tmp_path}/a b.mp4"
    assert to_local_path("file:///x/a%20b.mp4") == "/x/a b.mp4"
    assert join_uri("s3://b/out/", "/_pssr/", "m", "x.parquet") == "s3://b/out/_pssr/m/x.parquet"
    assert join_uri(f"file://{tmp_path}", "a/b.mp4") == f"{tmp_path}/a/b.mp4"
    assert relative_key("s3://b/in/", "s3://b/in/a/x.mp4") == "a/x.mp4"
    assert relative_key("s3://b", "s3://b/a/x.mp4") == "a/x.mp4"
    assert relative_key("s3://b/in/x.mp4", "s3://b/in/x.mp4") == "x.mp4"
    assert relative_key(f"file://{tmp_path}", f"{tmp_path}/d/x.mp4") == "d/x.mp4"
    with pytest.raises(ValueError, match="not below"):
        relative_key("s3://b/in", "s3://b/input2/x.mp4")


def test_storage_pickles_without_its_client(s3_storage: Storage, s3_bucket: str) -> None:
    s3_storage.write_bytes(f"s3://{s3_bucket}/k", b"x")  # builds the client
    clone = pickle.loads(pickle.dumps(s3_storage))
    assert clone.read_bytes(f"s3://{s3_bucket}/k") == b"x"


# --- listing -----------------------------------------------------------------------------


def test_list_videos_recurses_filters_and_skips_pipeline_area(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    for rel in ["b.mp4", "a/x.MKV", "a/deep/y.mov", "notes.txt", "_pssr/out.mp4", "a/_pssr/z.mp4", "a/_pssr2.mp4"]:
        storage.write_bytes(join_uri(root, rel), rel.encode())

    videos = storage.list_videos(root, VIDEO_EXTS)

    assert _relative(root, videos) == ["a/_pssr2.mp4", "a/deep/y.mov", "a/x.MKV", "b.mp4"]
    assert [v.size for v in videos] == [len(b"a/_pssr2.mp4"), len(b"a/deep/y.mov"), len(b"a/x.MKV"), len(b"b.mp4")]
    assert all(v.version for v in videos)
    assert storage.list_videos(root + "/", VIDEO_EXTS) == videos


def test_a_prefix_of_many_folders_is_listed_whole_and_once(s3_storage: Storage, s3_bucket: str) -> None:
    """S3 lists a big prefix folder by folder in parallel (more folders than listings at once, and
    folders two and three levels down): every object comes back, once."""
    root = f"s3://{s3_bucket}/many"
    keys = ["top.mp4", "b/x.mp4", *(f"a{i:02d}/v{j}.mp4" for i in range(12) for j in range(3))]
    keys += [f"b/c{i}/deep/v.mp4" for i in range(10)]
    for key in keys:
        s3_storage.write_bytes(f"{root}/{key}", b"x")
    expected = sorted(f"{root}/{key}" for key in keys)
    assert s3_storage.list_uris(root) == expected
    assert [v.uri for v in s3_storage.list_videos(root, VIDEO_EXTS)] == expected


def test_list_videos_single_file_whatever_its_extension(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    uri = join_uri(root, "dir", "clip.ts")
    storage.write_bytes(uri, b"0123")

    [info] = storage.list_videos(uri, VIDEO_EXTS)

    assert info.size == 4 and relative_key(uri, info.uri) == "clip.ts"
    assert info == storage.stat(uri)


def test_open_read_holds_an_object_to_the_version_listed(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    uri = join_uri(root, "clip.mp4")
    storage.write_bytes(uri, b"first")
    [listed] = storage.list_videos(root, VIDEO_EXTS)
    with storage.open_read(uri, listed.version) as reader:
        assert reader.read() == b"first"
    storage.write_bytes(uri, b"second, longer")  # replaced after the listing
    with pytest.raises(StorageError, match=f"{uri}: changed since it was listed \\(now version .*, listed "):
        storage.open_read(uri, listed.version)
    with storage.open_read(uri) as reader:  # without a version: whatever is there now
        assert reader.read() == b"second, longer"
    storage.delete(uri)
    with pytest.raises(StorageError, match="no such"):
        storage.open_read(uri, listed.version)


def test_list_videos_missing_prefix_names_the_uri(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    storage.write_bytes(join_uri(root, "other.mp4"), b"x")
    missing = join_uri(root, "nope")
    with pytest.raises(StorageError, match=f"{missing}.*no such"):
        storage.list_videos(missing, VIDEO_EXTS)


def test_list_videos_missing_bucket_names_the_uri(s3_storage: Storage) -> None:
    with pytest.raises(StorageError, match="s3://pssr-no-such-bucket/in: no such bucket"):
        s3_storage.list_videos("s3://pssr-no-such-bucket/in", VIDEO_EXTS)


def test_list_videos_accepts_file_uris(tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"v")
    [info] = Storage().list_videos(f"file://{tmp_path}", VIDEO_EXTS)
    assert info.uri == str(tmp_path / "v.mp4")


def test_list_uris_and_delete_prefix(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    for rel in ["stage/a", "stage/sub/b", "stage2/c"]:
        storage.write_bytes(join_uri(root, rel), b"x")

    assert storage.list_uris(join_uri(root, "stage")) == [join_uri(root, "stage/a"), join_uri(root, "stage/sub/b")]
    assert storage.list_uris(join_uri(root, "missing")) == []

    storage.delete_prefix(join_uri(root, "stage"))
    storage.delete_prefix(join_uri(root, "missing"))
    assert storage.list_uris(root) == [join_uri(root, "stage2/c")]


# --- single objects ----------------------------------------------------------------------


def test_stat_exists_read_write_delete(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    uri = join_uri(root, "f.bin")
    assert storage.stat(uri) is None and not storage.exists(uri)

    storage.write_bytes(uri, b"first")
    first = storage.stat(uri)
    storage.write_bytes(uri, b"second!")
    second = storage.stat(uri)

    assert storage.read_bytes(uri) == b"second!"
    assert first is not None and second is not None
    assert (first.size, second.size) == (5, 7) and first.version != second.version
    storage.delete(uri)
    storage.delete(uri)  # missing is fine
    assert not storage.exists(uri)
    with pytest.raises(StorageError, match=f"{uri}: "):
        storage.read_bytes(uri)
    with pytest.raises(StorageError, match=f"{uri}: "):
        storage.open_read(uri)


def test_local_write_bytes_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    storage, uri = Storage(), str(tmp_path / "out" / "m.parquet")
    storage.write_bytes(uri, b"old")
    with pytest.raises(TypeError):
        storage.write_bytes(uri, "not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert storage.read_bytes(uri) == b"old"
    assert os.listdir(tmp_path / "out") == ["m.parquet"]


def test_upload_and_download_round_trip(storage_root: tuple[Storage, str], tmp_path: Path) -> None:
    storage, root = storage_root
    source = tmp_path / "src.mp4"
    source.write_bytes(os.urandom(100_000))
    uri = join_uri(root, "up", "v.mp4")

    storage.upload(str(source), uri, content_type="video/mp4")
    storage.upload(str(source), uri)  # overwriting is atomic too
    storage.download(uri, str(tmp_path / "dl" / "v.mp4"))

    assert (tmp_path / "dl" / "v.mp4").read_bytes() == source.read_bytes()
    assert os.listdir(tmp_path / "dl") == ["v.mp4"]
    assert storage.list_uris(join_uri(root, "up")) == [uri]  # no temp file left at the target
    with pytest.raises(StorageError, match="not a file"):
        storage.upload(str(tmp_path / "missing.mp4"), uri)
    with pytest.raises(StorageError, match=join_uri(root, "nope")):
        storage.download(join_uri(root, "nope"), str(tmp_path / "dl" / "nope"))


def test_s3_upload_sets_content_type(s3_storage: Storage, s3_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"video")
    s3_storage.upload(str(tmp_path / "v.mp4"), f"s3://{s3_bucket}/v.mp4", content_type="video/mp4")
    assert _s3_client(s3_storage).head_object(Bucket=s3_bucket, Key="v.mp4")["ContentType"] == "video/mp4"


def test_s3_large_upload_goes_multipart_and_lands_intact(s3_server: str, s3_bucket: str, tmp_path: Path) -> None:
    storage = Storage(s3_server, "us-east-1", multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = os.urandom(12 * MiB)
    (tmp_path / "big.mkv").write_bytes(data)

    storage.upload(str(tmp_path / "big.mkv"), f"s3://{s3_bucket}/big.mkv")

    info = storage.stat(f"s3://{s3_bucket}/big.mkv")
    assert info is not None and info.size == len(data) and info.version.endswith("-3")  # 3 parts
    assert storage.read_bytes(f"s3://{s3_bucket}/big.mkv") == data
    assert "Uploads" not in _s3_client(storage).list_multipart_uploads(Bucket=s3_bucket)


def test_s3_upload_to_missing_bucket_fails_clearly(s3_storage: Storage, tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"v")
    with pytest.raises(StorageError, match="s3://pssr-no-such-bucket/v.mp4: no such bucket"):
        s3_storage.upload(str(tmp_path / "v.mp4"), "s3://pssr-no-such-bucket/v.mp4")


# --- ranged reader -----------------------------------------------------------------------


def test_ranged_reader_matches_plain_reads_at_random_seeks(s3_server: str, s3_bucket: str) -> None:
    storage = Storage(s3_server, "us-east-1", read_block_size=16 * 1024, read_max_blocks=2)
    data = os.urandom(300_001)
    uri = f"s3://{s3_bucket}/r.bin"
    storage.write_bytes(uri, data)
    expected = io.BytesIO(data)
    rng = random.Random(7)

    with storage.open_read(uri) as reader:
        assert reader.seekable() and reader.readable()
        for _ in range(300):
            target = rng.randrange(0, len(data) + 1000)  # sometimes past the end
            whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
            offset = target - {io.SEEK_SET: 0, io.SEEK_CUR: expected.tell(), io.SEEK_END: len(data)}[whence]
            assert reader.seek(offset, whence) == expected.seek(offset, whence) == target
            size = rng.choice([0, 1, 100, 16 * 1024, 50_000])
            assert reader.read(size) == expected.read(size)
            assert reader.tell() == expected.tell()
        reader.seek(123_456)
        assert reader.read() == data[123_456:]
        assert reader.read(10) == b""


def test_ranged_reader_fails_when_the_object_changes(s3_server: str, s3_bucket: str) -> None:
    storage = Storage(s3_server, "us-east-1", read_block_size=16 * 1024, read_max_blocks=1)
    uri = f"s3://{s3_bucket}/v.mp4"
    storage.write_bytes(uri, b"a" * 65_536)

    with storage.open_read(uri) as reader:
        assert reader.read(10) == b"a" * 10
        storage.write_bytes(uri, b"b" * 65_536)
        reader.seek(40_000)
        with pytest.raises(StorageError, match=f"{uri}: object changed since it was opened"):
            reader.read(10)


def test_pyav_reads_a_video_through_open_read(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    if is_s3(root):  # small blocks, so the demuxer's seeks cross many ranged GETs
        storage = Storage(storage.s3.s3_endpoint_url, "us-east-1", read_block_size=8 * 1024, read_max_blocks=2)
    uri = join_uri(root, "noise.mp4")
    storage.write_bytes(uri, _noise_video())

    with storage.open_read(uri) as f, av.open(f, mode="r") as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]

    assert len(frames) == 24 and frames[0].shape == (48, 64, 3)


# --- pyarrow -----------------------------------------------------------------------------


def test_arrow_filesystem_sees_what_storage_wrote(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    storage.write_bytes(join_uri(root, "d", "x.bin"), b"12345")

    filesystem, path = storage.arrow_filesystem(join_uri(root, "d"))

    [info] = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    assert info.size == 5 and info.path.endswith("d/x.bin")


def test_local_writes_get_the_usual_file_mode(tmp_path):
    target = tmp_path / "out" / "v.mp4"
    source = tmp_path / "src.bin"
    source.write_bytes(b"x")
    Storage().upload(str(source), str(target))
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
