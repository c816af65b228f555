"""Stitch one video: fetch its chunks from staging, remux them with the source's audio and
subtitles, and put the result at its final key in one atomic upload."""

from __future__ import annotations

import os
import tempfile

from pipeline.media import MediaError, StitchStats, stitch_chunks
from pipeline.storage import Storage


def stitch_video(
    storage: Storage,
    source_uri: str,
    chunk_uris: list[str],
    output_uri: str,
    container_format: str,
    expected_frames: int,
) -> StitchStats:
    """MediaError (and no upload) when the stitched video does not hold `expected_frames`."""
    with tempfile.TemporaryDirectory(prefix="pssr-stitch-") as tmp:
        paths = []
        for i, uri in enumerate(chunk_uris):
            path = os.path.join(tmp, f"chunk_{i:06d}.{container_format}")
            storage.download(uri, path)
            paths.append(path)
        out_path = os.path.join(tmp, f"out.{container_format}")
        with storage.open_read(source_uri) as source:
            stats = stitch_chunks(paths, source, out_path, container_format=container_format)
        if stats.frames != expected_frames:
            raise MediaError(f"stitched {stats.frames} frames but the source has {expected_frames}")
        # The final key only ever sees a complete file: the upload is atomic (see Storage.upload).
        storage.upload(out_path, output_uri)
    return stats
