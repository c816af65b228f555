"""The one exception the media layer raises for unusable or failing media."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import av

from pipeline.errors import PssrError


class MediaError(PssrError):
    """A video cannot be read, written or remuxed; the message names the cause.

    Messages do not include the file name: callers know it and prefix it.
    """


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and file-name decoration."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc)


@contextmanager
def no_partial_file(path: str | BinaryIO, what: str) -> Iterator[None]:
    """Writing `path`: on any failure the file is removed (a file object is its owner's to
    discard), and an FFmpeg error becomes a MediaError saying what failed."""
    try:
        yield
    except BaseException as exc:
        if isinstance(path, str) and os.path.exists(path):
            os.remove(path)
        if isinstance(exc, av.error.FFmpegError):
            raise MediaError(f"{what} failed: {ffmpeg_reason(exc)}") from exc
        raise
