"""A real local Ray cluster shared by the end-to-end tests, and helpers to inspect outputs."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import pytest
import ray


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    # More logical CPUs than cores: the stages reserve fractions and mostly wait on each other.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def video_timeline(path) -> tuple[list[float], int, int]:
    """Presentation times (s) of every decoded frame, and the frame size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
        return sorted(times), stream.codec_context.width, stream.codec_context.height


def audio_durations(path) -> list[float]:
    """Duration (s) of each audio stream: end of its last packet minus start of its first."""
    with av.open(str(path)) as container:
        spans: dict[int, list[float]] = {}
        for packet in container.demux(container.streams.audio):
            if packet.pts is None:
                continue
            tb = Fraction(packet.time_base)
            start, end = float(packet.pts * tb), float((packet.pts + packet.duration) * tb)
            span = spans.setdefault(packet.stream.index, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
        return [end - start for start, end in spans.values()]
