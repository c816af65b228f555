"""Plan task (a Ray task per video): probe a stored video and plan its segments.

Here, with the other things Ray runs, and importing no torch: the task's worker stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from pipeline.config import LimitsSpec, SegmentSpec
from pipeline.plan import ReferenceMismatch, VideoPlan, plan_video
from pipeline.storage import Storage, StorageError


@contextmanager
def _open_reference(storage: Storage, uri: str | None) -> Iterator[BinaryIO | None]:
    if uri is None:
        yield None
        return
    try:
        reader = storage.open_read(uri)
    except StorageError as exc:
        raise ReferenceMismatch(f"cannot open it: {exc}") from exc
    with reader:
        yield reader


def plan_stored_video(
    storage: Storage,
    uri: str,
    spec: SegmentSpec,
    temporal_radius: int,
    limits: LimitsSpec,
    reference_uri: str | None = None,
    scale: int = 1,
) -> tuple[VideoPlan | None, str]:
    """plan_video on a stored object (and its stored HR reference, if any): a bad input's or
    reference's error is returned, never raised, so it fails its own video and not the job."""
    try:
        with storage.open_read(uri) as source, _open_reference(storage, reference_uri) as reference:
            return plan_video(source, spec, temporal_radius, limits, reference, scale), ""
    except ReferenceMismatch as exc:
        return None, f"reference {reference_uri}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
        return None, f"{type(exc).__name__}: {exc}"
