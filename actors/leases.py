"""Lease keeper (`pssr sync`): the run's leases (pipeline/runs/lease.py) held by one small actor on
the driver's node, so the planning stage (actors/plan.py) takes a video's lease when the pipeline
reaches the video, not when the job lists it, and the driver releases it once the video's manifest
is written. Two overlapping runs thus split a backlog between them as they go.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import ray

from pipeline.runs.lease import Leases
from pipeline.storage import Storage

# The statuses of `claim`; a video not "claimed" goes on as a row standing for it (pipeline/segment.py).
CLAIMED, LEASED, DONE_ELSEWHERE = "claimed", "leased", "done elsewhere"


def finished_outcome(input_version: str, config_hash: str, output_uri: str, ok: bool = True) -> dict[str, str]:
    """What a released lease records of a run's outcome; a later run compares it with its own."""
    status = "ok" if ok else "failed"
    return {"status": status, "input_version": input_version, "config_hash": config_hash, "output_uri": output_uri}


@ray.remote(num_cpus=0, max_restarts=0)
class LeaseKeeper:
    def __init__(self, storage: Storage, output_root: str, owner: str, seconds: float, config_hash: str) -> None:
        self.storage, self.config_hash = storage, config_hash
        self.leases = Leases(storage, output_root, owner=owner, seconds=seconds)
        self._renewal = ExitStack()
        self._renewal.enter_context(self.leases.renewing())
        self.taken_over: list[tuple[str, str]] = []  # (video key, the job whose expired lease was taken over)

    def claim(self, video_key: str, input_version: str, output_uri: str) -> tuple[str, str]:
        """(CLAIMED, "") when this run now holds the video's lease; else the status and the reason
        to skip it: another run holds it live, or finished this input version with these settings
        after this run's listing (and its output is there: one deleted since is made again)."""
        claim = self.leases.acquire(video_key)
        holder = claim.previous
        if not claim.acquired:
            by = f"job {holder.owner} on {holder.host}, {holder.left_s:.0f} s left" if holder else "another run"
            return LEASED, f"leased by {by}"
        done = finished_outcome(input_version, self.config_hash, output_uri)
        if holder is not None and holder.outcome == done and self.storage.exists(output_uri):
            self.leases.release(video_key, holder.outcome)  # as that run left it
            return DONE_ELSEWHERE, f"done by job {holder.owner} since this run's listing"
        if holder is not None and not holder.released and holder.owner != self.leases.owner:
            self.taken_over.append((video_key, holder.owner))
        return CLAIMED, ""

    def release(self, video_key: str, outcome: dict[str, Any] | None) -> None:
        self.leases.release(video_key, outcome)

    def close(self) -> list[tuple[str, str]]:
        """Stop renewing and release what is still held (after an error: free at once for the next
        run); the leases this run took over from runs that had stopped."""
        self._renewal.close()
        self.leases.release_all()
        return self.taken_over
