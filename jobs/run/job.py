"""Job assembly on Ray: plan -> decode -> strong pool -> light pool -> encode -> streamed stitch.

The driver holds only small rows. Segments flow through one Ray Data pipeline; as soon as the
last chunk of a video lands, the driver starts that video's stitch task, so videos are
finished (and their manifests written) while the rest of the job is still running.
"""

from __future__ import annotations

import logging
import math
import posixpath
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import ray

from actors.decode import decode_segment, deinterlace_frames, deinterlace_mode, frame_fields
from actors.encode import encode_segment
from actors.fused import FusedStage
from actors.light import LightStage
from actors.rows import PAIR_METRICS, REFERENCE_METRICS, Row, new_row_fields
from actors.strong import StrongStage
from jobs.run.progress import Reporter
from jobs.run.ray_cluster import connect
from pipeline.manifest import files as manifest
from pipeline.runs.attempts import segment_attempts
from pipeline.config import JobSpec, PoolSpec
from pipeline.media import DEFAULT_PIX_FMT, Colour, StitchStats, VideoProbe, bit_depth, encoded_size
from pipeline.media.encode import deep_frames, written_colour
from pipeline.models import model_info
from pipeline.naming import VIDEO_EXTENSIONS, chunk_uri, output_key, reference_uri, staging_prefix
from pipeline.plan import VideoPlan, plan_stored_video
from pipeline.provenance import TOOL, Provenance, tool_version
from pipeline.runs.resume import FinishedVideo, finished_videos, reusable_chunks
from pipeline.quality.review import flag_thresholds, segment_review
from actors.stitch import stitch_video
from pipeline.storage import ObjectInfo, Storage, is_s3, join_uri, relative_key
from pipeline.models.tiling import check_tile

log = logging.getLogger(__name__)


@dataclass(eq=False)  # identity: states are tracked in sets and dicts
class VideoState:
    """The driver's record of one video while the job runs."""

    info: ObjectInfo
    key: str
    output_uri: str
    reference_uri: str | None = None  # its HR reference (benchmark mode)
    last_success: FinishedVideo | None = None  # the latest run that finished it, if any
    plan: VideoPlan | None = None
    error: str = ""
    # segment index -> its finished row (a segment delivered twice counts once); None once finished
    rows: dict[int, Row] | None = field(default_factory=dict)
    stitch: StitchStats | None = None
    started: float = field(default_factory=time.monotonic)  # reset when its wave starts

    @property
    def video_id(self) -> str:
        return manifest.video_id(self.key)

    @property
    def segments_reused(self) -> int:
        return sum(bool(r["reused"]) for r in (self.rows or {}).values())

    def staging(self, output_root: str, config_hash: str) -> str:
        return staging_prefix(output_root, config_hash, self.video_id, self.info.version)


@dataclass
class JobSummary:
    job_id: str
    output: str
    videos_ok: list[str] = field(default_factory=list)
    videos_failed: dict[str, str] = field(default_factory=dict)
    videos_skipped: list[str] = field(default_factory=list)  # done by an earlier run
    segments_reused: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.videos_failed


def segment_rows(state: VideoState, spec: JobSpec, config_hash: str) -> list[Row]:
    """The rows of a planned video's segments, as the decode task takes them (also the throughput
    benchmark's input for its stages measured alone)."""
    plan = state.plan
    staging = state.staging(spec.output, config_hash)
    assert plan is not None
    probe = plan.probe
    rate = probe.avg_rate
    sar = probe.sample_aspect_ratio
    out_width, out_height = _output_size(probe, spec)

    rows = []
    absent = [None] * len(plan.segments)
    for seg, seek, ref_seek in zip(plan.segments, plan.seek_pts or absent, plan.reference_seek_pts or absent):
        rows.append(
            {
                "video_id": state.video_id,
                "video_key": state.key,
                "input_uri": state.info.uri,
                "segment_index": seg.index,
                "segment_count": len(plan.segments),
                "scene_index": seg.scene_index,
                "core_start": seg.core_start,
                "core_end": seg.core_end,
                "context_start": seg.context_start,
                "context_end": seg.context_end,
                "seekable": seek is not None,
                "seek_first_pts": seek[0] if seek else 0,
                "seek_last_pts": seek[1] if seek else 0,
                "reference_uri": state.reference_uri or "",
                "ref_seekable": ref_seek is not None,
                "ref_seek_first_pts": ref_seek[0] if ref_seek else 0,
                "ref_seek_last_pts": ref_seek[1] if ref_seek else 0,
                "video_start_s": probe.start_s,  # time codes count from the first frame
                "time_base_num": probe.time_base.numerator,
                "time_base_den": probe.time_base.denominator,
                "rate_num": rate.numerator if rate else 0,
                "rate_den": rate.denominator if rate else 0,
                "sar_num": sar.numerator if sar else 0,
                "sar_den": sar.denominator if sar else 0,
                "chunk_uri": chunk_uri(staging, seg.index, spec.encode.container_format),
                "reused": False,
                "lr_width": probe.width,
                "lr_height": probe.height,
                "hr_width": out_width,
                "hr_height": out_height,
                **frame_fields(probe, spec.encode, spec.deinterlace),
                **new_row_fields(),
            }
        )
    return rows


def _output_size(probe: VideoProbe, spec: JobSpec) -> tuple[int, int]:
    """Scaled size, as the encoder writes it (4:2:0 codecs round odd sizes up)."""
    return encoded_size(probe.width * spec.scale, probe.height * spec.scale, spec.encode.codec, spec.encode.pix_fmt)


def segments_in_flight(spec: JobSpec) -> int:
    """The job's Ray Data budget in segments: RaySpec.segments_in_flight, or enough for each pool
    actor to hold a batch, have the next one queued and its output waiting, with one to spare."""
    pools = [spec.strong_pool] if spec.fused else [spec.strong_pool, spec.light_pool]
    return spec.ray.segments_in_flight or 4 * sum(pool.size * pool.batch_size for pool in pools)


def segment_bytes(row: Row, spec: JobSpec) -> int:
    """The most object-store bytes one segment's frames take at a stage (RGB uint8, or uint16 for
    outputs above 8 bits): the decoded LR frames, context included, plus the HR core frames (the
    strong stage passes on both). `row`: a segment row of the job or of its manifest."""
    lr = int(row["lr_width"]) * int(row["lr_height"]) * (int(row["context_end"]) - int(row["context_start"]))
    hr = int(row["hr_width"]) * int(row["hr_height"]) * (int(row["core_end"]) - int(row["core_start"]))
    sample_bytes = 2 if deep_frames(spec.encode.codec, spec.encode.pix_fmt) else 1
    return 3 * sample_bytes * (lr + hr)


def _num_gpus(pool: PoolSpec) -> float:
    if pool.num_gpus is not None:
        return pool.num_gpus
    # Half a GPU each: with the default one actor per pool, a single-GPU node holds both pools
    # (a whole GPU each would leave the light pool waiting forever on such a node).
    return 0.5 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _pool_args(pool: PoolSpec, spec: JobSpec, fn_constructor_kwargs: dict[str, Any]) -> dict[str, Any]:
    # A lost pool actor is restarted and the batches it held are re-run (the stages are
    # idempotent); see RaySpec for why neither is bounded by default.
    return {
        "batch_size": pool.batch_size,
        "batch_format": "numpy",
        "compute": ray.data.ActorPoolStrategy(size=pool.size),
        "num_cpus": pool.num_cpus,
        "num_gpus": _num_gpus(pool),
        "resources": pool.resources,  # custom resources pin a pool to the nodes that offer them
        "max_restarts": spec.ray.actor_restarts,
        "max_task_retries": spec.ray.actor_task_retries,
        "fn_constructor_kwargs": fn_constructor_kwargs,
    }


def _stage_args(pool: PoolSpec, spec: JobSpec, model_name: str, sha256: str | None, storage: Storage) -> dict[str, Any]:
    """The constructor arguments of a StrongStage or LightStage."""
    return {
        "model_name": model_name,
        "scale": spec.scale,
        "device": spec.device,
        "pool": pool,
        "weights_dir": spec.models.weights_dir,
        "sha256": sha256,
        "storage": storage,  # run markers in staging (and the references of benchmark mode)
    }


class Job:
    def __init__(self, spec: JobSpec, echo: Callable[[str], None] = print, report: Reporter | None = None) -> None:
        self.spec = spec
        self.report = report or Reporter(echo)  # what users see: lines, a status line or JSON (jobs/run/progress.py)
        self.storage = Storage(**spec.storage.model_dump())
        self.job_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
        models = spec.models
        self.strong = model_info("strong", models.strong, spec.scale, models.weights_dir, models.strong_sha256)
        self.light = model_info("light", models.light, spec.scale, models.weights_dir, models.light_sha256)
        for pool, info in (("strong_pool", self.strong), ("light_pool", self.light)):
            # Here, before any work, rather than when the actors start.
            check_tile(getattr(spec, pool).tile, info.spatial_radius, info.spatial_align, f"{pool}.tile")
        self.config_hash = spec.config_hash({"strong": self.strong.sha256, "light": self.light.sha256})
        self.summary = JobSummary(job_id=self.job_id, output=spec.output)

    def list_videos(self) -> list[VideoState]:
        """The inputs to process; a video an earlier run finished (same input version, same
        settings, output still there) is reported and left out."""
        container = self.spec.encode.container_format
        infos = self._inputs(container)[: self.spec.limit]
        finished = finished_videos(self.storage, self.spec.output)
        # One listing of OUTPUT rather than a HEAD per finished video: cheap on a big bucket.
        outputs = {v.uri for v in self.storage.list_videos(self.spec.output, [container])} if finished else set()
        states, claimed = [], {}
        reference = self.spec.reference
        for info in infos:
            key = relative_key(self.spec.input, info.uri)
            out = join_uri(self.spec.output, output_key(key, self.spec.scale, container))
            ref = reference_uri(reference, self.spec.input, info.uri) if reference else None
            done = finished.get(key)
            if (
                done is not None
                and (done.input_version, done.config_hash, done.output_uri) == (info.version, self.config_hash, out)
                # The reference changes no output, only the figures: a video done without them
                # (or against another reference) is redone when they are asked for.
                and ref in (None, done.reference_uri)
                and out in outputs
            ):
                self.summary.videos_skipped.append(key)
                self.report.video_skipped(info.uri, f"done by job {done.job_id}")
                continue
            state = VideoState(info=info, key=key, output_uri=out, reference_uri=ref, last_success=done)
            if not is_s3(self.spec.output) and {".", ".."} & set(key.split("/")):
                # An S3 key like "in/../../x.mp4" must not write outside a local OUTPUT.
                state.error = f"input key {key!r} has '.' or '..' parts: it cannot map to a local output path"
            elif out in claimed:
                state.error = f"output key {out} is also the output of {claimed[out]}; rename one of the inputs"
            claimed.setdefault(out, key)
            states.append(state)
        return states

    def run(self) -> JobSummary:
        """Process the videos in waves: the next wave is planned (probed) while one is upscaled,
        so first results come early and the driver's state stays bounded on large backlogs."""
        started = time.monotonic()
        self.report.job_started(self.job_id, self.spec.input, self.spec.output)
        videos = self.list_videos()
        self.report.listed(len(videos))
        connect(self.spec.ray, verbose=log.isEnabledFor(logging.DEBUG))
        waves = self.waves(videos)
        wave = next(waves, [])
        plans = self._start_plans(wave)
        while wave:
            self._collect_plans(plans)
            upcoming = next(waves, [])
            plans = self._start_plans(upcoming)
            for state in wave:
                if state.error:
                    self._finish(state)
            planned = {s.video_id: s for s in wave if not s.error}
            if planned:
                self._process(planned)
            wave = upcoming
        self.summary.wall_s = time.monotonic() - started
        return self.summary

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
        made = {
            join_uri(spec.output, output_key(relative_key(spec.input, i.uri), spec.scale, container)) for i in infos
        }
        return [i for i in infos if i.uri not in made]

    def waves(self, videos: list[VideoState]) -> Iterator[list[VideoState]]:
        """The videos in waves of `wave_videos`, made as the job reaches them (a sync job leases
        each wave's videos then: jobs/run/sync.py)."""
        size = self.spec.wave_videos
        for i in range(0, len(videos), size):
            yield videos[i : i + size]

    def _start_plans(self, videos: list[VideoState]) -> list[tuple[VideoState, ray.ObjectRef]]:
        spec = self.spec
        task = ray.remote(num_cpus=spec.ray.task_cpus, max_retries=spec.ray.task_retries)(plan_stored_video)
        radius = self.strong.temporal_radius
        return [
            (s, task.remote(self.storage, s.info.uri, spec.segment, radius, spec.limits, s.reference_uri, spec.scale))
            for s in videos
            if not s.error
        ]

    def _collect_plans(self, plans: list[tuple[VideoState, ray.ObjectRef]]) -> None:
        for state, ref in plans:
            state.plan, state.error = ray.get(ref)
            state.started = time.monotonic()
            if state.plan is not None:
                frames = sum(segment.frames for segment in state.plan.segments)
                self.report.video_planned(state.info.uri, frames, len(state.plan.segments))
            if state.plan is not None and state.plan.context_frames < self.strong.temporal_radius:
                log.warning(
                    "%s: context %d < the strong model's radius %d: segment seams may show",
                    state.key,
                    state.plan.context_frames,
                    self.strong.temporal_radius,
                )

    def _dataset(self, rows: list[Row]) -> ray.data.Dataset:
        spec = self.spec
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = False
        # A segment whose retries are spent is dropped, not the whole wave: its video fails
        # when the wave ends without it (see _process).
        ctx.max_errored_blocks = -1
        # Backpressure with an explicit bound: Ray Data's default budget is half the object store,
        # so on a big node a slow light pool would let the strong pool run ahead by thousands of
        # segments' frames; this one is a few segments, whatever the video's length or the node.
        budget = segments_in_flight(spec) * max(segment_bytes(row, spec) for row in rows)
        ctx.execution_options.resource_limits = ray.data.ExecutionResources(object_store_memory=budget)
        task = {"num_cpus": spec.ray.task_cpus, "max_retries": spec.ray.task_retries}
        models = spec.models
        with warnings.catch_warnings():
            # Ray 2.60 takes retry settings only through the deprecated **ray_remote_args.
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            # One segment per block, so decoding and encoding spread over segments, not videos.
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            ds = ds.map(decode_segment, fn_kwargs={"storage": self.storage}, **task)
            strong = _stage_args(spec.strong_pool, spec, models.strong, models.strong_sha256, self.storage)
            light = _stage_args(spec.light_pool, spec, models.light, models.light_sha256, self.storage)
            if spec.fused:
                ds = ds.map_batches(
                    FusedStage, **_pool_args(spec.strong_pool, spec, {"strong": strong, "light": light})
                )
            else:
                ds = ds.map_batches(StrongStage, **_pool_args(spec.strong_pool, spec, strong))
                ds = ds.map_batches(LightStage, **_pool_args(spec.light_pool, spec, light))
            return ds.map(encode_segment, fn_kwargs={"storage": self.storage, "encode": spec.encode}, **task)

    def _process(self, planned: dict[str, VideoState]) -> None:
        # Stitching is idempotent (same chunks, same bytes, same key): safe to retry on worker loss.
        stitch = ray.remote(num_cpus=self.spec.ray.task_cpus, max_retries=self.spec.ray.task_retries)(stitch_video)
        pending: dict[ray.ObjectRef, VideoState] = {}
        todo = []
        for state in planned.values():
            reusable = reusable_chunks(self.storage, state.staging(self.spec.output, self.config_hash))
            for row in segment_rows(state, self.spec, self.config_hash):
                record = reusable.get(row["segment_index"])
                # Same frames, and figures taken against the same reference (or none, both times).
                if record and (record["core_start"], record["core_end"], record.get("reference_uri", "")) == (
                    row["core_start"], row["core_end"], row["reference_uri"]
                ):  # fmt: skip
                    self._add_row(state, {**row, **record, "reused": True}, stitch, pending)
                else:
                    todo.append(row)
        try:
            if todo:
                for row in self._dataset(todo).iter_rows():
                    self._add_row(planned[row["video_id"]], dict(row), stitch, pending)
                    self._collect(pending, timeout=0)
        except Exception as exc:
            # Ray Data gave up on the whole wave: its unfinished videos fail with the reason,
            # the job goes on with the next wave and exits non-zero.
            log.exception("the pipeline failed")
            for state in planned.values():
                if state.rows is not None and state not in pending.values():
                    state.error = f"pipeline: {_reason(exc)}"
                    self._finish(state)
        for state in planned.values():
            if state.rows is not None and state not in pending.values():
                state.error = (
                    f"{len(state.plan.segments) - len(state.rows)} of {len(state.plan.segments)} segment(s) lost: "
                    "their tasks failed after all retries (worker or node loss; see the Ray logs)"
                )
                self._finish(state)
        while pending:
            self._collect(pending, timeout=None)

    def _add_row(self, state: VideoState, row: Row, stitch: Any, pending: dict[ray.ObjectRef, VideoState]) -> None:
        """Take one finished segment; once a video has all of them, stitch it (or fail it)."""
        if int(row["segment_index"]) not in state.rows:  # a segment delivered twice counts once
            frames = int(row["core_end"]) - int(row["core_start"])
            self.report.segment_done(state.info.uri, frames, reused=bool(row["reused"]))
        state.rows[int(row["segment_index"])] = row
        if len(state.rows) < row["segment_count"]:
            return
        rows = [state.rows[i] for i in sorted(state.rows)]
        failed = [r for r in rows if r["status"] != "ok"]
        if failed:
            state.error = f"{len(failed)} segment(s) failed; first: {failed[0]['error']}"
            self._finish(state)
            return
        ref = stitch.remote(
            self.storage, state.info.uri, [r["chunk_uri"] for r in rows], state.output_uri,
            self.spec.encode.container_format, state.plan.probe.n_frames,
            state.plan.probe.sample_aspect_ratio, self.provenance(state),
        )  # fmt: skip
        pending[ref] = state

    def provenance(self, state: VideoState) -> Provenance:
        """What the output's tags say made it (pipeline/provenance.py)."""
        probe = state.plan.probe
        return Provenance(
            tool=TOOL, tool_version=tool_version(), scale=self.spec.scale,
            strong_model=self.strong.name, strong_sha256=self.strong.sha256,
            light_model=self.light.name, light_sha256=self.light.sha256,
            source_key=state.key, source_uri=state.info.uri, source_sha256=probe.sha256,
            config_hash=self.config_hash,
            deinterlace=deinterlace_mode(deinterlace_frames(self.spec.deinterlace, probe)),
        )  # fmt: skip

    def _collect(self, pending: dict[ray.ObjectRef, VideoState], timeout: float | None) -> None:
        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=1 if timeout is None else len(pending), timeout=timeout)
        for ref in done:
            state = pending.pop(ref)
            try:
                state.stitch = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - recorded on the video's manifest row
                state.error = f"stitch: {_reason(exc)}"
            self._finish(state)

    def _finish(self, state: VideoState) -> None:
        """Write the video's manifest, clean its staging, and report it."""
        staging = state.staging(self.spec.output, self.config_hash) if state.plan is not None else None
        # Counted last thing before staging goes: every run of this video's segments has left its marker.
        attempts = segment_attempts(self.storage, staging) if staging else {}
        segments = self._manifest_segments(state, attempts)
        manifest.write_video_manifest(
            self.storage, self.spec.output, self.job_id, self._video_row(state, segments), segments
        )
        if staging:
            self.storage.delete_prefix(staging)
        self.summary.segments_reused += state.segments_reused
        state.rows = None  # written to the manifest: the driver keeps no per-segment state
        if state.error:
            self.summary.videos_failed[state.key] = state.error
            log.error("%s: failed: %s", state.info.uri, state.error)
            self.report.video_failed(state.info.uri, state.error)
        else:
            self.summary.videos_ok.append(state.key)
            self.summary.outputs[state.key] = state.output_uri
            self.summary.frames += state.stitch.frames
            self.report.video_ok(state.info.uri, state.output_uri, state.stitch.frames)

    def _manifest_segments(self, state: VideoState, attempts: dict[str, int]) -> list[Row]:
        columns = [f.name for f in manifest.SEGMENT_SCHEMA]
        rows = []
        for _, row in sorted((state.rows or {}).items()):
            values = {
                **row,
                "job_id": self.job_id,
                "frames": int(row["core_end"]) - int(row["core_start"]),
                "strong_model": self.strong.name,
                "strong_sha256": self.strong.sha256,
                "light_model": self.light.name,
                "light_sha256": self.light.sha256,
                "error": row["error"] or None,
                "encoder": row["encoder"] or None,  # a chunk recorded by an older version: unknown
                "encoded_at": _utc(float(row["encoded_at"])),
                # A segment always ran at least once, even if its marker could not be written.
                "attempts": max(1, attempts.get(posixpath.basename(row["chunk_uri"]), 0)),
            }
            values.update(segment_review(values, self.spec.review))
            rows.append({name: _plain(values.get(name)) for name in columns})
        return rows

    def _video_row(self, state: VideoState, rows: list[Row]) -> Row:
        probe = state.plan.probe if state.plan else None
        stitch = state.stitch if not state.error else None
        segments = list((state.rows or {}).values()) if stitch else []
        spec = self.spec
        return {
            "job_id": self.job_id,
            "video_key": state.key,
            "input_uri": state.info.uri,
            "input_size": state.info.size,
            "input_version": state.info.version,
            "output_uri": state.output_uri if stitch else None,
            "status": "failed" if state.error else "ok",
            "error": state.error or None,
            "frames_in": probe.n_frames if probe else 0,
            "frames_out": stitch.frames if stitch else 0,
            "duration_in_s": probe.duration_s if probe else 0.0,
            "duration_out_s": stitch.duration_s if stitch else 0.0,
            "width": probe.width if probe else 0,
            "height": probe.height if probe else 0,
            "out_width": _output_size(probe, spec)[0] if probe else 0,
            "out_height": _output_size(probe, spec)[1] if probe else 0,
            "scale": spec.scale,
            "codec": spec.encode.codec,
            # One for a video that stitched (the stitcher refuses chunks of different encoders).
            "encoder": ", ".join(sorted({r["encoder"] for r in rows if r["encoder"]})) or None,
            "segments": len(state.plan.segments) if state.plan else 0,
            "segments_reused": state.segments_reused,
            "segment_retries": sum(r["attempts"] - 1 for r in rows),
            "segments_flagged": sum(r["flagged"] for r in rows),
            **flag_thresholds(spec.review),
            "scenes": len(probe.cuts) + 1 if probe else 0,
            "audio_streams_copied": stitch.audio_streams if stitch else 0,
            "subtitle_streams_copied": stitch.subtitle_streams if stitch else 0,
            "flicker": _video_metric(segments, "flicker"),
            "reference_uri": state.reference_uri,
            **{name: _video_metric(segments, name) for name in REFERENCE_METRICS},
            "config_hash": self.config_hash,
            **self._format_columns(probe),
            "source_sha256": probe.sha256 if probe else None,
            "video_sha256": stitch.video_sha256 if stitch else None,
            "tool_version": tool_version(),
            "strong_model": self.strong.name,
            "strong_sha256": self.strong.sha256,
            "light_model": self.light.name,
            "light_sha256": self.light.sha256,
            "wall_s": time.monotonic() - state.started,
            "finished_at": datetime.now(timezone.utc),
        }

    def _format_columns(self, probe: VideoProbe | None) -> Row:
        """The video row's columns on the output's format: pixel format, colour, shape, deinterlacing."""
        encode = self.spec.encode
        pix_fmt = encode.pix_fmt or DEFAULT_PIX_FMT[encode.codec]
        frames = deinterlace_frames(self.spec.deinterlace, probe) if probe else None
        colour = (
            written_colour(encode.codec, pix_fmt, _output_size(probe, self.spec)[1], probe.colour)
            if probe
            else Colour()
        )
        sar = probe.sample_aspect_ratio if probe else None
        return {
            "pix_fmt": pix_fmt,
            "bit_depth": bit_depth(encode.codec, pix_fmt),
            **colour.names(),
            "sample_aspect_ratio": f"{sar.numerator}:{sar.denominator}" if sar else None,
            "rotation": probe.rotation if probe else 0,
            "field_order": probe.field_order if probe else None,
            "deinterlaced": frames is not None,
            "deinterlace_mode": deinterlace_mode(frames),
        }


def _reason(exc: BaseException) -> str:
    """One line for a manifest: Ray wraps remote errors in their whole traceback, whose last
    line is the original `Type: message`."""
    if isinstance(exc, ray.exceptions.RayError):
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return lines[-1].strip() if lines else type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _video_metric(segments: list[Row], name: str) -> float | None:
    """A segment metric over the whole video: the segments' values weighted by the frames they
    were taken on (ewarp and flicker: by frame pairs, what they average over); None when no segment
    has one."""
    total = weight = 0.0
    for row in segments:
        value = _plain(row[name])
        if value is not None:
            frames = int(row["core_end"]) - int(row["core_start"])
            pairs_or_frames = frames - 1 if name in PAIR_METRICS else frames
            total += value * pairs_or_frames
            weight += pairs_or_frames
    return total / weight if weight else None


def _utc(unix_time: float) -> datetime | None:
    """A Unix time -> a UTC datetime for a timestamp column; NaN (not taken) -> null."""
    return None if math.isnan(unix_time) else datetime.fromtimestamp(unix_time, timezone.utc)


def _plain(value: Any) -> Any:
    """numpy scalars from Ray Data rows -> Python values for pyarrow; NaN (a metric that was
    not taken: failed segment, or one frame for tfs) -> null."""
    value = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
    return None if isinstance(value, float) and math.isnan(value) else value


def run_job(spec: JobSpec, echo: Callable[[str], None] = print, report: Reporter | None = None) -> JobSummary:
    return Job(spec, echo, report).run()
