"""Stitch task (a Ray task per video, once all its chunks are in): join its chunks from staging by
stream copy with the source's audio and subtitles and the output's provenance tags
(pipeline/media/concat.py), written straight to its final key, then its checksum sidecars beside
it. Nothing is copied to local disk: chunks are read one at a time from staging and the output
streams to its store (on S3 a multipart upload), appearing whole or not at all."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager, nullcontext
from fractions import Fraction

from pipeline.media import MediaError, StitchStats, stitch_chunks
from pipeline.media.concat import scan_chunks
from pipeline.media.decode import Source
from pipeline.media.fixity import SIDECARS, checksum_line, file_digests
from pipeline.provenance import Provenance
from pipeline.storage import Storage, is_s3


def stitch_video(
    storage: Storage,
    source_uri: str,
    chunk_uris: list[str],
    output_uri: str,
    container_format: str,
    expected_frames: int,
    sample_aspect_ratio: Fraction | None = None,
    provenance: Provenance | None = None,
    retime_audio: tuple[int, ...] = (),
    sidecars: bool = True,
    timecode: str | None = None,
) -> StitchStats:
    """MediaError (and nothing at `output_uri`) when the stitched video does not hold `expected_frames`.

    With `provenance`, the output carries its tags, the digest of its coded pictures included
    (taken from the chunks: stream copy keeps every picture's bytes). `retime_audio`: the source's
    audio streams whose timestamps the probe found broken (`VideoProbe.audio_retimed`); `timecode`:
    the source's start timecode (`VideoProbe.timecode`), which the output carries. With
    `sidecars`, OUTPUT.md5 and OUTPUT.sha256 follow the output (`md5sum -c` form), digests of the
    output as stored (read back), each written whole; a retried task writes the same bytes again."""

    def open_chunk(uri: str) -> AbstractContextManager[Source]:
        return storage.open_read(uri) if is_s3(uri) else nullcontext(uri)  # local chunks: read in place

    scan = scan_chunks(chunk_uris, open_chunk, digest=provenance is not None)
    metadata = dataclasses.replace(provenance, video_sha256=scan.video_sha256).tags() if provenance else None
    with storage.open_read(source_uri) as source, storage.open_write(output_uri) as out:
        stats = stitch_chunks(
            chunk_uris,
            source,
            out,
            container_format=container_format,
            sample_aspect_ratio=sample_aspect_ratio,
            metadata=metadata,
            retime_audio=retime_audio,
            timecode=timecode,
            open_chunk=open_chunk,
            scan=scan,
        )
        if stats.frames != expected_frames:
            raise MediaError(f"stitched {stats.frames} frames but the source has {expected_frames}")
    with storage.open_read(output_uri) as written:
        digests = file_digests(written)
    if sidecars:
        name = output_uri.rsplit("/", 1)[-1]
        for algorithm in SIDECARS:
            storage.write_bytes(f"{output_uri}.{algorithm}", checksum_line(digests.of(algorithm), name).encode())
    return dataclasses.replace(stats, file=digests)
