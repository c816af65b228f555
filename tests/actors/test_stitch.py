"""The stitch task over S3 (moto): chunks read from staging one at a time and the output streamed to
its key part by part, never through local disk; lossless, with its sidecars; nothing at the key
when it fails after parts were sent."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from actors.stitch import stitch_video
from pipeline.media import MediaError, decode_frames, encode_chunk, probe_video
from pipeline.storage import Storage
from tests.clips import make_clip

MiB = 1024 * 1024
FRAMES, SIZE = 40, (640, 360)


class NoLocalCopies(Storage):
    """Storage that fails a test which copies an object to or from local disk."""

    def download(self, uri: str, local_path: str) -> None:
        raise AssertionError(f"downloaded {uri} to local disk")

    def upload(self, local_path: str, uri: str, content_type: str | None = None) -> None:
        raise AssertionError(f"uploaded {uri} from local disk")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list[Path]]:
    """A source with audio and noise frames in three FFV1 chunks (incompressible: 30 MB)."""
    d = tmp_path_factory.mktemp("stitch")
    source = make_clip(d / "film.mp4", frames=FRAMES, size=(32, 18), audio_streams=1)
    probe = probe_video(source, detect_scenes=False)
    frames = np.random.default_rng(0).integers(0, 256, (FRAMES, SIZE[1], SIZE[0], 3), dtype=np.uint8)
    chunks = []
    for i, (a, b) in enumerate([(0, 15), (15, 30), (30, FRAMES)]):
        chunks.append(d / f"chunk{i}.mkv")
        encode_chunk(
            frames[a:b], probe.pts[a:b], probe.time_base, str(chunks[-1]), codec="ffv1", crf=20, preset="veryfast",
            pix_fmt=None, container_format="mkv", gop=1, rate=probe.avg_rate, colour=probe.colour,
        )  # fmt: skip
    return source, frames, chunks


def _put(client: Any, bucket: str, path: Path, key: str) -> str:
    client.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


@pytest.fixture
def in_s3(s3_server: str, s3_bucket: str, staged) -> tuple[NoLocalCopies, Any, str, list[str], str]:
    """The source and the chunks in the bucket: a Storage with 5 MiB parts, a plain client, the
    source's URI, the chunks' and the output's."""
    source, _, chunks = staged
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    source_uri = _put(client, s3_bucket, source, "in/film.mp4")
    chunk_uris = [_put(client, s3_bucket, c, f"_pssr/staging/{c.name}") for c in chunks]
    storage = NoLocalCopies(s3_server, "us-east-1", multipart_chunksize=5 * MiB)
    return storage, client, source_uri, chunk_uris, f"s3://{s3_bucket}/out/film_x2.mkv"


def test_a_video_is_stitched_from_s3_to_s3_without_local_copies(s3_bucket: str, staged, in_s3) -> None:
    frames = staged[1]
    storage, client, source_uri, chunk_uris, out = in_s3

    stats = stitch_video(storage, source_uri, chunk_uris, out, "mkv", FRAMES)

    assert stats.frames == FRAMES and stats.audio_streams == 1
    assert stats.duration_s == pytest.approx(FRAMES / 24, abs=1 / 24)
    head = client.head_object(Bucket=s3_bucket, Key="out/film_x2.mkv")
    assert head["ETag"].strip('"').count("-") == 1  # a multipart upload
    stored = storage.read_bytes(out)
    assert stats.file is not None and stats.file.sha256 == hashlib.sha256(stored).hexdigest()
    assert storage.read_bytes(out + ".sha256").decode() == f"{stats.file.sha256}  film_x2.mkv\n"
    with storage.open_read(out) as written:
        assert np.array_equal(decode_frames(written, 0, FRAMES).frames, frames)  # FFV1 of RGB is lossless


def test_a_failed_stitch_leaves_nothing_after_parts_were_sent(s3_bucket: str, in_s3) -> None:
    storage, client, source_uri, chunk_uris, out = in_s3

    with pytest.raises(MediaError, match=f"stitched {FRAMES} frames but the source has {FRAMES + 1}"):
        stitch_video(storage, source_uri, chunk_uris, out, "mkv", FRAMES + 1)

    assert not storage.exists(out) and not storage.exists(out + ".sha256")
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)
