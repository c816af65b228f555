"""Progress inside a segment: the light stage (the last model stage) reports the frames it has
passed, pass by pass, to one small actor per job, and the planning stage each video's frames and
segments as soon as it is planned; the driver takes what came in since it last looked
(jobs/run/job.py, jobs/run/progress.py). Each model stage also says when its model is loaded, so
the job can say how long its start-up took.

Reports are cumulative per try of a segment and the board keeps the highest, so a retried
segment (a lost actor, an out-of-memory retry with smaller tiles) restarts from 0 without
counting its frames twice. Reports are fire-and-forget: a lost board costs progress detail,
never a segment.
"""

from __future__ import annotations

from collections.abc import Callable

import ray
from ray.actor import ActorHandle


@ray.remote(num_cpus=0, max_restarts=-1)
class ProgressBoard:
    """Frames past the light stage by (input URI, segment index), and videos planned (input URI ->
    frames, segments), since the driver last took them; when each kind of model stage was first ready."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, int], int] = {}
        self._plans: dict[str, tuple[int, int]] = {}
        self._ready: dict[str, float] = {}

    def ready(self, kind: str, at: float) -> None:
        """An actor of `kind` ("strong", "light") has its model loaded at wall time `at`; the first counts."""
        self._ready.setdefault(kind, at)

    def ready_at(self) -> dict[str, float]:
        return dict(self._ready)

    def passed(self, video: str, segment_index: int, frames: int) -> None:
        key = (video, segment_index)
        self._frames[key] = max(frames, self._frames.get(key, 0))

    def planned(self, video: str, frames: int, segments: int) -> None:
        self._plans[video] = (frames, segments)

    def take(self) -> tuple[dict[tuple[str, int], int], dict[str, tuple[int, int]]]:
        taken = self._frames, self._plans
        self._frames, self._plans = {}, {}
        return taken


def pass_reporter(board: ActorHandle | None, video: str, segment_index: int) -> Callable[[int], None] | None:
    """What a stage calls with the frames it has passed so far (None without a board: the benchmarks' stages)."""
    if board is None:
        return None
    return lambda frames: board.passed.remote(video, segment_index, frames)
