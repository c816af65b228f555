"""The one exception the media layer raises for unusable or failing media."""

from __future__ import annotations

import av


class MediaError(Exception):
    """A video cannot be read, written or remuxed; the message names the cause.

    Messages do not include the file name: callers know it and prefix it.
    """


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and file-name decoration."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc)
