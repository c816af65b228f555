"""Stitch task (a Ray task per video, once all its chunks are in): fetch the chunks from staging,
join them by stream copy with the source's audio and subtitles and the output's provenance tags
(pipeline/media/concat.py), and put the result at its final key in one atomic upload, then its
checksum sidecars beside it."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from fractions import Fraction

from pipeline.media import MediaError, StitchStats, stitch_chunks
from pipeline.media.fixity import SIDECARS, checksum_line, file_digests, video_digest
from pipeline.provenance import Provenance
from pipeline.storage import Storage


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
    """MediaError (and no upload) when the stitched video does not hold `expected_frames`.

    With `provenance`, the output carries its tags, the digest of its coded pictures included
    (taken from the chunks: stream copy keeps every picture's bytes). `retime_audio`: the source's
    audio streams whose timestamps the probe found broken (`VideoProbe.audio_retimed`); `timecode`:
    the source's start timecode (`VideoProbe.timecode`), which the output carries. With
    `sidecars`, OUTPUT.md5 and OUTPUT.sha256 follow the output (`md5sum -c` form), each written
    whole; a retried task writes the same bytes again."""
    with tempfile.TemporaryDirectory(prefix="pssr-stitch-") as tmp:
        paths = []
        for i, uri in enumerate(chunk_uris):
            path = os.path.join(tmp, f"chunk_{i:06d}.{container_format}")
            storage.download(uri, path)
            paths.append(path)
        digest = video_digest(*paths) if provenance is not None else None
        metadata = dataclasses.replace(provenance, video_sha256=digest).tags() if provenance is not None else None
        out_path = os.path.join(tmp, f"out.{container_format}")
        with storage.open_read(source_uri) as source:
            stats = stitch_chunks(
                paths,
                source,
                out_path,
                container_format=container_format,
                sample_aspect_ratio=sample_aspect_ratio,
                metadata=metadata,
                retime_audio=retime_audio,
                timecode=timecode,
            )
        if stats.frames != expected_frames:
            raise MediaError(f"stitched {stats.frames} frames but the source has {expected_frames}")
        with open(out_path, "rb") as written:
            digests = file_digests(written)
        # The final key only ever sees a complete file: the upload is atomic (see Storage.upload).
        storage.upload(out_path, output_uri)
    if sidecars:
        name = output_uri.rsplit("/", 1)[-1]
        for algorithm in SIDECARS:
            storage.write_bytes(f"{output_uri}.{algorithm}", checksum_line(digests.of(algorithm), name).encode())
    return dataclasses.replace(stats, video_sha256=digest, file=digests)
