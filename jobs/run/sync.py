"""`pssr sync`: process what is new or changed in a bucket since the last successful run, safe to
start on a schedule while an earlier run is still going.

What is done comes from the manifests (pipeline/runs/resume.py): the listing holds only sizes and
ETags, so unchanged objects are never downloaded or probed. Each video is leased
(pipeline/runs/lease.py, held by actors/leases.py) when the pipeline's planning stage reaches it,
not at the start, so two overlapping runs split the backlog between them: a video leased live by
another run is skipped, an expired lease (its run died) is taken over, and a video another run
finished after this run's listing is not done again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.leases import DONE_ELSEWHERE, LeaseKeeper, finished_outcome
from jobs.run.job import Job
from jobs.run.reporters import Reporter
from jobs.run.summary import JobSummary
from pipeline.config import JobSpec
from pipeline.manifest.files import write_removal
from pipeline.media.fixity import SIDECARS
from pipeline.runs.lease import Leases
from pipeline.storage import join_uri
from pipeline.video import VideoState

log = logging.getLogger(__name__)


@dataclass
class SyncSummary(JobSummary):
    # What the listing found to do, by why (videos_skipped: unchanged since their last success).
    videos_new: list[str] = field(default_factory=list)  # never finished before
    videos_changed: list[str] = field(default_factory=list)  # finished before, from another input version (ETag)
    videos_redone: list[str] = field(default_factory=list)  # same input: the settings changed or the output is gone
    videos_gave_up: list[str] = field(default_factory=list)  # failed sync.max_attempts times at this input version
    orphans: list[str] = field(default_factory=list)  # outputs whose input is gone (deleted with --delete-orphans)
    # What another run was doing with them.
    videos_leased: list[str] = field(default_factory=list)  # live lease of another run: skipped
    videos_done_elsewhere: list[str] = field(default_factory=list)  # finished by another run after our listing
    leases_taken_over: list[str] = field(default_factory=list)  # expired leases of runs that died


class SyncJob(Job):
    def __init__(self, spec: JobSpec, *args: Any, **kwargs: Any) -> None:  # Job's arguments
        super().__init__(spec, *args, **kwargs)
        self.summary = SyncSummary(job_id=self.job_id, output=spec.output)
        self.facts = dataclasses.replace(self.facts, max_attempts=spec.sync.max_attempts)
        self.keeper: ActorHandle | None = None  # the run's leases, while its pipeline runs

    def list_videos(self) -> list[VideoState]:
        videos = [state for state in super().list_videos() if not self._gave_up(state)]
        self._orphans()
        for state in videos:
            last = state.last_success
            if last is None:
                self.summary.videos_new.append(state.key)
            elif last.input_version != state.info.version:
                self.summary.videos_changed.append(state.key)
            else:
                self.summary.videos_redone.append(state.key)
        return videos

    def _gave_up(self, state: VideoState) -> bool:
        """A video whose input version failed `sync.max_attempts` times is left alone (and reported)
        until its input changes: a broken file is not retried at every sync forever."""
        cap = self.spec.sync.max_attempts
        if not cap or state.attempt <= cap:
            return False
        self.summary.videos_gave_up.append(state.key)
        self.report.video_skipped(
            state.info.uri,
            f"gave up after {state.attempt - 1} failed runs of this input version (sync.max_attempts {cap}); "
            "a changed input starts afresh",
        )
        return True

    def _orphans(self) -> None:
        """Outputs whose input is no longer under INPUT: reported, and with sync.delete_orphans
        removed with their sidecars and access copies; the removal gets a video row (status `removed`) in this
        job's manifest, so the record says what went and when."""
        listed = {info.uri for info in self.listing}
        root = join_uri(self.spec.input) + "/"
        for key, done in self.history.finished.items():
            gone = (done.input_uri == join_uri(self.spec.input) or done.input_uri.startswith(root)) and (
                done.input_uri not in listed
            )
            if not gone or done.output_uri not in self.outputs:
                continue
            self.summary.orphans.append(done.output_uri)
            remove = self.spec.sync.delete_orphans
            if remove:
                for output in filter(None, (done.output_uri, done.access_uri)):  # an access copy goes with its output
                    for uri in (output, *(f"{output}.{a}" for a in SIDECARS)):
                        self.storage.delete(uri)
                write_removal(self.storage, self.spec.output, self.job_id, key, done.job_id)
            action = "removed" if remove else "kept (--delete-orphans removes it)"
            self.report.event(
                "orphan", f"orphan {done.output_uri}: its input {done.input_uri} is gone; {action}",
                output=done.output_uri, input=done.input_uri, removed=remove,
            )  # fmt: skip

    def run(self) -> SyncSummary:
        Leases(self.storage, self.spec.output, owner=self.job_id, seconds=self.spec.sync.lease_seconds).check_store()
        try:
            super().run()
        finally:
            self._close_keeper()
        return self.summary

    def _lease_keeper(self) -> ActorHandle:
        # On the driver's node: the leases live as long as the run that holds them.
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        spec = self.spec
        self.keeper = LeaseKeeper.options(scheduling_strategy=here).remote(
            self.storage, spec.output, self.job_id, spec.sync.lease_seconds, self.config_hash
        )
        return self.keeper

    def _close_keeper(self) -> None:
        """Normally nothing is left to release; after an error, the videos left unfinished are free
        at once for the next run. The leases taken over are reported here."""
        if self.keeper is None:
            return
        try:
            taken_over = ray.get(self.keeper.close.remote())
        except ray.exceptions.RayError as exc:  # lost with the driver's node: its leases expire on their own
            log.warning("closing the leases: %s", exc)
            return
        for key, previous in taken_over:
            self.summary.leases_taken_over.append(key)
            line = f"take   {key}: the lease of job {previous} had expired (that run stopped)"
            self.report.event("lease_taken_over", line, video=key, previous_job=previous)

    def _left_to_another_run(self, state: VideoState, status: str, reason: str) -> None:
        (self.summary.videos_done_elsewhere if status == DONE_ELSEWHERE else self.summary.videos_leased).append(
            state.key
        )
        self.report.video_skipped(state.info.uri, reason)

    def _finish(self, state: VideoState) -> None:
        super()._finish(state)  # the manifest first: a released lease means the outcome is recorded
        if self.keeper is not None:
            outcome = finished_outcome(state.info.version, self.config_hash, state.output_uri, ok=not state.error)
            ray.get(self.keeper.release.remote(state.key, outcome))


def run_sync(
    spec: JobSpec, echo: Callable[[str], None] = print, report: Reporter | None = None, launched: float | None = None
) -> SyncSummary:
    return SyncJob(spec, echo, report, launched).run()
