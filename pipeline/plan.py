"""Segment planning: cut a video into overlapping segments that never cross a scene cut.

A segment writes its *core* frames and decodes *context* frames on each side (inside its scene,
clipped at the scene's edges) so every written frame sees the temporal context the strong
model needs: with context >= the model's receptive radius R the stitch is seamless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import BinaryIO

from pipeline.config import LimitsSpec, SegmentSpec
from pipeline.media import VideoProbe, probe_video
from pipeline.storage import Storage


@dataclass(frozen=True)
class Segment:
    index: int
    scene_index: int
    core_start: int  # frame indices, end exclusive
    core_end: int
    context_start: int
    context_end: int

    @property
    def frames(self) -> int:
        return self.core_end - self.core_start

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def scene_ranges(n_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each scene; `cuts` are the first frames of new scenes."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < n_frames), n_frames]
    return [(a, b) for a, b in zip(bounds, bounds[1:])]


def plan_segments(n_frames: int, cuts: list[int], max_core_frames: int, context_frames: int) -> list[Segment]:
    """Split each scene into near-equal segments of at most `max_core_frames` core frames.

    Equal split (rather than N, N, ..., remainder) avoids a tiny last segment whose fixed
    context overhead would dominate its cost.
    """
    if n_frames < 1:
        raise ValueError("a video needs at least one frame to plan")
    if max_core_frames < 1 or context_frames < 0:
        raise ValueError("max_core_frames must be >= 1 and context_frames >= 0")
    segments: list[Segment] = []
    for scene_index, (scene_start, scene_end) in enumerate(scene_ranges(n_frames, cuts)):
        length = scene_end - scene_start
        pieces = -(-length // max_core_frames)
        for piece in range(pieces):
            core_start = scene_start + piece * length // pieces
            core_end = scene_start + (piece + 1) * length // pieces
            segments.append(
                Segment(
                    index=len(segments),
                    scene_index=scene_index,
                    core_start=core_start,
                    core_end=core_end,
                    context_start=max(scene_start, core_start - context_frames),
                    context_end=min(scene_end, core_end + context_frames),
                )
            )
    return segments


@dataclass(frozen=True)
class VideoPlan:
    probe: VideoProbe  # without per-frame pts: a plan stays small whatever the video's length
    segments: list[Segment]
    context_frames: int
    # pts of the first and last decoded frame of each segment, for seeking; None when the
    # source has no reliable pts (then frames are decoded from the start and timed by index).
    seek_pts: list[tuple[int, int]] | None


def plan_video(
    source: str | BinaryIO, spec: SegmentSpec, temporal_radius: int, limits: LimitsSpec | None = None
) -> VideoPlan:
    """Probe a source (one decode pass, scene detection included) and plan its segments.

    Context defaults to the strong model's receptive radius: the least that keeps the stitch seamless.
    A video above `limits` fails (MediaError) on its header, before any frame is decoded.
    """
    probe = probe_video(
        source,
        detect_scenes=spec.detect_scenes,
        scene_threshold=spec.scene_threshold,
        min_scene_frames=spec.min_scene_frames,
        **(limits or LimitsSpec()).model_dump(),
    )
    context = temporal_radius if spec.context_frames is None else spec.context_frames
    segments = plan_segments(probe.n_frames, probe.cuts, spec.max_core_frames, context)
    pts = probe.decode_pts
    seek_pts = [(pts[s.context_start], pts[s.context_end - 1]) for s in segments] if pts else None
    return VideoPlan(replace(probe, pts=[]), segments, context, seek_pts)


def plan_stored_video(
    storage: Storage, uri: str, spec: SegmentSpec, temporal_radius: int, limits: LimitsSpec
) -> tuple[VideoPlan | None, str]:
    """plan_video on a stored object, as a Ray task runs it: a bad input's error is returned,
    never raised, so it fails its own video and not the job. (Here, not in jobs/, so the task's
    worker imports no torch.)"""
    try:
        with storage.open_read(uri) as source:
            return plan_video(source, spec, temporal_radius, limits), ""
    except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
        return None, f"{type(exc).__name__}: {exc}"
