"""The job's driver: list the inputs, run them through one streaming Ray Data pipeline
(jobs/run/dataset.py: plan -> decode -> strong -> light -> encode), stitch each video as soon as
its last chunk lands (a Ray task), and write its manifest rows.

The driver holds only small records: one per listed video, and the finished segments of the
videos not stitched yet, without frames. Videos enter the pipeline as its planning stage reaches
them, so a video's first segments are upscaled while later videos are still being planned, and
videos are finished (their manifests written) while the rest of the job runs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import ray
from ray.actor import ActorHandle

from actors.plan import video_row
from actors.progress import ProgressBoard
from actors.rows import records_from_batch
from actors.stitch import stitch_video
from jobs.run.dataset import job_dataset, largest_segment_bytes
from jobs.run.progress import Taken
from jobs.run.ray_cluster import connect
from jobs.run.reporters import Reporter
from jobs.run.summary import JobSummary
from pipeline.config import JobSpec
from pipeline.errors import PssrError
from pipeline.manifest.columns import manifest_row
from pipeline.manifest.files import write_video_manifest
from pipeline.manifest.rows import JobFacts, access_record, segment_rows, video_record
from pipeline.media.decode import deinterlace_frames, deinterlace_mode, frames_per_frame
from pipeline.media.fixity import SIDECARS, FileDigests, checksum_line
from pipeline.media.probe import VideoProbe, output_timecode
from pipeline.models import model_info
from pipeline.models.tiling import check_tile
from pipeline.naming import VIDEO_EXTENSIONS, access_uri, fixity_uri, output_key, reference_uri
from pipeline.plan import VideoPlan, segment_records
from pipeline.provenance import TOOL, Provenance, tool_version
from pipeline.runs import index
from pipeline.runs.attempts import segment_attempts
from pipeline.runs.live import clear_live, write_live
from pipeline.runs.resume import video_history
from pipeline.segment import COUNT_NOT_YET_KNOWN, SegmentRecord
from pipeline.storage import ObjectInfo, Storage, is_s3, join_uri, relative_key
from pipeline.video import VideoState

log = logging.getLogger(__name__)

PASSES_TIMEOUT_S = 5.0  # the most a progress tick waits for the board's answer
COLLECT_POLL_S = 0.5  # how long the stitches' thread waits at a time
# The stitch tasks running: each with its video, and whether it makes the access copy (JobSpec.access).
Stitches = dict[ray.ObjectRef, tuple[VideoState, bool]]


# The model stages whose first actor's model must be loaded before the job has started up.
STAGES = ("strong", "light")


class Job:
    def __init__(
        self,
        spec: JobSpec,
        echo: Callable[[str], None] = print,
        report: Reporter | None = None,
        launched: float | None = None,
    ) -> None:
        """`launched`: the wall time (time.time()) the job's process started, for the start-up's
        imports (the CLI's; None when the job is one of many in a process)."""
        self.spec = spec
        self.launched = launched
        self.report = report or Reporter(echo)  # what users see: lines, a status line or JSON (jobs/run/reporters.py)
        self.storage = Storage(**spec.storage.model_dump())
        self.job_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
        models = spec.models
        self.strong = model_info("strong", models.strong, spec.scale, models.weights_dir, models.strong_sha256)
        self.light = model_info("light", models.light, spec.scale, models.weights_dir, models.light_sha256)
        for pool, info in (("strong_pool", self.strong), ("light_pool", self.light)):
            # Here, before any work, rather than when the actors start.
            check_tile(getattr(spec, pool).tile, info.spatial_radius, info.spatial_align, f"{pool}.tile")
        self.config_hash = spec.config_hash({"strong": self.strong.sha256, "light": self.light.sha256})
        self.facts = JobFacts(
            self.job_id,
            spec,
            self.config_hash,
            self.strong.name,
            self.strong.sha256,
            self.light.name,
            self.light.sha256,
        )
        self.summary = JobSummary(job_id=self.job_id, output=spec.output)
        self.fixity: list[tuple[str, FileDigests]] = []  # (output URI, its digests) of each video this run wrote
        self.board: ActorHandle | None = None  # the light stage's progress board, while `run` runs
        self.started = time.monotonic()  # reset when `run` starts: the job's clock (time to first output)
        self.started_wall = time.time()  # the same moment by the wall clock, which the actors' reports use
        self.ray_s: float | None = None  # how long connecting to Ray took
        self._lock = threading.Lock()  # the rows' thread and the stitches' (`_process`) share the video states
        self._startup_lock = threading.Lock()  # the start-up is reported once (`_started_up`)

    def list_videos(self) -> list[VideoState]:
        """The inputs to process; a video an earlier run finished (same input version, same
        settings, output still there) is reported and left out."""
        container = self.spec.encode.container_format
        self.listing = self._inputs(container)
        infos = self.listing[: self.spec.limit]
        self.history = history = video_history(self.storage, self.spec.output)
        finished = history.finished
        # One listing of OUTPUT rather than a HEAD per finished video: cheap on a big bucket.
        containers = [container] + ([self.spec.access.container_format] if self.spec.access else [])
        outputs = {v.uri for v in self.storage.list_videos(self.spec.output, containers)} if finished else set()
        self.outputs = outputs
        states, claimed = [], {}
        reference = self.spec.reference
        for info in infos:
            key = relative_key(self.spec.input, info.uri)
            out = join_uri(self.spec.output, output_key(key, self.spec.scale, container))
            ref = reference_uri(reference, self.spec.input, info.uri) if reference else None
            access = self._access_uri(out)
            done = finished.get(key)
            if (
                done is not None
                and (done.input_version, done.config_hash, done.output_uri) == (info.version, self.config_hash, out)
                # The reference changes no output, only the figures: a video done without them
                # (or against another reference) is redone when they are asked for.
                and ref in (None, done.reference_uri)
                and out in outputs
                and access in (None, *outputs)  # the access copy too, when one is asked for
            ):
                self.summary.videos_skipped.append(key)
                self.report.video_skipped(info.uri, f"done by job {done.job_id}")
                continue
            state = VideoState(
                info=info, key=key, output_uri=out, reference_uri=ref, access_uri=access, last_success=done,
                attempt=history.attempt(key, info.version),
            )  # fmt: skip
            if not is_s3(self.spec.output) and {".", ".."} & set(key.split("/")):
                # An S3 key like "in/../../x.mp4" must not write outside a local OUTPUT.
                state.error = f"input key {key!r} has '.' or '..' parts: it cannot map to a local output path"
            elif out in claimed:
                state.error = f"output key {out} is also the output of {claimed[out]}; rename one of the inputs"
            claimed.setdefault(out, key)
            states.append(state)
        return states

    def run(self) -> JobSummary:
        """Run every listed video through one streaming Dataset (jobs/run/dataset.py): each is
        planned as the pipeline reaches it, and stitched as soon as its last chunk is in."""
        self.started, self.started_wall = time.monotonic(), time.time()
        self.report.job_started(self.job_id, self.spec.input, self.spec.output)
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

        def publish(progress: dict[str, Any]) -> None:
            write_live(self.storage, self.spec.output, self.job_id, {"started_at": started_at, **progress})

        videos = self.list_videos()  # first: an input that cannot be listed is refused with nothing written
        # Running from now on, for `pssr status` and for the manifests' index (pipeline/runs/index.py).
        publish({**asdict(self.report.progress.snapshot()), "videos": []})
        try:
            self.report.listed(len(videos))
            for state in videos:
                if state.error:  # refused by its key: nothing to plan
                    self._finish(state)
            todo = [state for state in videos if not state.error]
            if todo:
                self._check_context()
                connecting = time.monotonic()
                connect(self.spec.ray, verbose=log.isEnabledFor(logging.DEBUG))
                self.ray_s = time.monotonic() - connecting
                self.board = ProgressBoard.remote()
                self.report.follow(self._taken)
                self.report.publish(publish)
                self._process(todo)
        finally:
            self._started_up()  # a job shorter than a progress tick
            self.report.follow(None)
            self.report.publish(None)
            self._ended()
        self.summary.wall_s = time.monotonic() - self.started
        return self.summary

    def _check_context(self) -> None:
        context, radius = self.spec.segment.context_frames, self.strong.temporal_radius
        if context is not None and context < radius:
            log.warning("segment.context_frames %d < the strong model's radius %d: seams may show", context, radius)

    def _write_fixity(self) -> None:
        """The job's checksum lists, OUTPUT/_pssr/fixity/<job_id>.md5 and .sha256: every output this
        run wrote, by its path below OUTPUT (`cd OUTPUT && sha256sum -c _pssr/fixity/<job_id>.sha256`)."""
        for algorithm in SIDECARS:
            lines = [checksum_line(d.of(algorithm), relative_key(self.spec.output, uri)) for uri, d in self.fixity]
            self.storage.write_bytes(fixity_uri(self.spec.output, self.job_id, algorithm), "".join(lines).encode())

    def _ended(self) -> None:
        """The job is over: its checksum lists are written, its progress object (pipeline/runs/live.py)
        goes, and the manifests' index takes in this job's manifests, complete now. None of it is
        worth failing the job for (its outputs and manifests are written)."""
        try:
            if self.spec.sidecars and self.fixity:
                self._write_fixity()
            clear_live(self.storage, self.spec.output, self.job_id)
            index.refresh(self.storage, self.spec.output)
        except (OSError, PssrError, pa.ArrowException) as exc:
            log.warning("ending the job (checksum lists, progress object, manifests' index): %s", exc)

    def _taken(self) -> Taken:
        """The light stage's passes and the videos planned since the last call (actors/progress.py),
        for the reporter's ticks."""
        self._started_up()
        try:
            return ray.get(self.board.take.remote(), timeout=PASSES_TIMEOUT_S)
        except ray.exceptions.RayError as exc:  # a board lost with its node, or busy: the next tick asks again
            log.debug("progress board: %s", _reason(exc))
            return {}, {}

    def _started_up(self) -> None:
        """Report the start-up once every model stage has an actor with its model loaded: from the
        process's start (else the job's), the imports, Ray's start, then the listing and the
        pools' actors loading their models."""
        if self.summary.startup_s is not None or self.board is None or self.ray_s is None:
            return
        try:
            ready = ray.get(self.board.ready_at.remote(), timeout=PASSES_TIMEOUT_S)
        except ray.exceptions.RayError as exc:
            log.debug("progress board: %s", _reason(exc))
            return
        if not set(STAGES) <= ready.keys():
            return
        imports = None if self.launched is None else self.started_wall - self.launched
        pools = max(ready[kind] for kind in STAGES) - self.started_wall - self.ray_s
        # The reporter's ticks (from the pipeline's rows too, which hold the job's lock) and the stitches'
        # thread both ask: a lock of its own.
        with self._startup_lock:
            if self.summary.startup_s is None:
                self.summary.startup_s = (imports or 0.0) + self.ray_s + pools
                self.report.started_up(self.summary.startup_s, imports, self.ray_s, pools)

    def _inputs(self, container: str) -> list[ObjectInfo]:
        """The input videos, without this job's own outputs when OUTPUT lies in INPUT: a folder
        below INPUT is all output; the same folder holds outputs beside their inputs."""
        spec = self.spec
        infos = self.storage.list_videos(spec.input, VIDEO_EXTENSIONS)
        out_root, in_root = join_uri(spec.output) + "/", join_uri(spec.input) + "/"
        if not out_root.startswith(in_root):
            return infos
        if out_root != in_root:
            return [i for i in infos if not i.uri.startswith(out_root)]
        keys = [output_key(relative_key(spec.input, i.uri), spec.scale, container) for i in infos]
        outputs = [join_uri(spec.output, key) for key in keys]
        made = {*outputs, *(self._access_uri(out) for out in outputs)}
        return [i for i in infos if i.uri not in made]

    def _access_uri(self, output_uri: str) -> str | None:
        """Where the access copy of the output at `output_uri` goes; None when none is asked for."""
        access = self.spec.access
        return access_uri(output_uri, access.container_format) if access is not None else None

    def _lease_keeper(self) -> ActorHandle | None:
        """What the planning stage takes each video's lease from: none for `pssr run` (jobs/run/sync.py)."""
        return None

    def _process(self, videos: list[VideoState]) -> None:
        """The videos through the pipeline; each is stitched (or failed) as soon as all its
        segments are back, chunks an interrupted run finished included (pipeline/runs/resume.py).
        The stitches are collected by a thread of their own, so a finished video's manifest does
        not wait for the next row of another video."""
        # Stitching is idempotent (same chunks, same bytes, same key): safe to retry on worker loss.
        stitch = ray.remote(num_cpus=self.spec.ray.task_cpus, max_retries=self.spec.ray.task_retries)(stitch_video)
        by_key = {state.key: state for state in videos}
        pending: Stitches = {}
        rows = [
            video_row(s.key, s.info.uri, s.reference_uri, s.staging(self.spec.output, self.config_hash),
                      s.info.version, s.output_uri)
            for s in videos
        ]  # fmt: skip
        read_all = threading.Event()
        collector = threading.Thread(target=self._collect, args=(pending, read_all), name="stitches", daemon=True)
        collector.start()
        try:
            radius = self.strong.temporal_radius
            budget = largest_segment_bytes(self.storage, [s.info.uri for s in videos], self.spec, radius)
            dataset = job_dataset(rows, self.spec, self.storage, radius, budget, self.board, self._lease_keeper())
            # Block by block as each comes (a block is one segment), without Ray Data's look-ahead: with it,
            # iter_rows holds each block back until the next one exists.
            for batch in dataset.iter_batches(batch_size=None, prefetch_batches=0, batch_format="numpy"):
                with self._lock:
                    for segment in records_from_batch(batch):
                        self._take(by_key[segment.video_key], segment, stitch, pending)
        except Exception as exc:
            # Ray Data gave up on the Dataset: the unfinished videos fail with the reason, and the
            # job exits non-zero.
            log.exception("the pipeline failed")
            failure = f"pipeline: {_reason(exc)}"
            self._fail_unfinished(videos, lambda _: failure)
        self._fail_unfinished(videos, self._lost)
        read_all.set()
        collector.join()

    def _fail_unfinished(self, videos: list[VideoState], reason: Callable[[VideoState], str]) -> None:
        with self._lock:
            for state in videos:
                if state.segments is not None and not state.stitching:
                    state.error = reason(state)
                    self._finish(state)

    @staticmethod
    def _lost(state: VideoState) -> str:
        if state.probe is None:
            return "its planning task failed after all retries (worker or node loss; see the Ray logs)"
        if not state.segment_count:
            return (
                f"its planning task failed after all retries, {len(state.segments or {})} segment(s) into the "
                "video (worker or node loss; see the Ray logs)"
            )
        return (
            f"{state.segment_count - len(state.segments or {})} of {state.segment_count} segment(s) lost: "
            "their tasks failed after all retries (worker or node loss; see the Ray logs)"
        )

    def _take(self, state: VideoState, segment: SegmentRecord, stitch: Any, pending: Stitches) -> None:
        """One row back from the pipeline: a segment, or one standing for its whole video."""
        if state.segments is None or state.stitching:
            return  # a late duplicate (Ray Data delivers at least once): the video is settled
        if segment.segment_count == 0:
            if segment.status == "failed":
                state.error = segment.error or "planning failed"
                state.started = segment.planned_at or state.started
                self._finish(state)
            else:
                state.segments = None
                self._left_to_another_run(state, segment.status, segment.error or "")
            return
        known = segment.segment_count != COUNT_NOT_YET_KNOWN  # the video's last-planned segments: its whole probe
        if state.probe is None:
            state.started = segment.planned_at
        if state.probe is None or known:
            state.probe, state.segment_count = segment.probe, segment.segment_count if known else 0
            self.report.video_planned(state.info.uri, state.probe.n_frames, state.segment_count)
        self._add_segment(state, segment, stitch, pending)

    def _left_to_another_run(self, state: VideoState, status: str, reason: str) -> None:
        """A sync's planning stage found the video leased or done by another run (jobs/run/sync.py)."""
        raise NotImplementedError(f"{state.key}: {status}: {reason}")

    def segment_records(self, state: VideoState, plan: VideoPlan) -> list[SegmentRecord]:
        """The records of a planned video's segments, as the decode stage takes them (the throughput
        benchmark's input for its stages measured alone)."""
        return segment_records(
            plan, self.spec, video_key=state.key, input_uri=state.info.uri,
            reference_uri=state.reference_uri, staging=state.staging(self.spec.output, self.config_hash),
        )  # fmt: skip

    def _add_segment(self, state: VideoState, segment: SegmentRecord, stitch: Any, pending: Stitches) -> None:
        """Take one finished segment; once a video has all of them, stitch it (or fail it)."""
        if segment.segment_index in state.segments:  # a segment delivered twice counts once
            return
        self.report.segment_done(state.info.uri, segment.segment_index, segment.frames, reused=segment.reused)
        if not segment.reused and self.summary.first_output_s is None:
            self.summary.first_output_s = time.monotonic() - self.started
            self.report.first_output(self.summary.first_output_s)
        state.segments[segment.segment_index] = segment
        if not state.segment_count or len(state.segments) < state.segment_count:
            return
        segments = [state.segments[i] for i in sorted(state.segments)]
        failed = [s for s in segments if s.status != "ok"]
        if failed:
            state.error = f"{len(failed)} segment(s) failed; first: {failed[0].error}"
            self._finish(state)
            return
        probe = state.probe
        k = frames_per_frame(self.deinterlacing(probe))  # at field rate, two output frames per source frame
        outputs = [(self.spec.encode, [s.chunk_uri for s in segments], state.output_uri, False)]
        if self.spec.access is not None and state.access_uri is not None:
            container = self.spec.access.container_format
            chunks = [access_uri(s.chunk_uri, container) for s in segments]
            outputs.append((self.spec.access, chunks, state.access_uri, True))
        for encode, chunks, out, is_access in outputs:  # the output and its access copy, stitched side by side
            ref = stitch.remote(
                self.storage, state.info.uri, chunks, out, encode.container_format, probe.n_frames * k,
                probe.sample_aspect_ratio, self.provenance(state), probe.audio_retimed, self.spec.sidecars,
                output_timecode(probe.timecode, k),
            )  # fmt: skip
            pending[ref] = (state, is_access)
        state.stitching = True

    def provenance(self, state: VideoState) -> Provenance:
        """What the output's tags say made it (pipeline/provenance.py)."""
        probe = state.probe
        return Provenance(
            tool=TOOL, tool_version=tool_version(), scale=self.spec.scale,
            strong_model=self.strong.name, strong_sha256=self.strong.sha256,
            light_model=self.light.name, light_sha256=self.light.sha256,
            source_key=state.key, source_uri=state.info.uri, source_sha256=probe.sha256,
            config_hash=self.config_hash,
            deinterlace=deinterlace_mode(self.deinterlacing(probe)),
        )  # fmt: skip

    def deinterlacing(self, probe: VideoProbe) -> str | None:
        """What bwdif does to this video's frames (pipeline/media/decode.py: deinterlace_frames)."""
        return deinterlace_frames(self.spec.deinterlace, probe.interlaced, self.spec.deinterlace_rate)

    def _collect(self, pending: Stitches, read_all: threading.Event) -> None:
        """Finish each video whose stitches are done (its output's, and its access copy's), until every
        row is read and no stitch is left."""
        while True:
            self._started_up()  # here, every COLLECT_POLL_S: a non-terminal reporter ticks only every 30 s
            with self._lock:
                refs = list(pending)
            if not refs:
                if read_all.is_set():
                    return
                read_all.wait(COLLECT_POLL_S)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=COLLECT_POLL_S)
            for ref in done:
                try:
                    stats, error = ray.get(ref), ""
                except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
                    stats, error = None, _reason(exc)
                with self._lock:
                    state, is_access = pending.pop(ref)
                    if error and not state.error:
                        state.error = f"stitch{' (access copy)' if is_access else ''}: {error}"
                    if is_access:
                        state.access_stitch = stats
                    else:
                        state.stitch = stats
                    if not any(other is state for other, _ in pending.values()):
                        self._finish(state)

    def _finish(self, state: VideoState) -> None:
        """Write the video's manifest, clean its staging, and report it."""
        staging = state.staging(self.spec.output, self.config_hash) if state.probe is not None else None
        # Counted last thing before staging goes: every run of this video's segments has left its marker.
        attempts = segment_attempts(self.storage, staging) if staging else {}
        segments = segment_rows(self.facts, state, attempts)
        video = video_record(self.facts, state, segments)
        ok_access = not state.error and state.access_stitch is not None
        access = manifest_row(access_record(self.facts, state, video, segments)) if ok_access else None
        rows = [manifest_row(s) for s in segments]
        write_video_manifest(self.storage, self.spec.output, self.job_id, manifest_row(video), rows, access)
        if staging:
            self.storage.delete_prefix(staging)
        self.summary.segments_reused += state.segments_reused
        state.segments = None  # written to the manifest: the driver keeps no per-segment state
        if state.error:
            self.summary.videos_failed[state.key] = state.error
            log.error("%s: failed: %s", state.info.uri, state.error)
            self.report.video_failed(state.info.uri, state.error)
        else:
            self.summary.videos_ok.append(state.key)
            self.summary.outputs[state.key] = state.output_uri
            self.summary.frames += state.stitch.frames
            for uri, stitched in ((state.output_uri, state.stitch), (state.access_uri, state.access_stitch)):
                if uri is not None and stitched is not None and stitched.file is not None:
                    self.fixity.append((uri, stitched.file))
            if state.access_uri is not None:
                self.summary.access_copies[state.key] = state.access_uri
            self.report.video_ok(state.info.uri, state.output_uri, state.stitch.frames)


def _reason(exc: BaseException) -> str:
    """One line for a manifest: Ray wraps remote errors in their whole traceback, whose last
    line is the original `Type: message`."""
    if isinstance(exc, ray.exceptions.RayError):
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return lines[-1].strip() if lines else type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def run_job(
    spec: JobSpec, echo: Callable[[str], None] = print, report: Reporter | None = None, launched: float | None = None
) -> JobSummary:
    return Job(spec, echo, report, launched).run()
