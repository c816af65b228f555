"""The job's Ray Data pipeline, one streaming Dataset from the listed videos to their chunks:
plan -> decode -> strong pool -> light pool (or one fused pool) -> encode, each pool sized and
placed by its PoolSpec, under an explicit object-store budget. Videos enter as the planning stage
reaches them, while the segments of others are upscaled: no video waits for another's planning."""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Protocol

import ray
from ray.actor import ActorHandle

from actors.decode import decode_segment
from actors.encode import encode_segment
from actors.fused import FusedStage
from actors.light import LightStage
from actors.plan import plan_videos
from actors.strong import StrongStage
from pipeline.config import JobSpec, PoolSpec
from pipeline.errors import PssrError
from pipeline.media import frame_size
from pipeline.media.encode import deep_frames, encoded_size
from pipeline.segment import Row
from pipeline.storage import Storage

log = logging.getLogger(__name__)

BUDGET_SAMPLE = 16  # videos whose headers size the object-store budget (`largest_segment_bytes`)
FALLBACK_FRAME = (1920, 1080)  # the frame size assumed when none of those headers can be read


def segments_in_flight(spec: JobSpec) -> int:
    """The job's Ray Data budget in segments: RaySpec.segments_in_flight, or enough for each pool
    actor to hold a batch, have the next one queued and its output waiting, with one to spare."""
    pools = [spec.strong_pool] if spec.fused else [spec.strong_pool, spec.light_pool]
    return spec.ray.segments_in_flight or 4 * sum(pool.size * pool.batch_size for pool in pools)


class SegmentShape(Protocol):
    """What sizes a segment's frames: a SegmentRecord has it, and so has a manifest's segment row."""

    lr_width: int
    lr_height: int
    hr_width: int
    hr_height: int
    context_start: int
    context_end: int
    frames: int


def segment_bytes(segment: SegmentShape, spec: JobSpec) -> int:
    """The most object-store bytes one segment's frames take at a stage (RGB uint8, or uint16 for
    outputs above 8 bits): the decoded LR frames, context included, plus the HR core frames (the
    strong stage passes on both)."""
    lr = segment.lr_width * segment.lr_height * (segment.context_end - segment.context_start)
    hr = segment.hr_width * segment.hr_height * segment.frames
    sample_bytes = 2 if deep_frames(spec.encode.codec, spec.encode.pix_fmt) else 1
    return 3 * sample_bytes * (lr + hr)


def planned_segment_bytes(width: int, height: int, spec: JobSpec, temporal_radius: int) -> int:
    """`segment_bytes` of the largest segment a video of this frame size can have: the most core
    frames, with context on both sides."""
    context = temporal_radius if spec.segment.context_frames is None else spec.segment.context_frames
    hr_width, hr_height = encoded_size(width * spec.scale, height * spec.scale, spec.encode.codec, spec.encode.pix_fmt)
    frames = spec.segment.max_core_frames
    shape = SimpleNamespace(
        lr_width=width, lr_height=height, hr_width=hr_width, hr_height=hr_height,
        context_start=0, context_end=frames + 2 * context, frames=frames,
    )  # fmt: skip
    return segment_bytes(shape, spec)


def largest_segment_bytes(storage: Storage, uris: list[str], spec: JobSpec, temporal_radius: int) -> int:
    """`planned_segment_bytes` of the largest frame among the first `BUDGET_SAMPLE` videos' headers
    (nothing decoded): Ray Data's budget is set before anything is planned. A larger video later in
    the list runs under the same bytes, with fewer of its segments in flight."""

    def size(uri: str) -> tuple[int, int] | None:
        try:
            with storage.open_read(uri) as source:
                return frame_size(source)
        except (OSError, PssrError) as exc:  # its planning reports it
            log.debug("%s: no frame size from its header: %s", uri, exc)
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = [found for found in pool.map(size, uris[:BUDGET_SAMPLE]) if found is not None]
    return max(planned_segment_bytes(w, h, spec, temporal_radius) for w, h in sizes or [FALLBACK_FRAME])


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


def stage_args(
    pool: PoolSpec,
    spec: JobSpec,
    model_name: str,
    sha256: str | None,
    storage: Storage,
    progress: ActorHandle | None = None,
) -> dict[str, Any]:
    """The constructor arguments of a StrongStage or LightStage."""
    return {
        "model_name": model_name,
        "scale": spec.scale,
        "device": spec.device,
        "pool": pool,
        "weights_dir": spec.models.weights_dir,
        "sha256": sha256,
        "storage": storage,  # run markers in staging (and the references of benchmark mode)
        "progress": progress,
    }


def job_dataset(
    videos: list[Row],
    spec: JobSpec,
    storage: Storage,
    temporal_radius: int,
    largest_segment: int,
    progress: ActorHandle | None = None,
    leases: ActorHandle | None = None,
) -> ray.data.Dataset:
    """The videos (`actors/plan.py: video_row`) through every stage; its rows are the segments as
    the encode stage leaves them (no frames), and one row for each video that got no segments, in
    no particular order. The planning stage reports each plan to `progress`, the model stages when
    they are ready and the light stage its passes (actors/progress.py); a sync's planning stage
    takes the video's lease from `leases` (actors/leases.py)."""
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = False
    # A block whose retries are spent is dropped, not the whole job: its video fails when the
    # Dataset ends without it (jobs/run/job.py).
    ctx.max_errored_blocks = -1
    # Every row its own block as soon as a stage gives it: Ray Data otherwise gathers a task's rows
    # into blocks of up to 128 MiB, so a long video's planning task, which gives its segments as
    # its ranges come in (actors/plan.py), would hand on none before its last (a segment's row is
    # a few KiB until it is decoded, and one segment per block is what the stages want anyway).
    ctx.target_max_block_size = 1
    # Backpressure with an explicit bound: Ray Data's default budget is half the object store,
    # so on a big node a slow light pool would let the strong pool run ahead by thousands of
    # segments' frames; this one is a few segments, whatever the video's length or the node.
    budget = segments_in_flight(spec) * largest_segment
    ctx.execution_options.resource_limits = ray.data.ExecutionResources(object_store_memory=budget)
    task = {"num_cpus": spec.ray.task_cpus, "max_retries": spec.ray.task_retries}
    models = spec.models
    with warnings.catch_warnings():
        # Ray 2.60 takes retry settings only through the deprecated **ray_remote_args.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        ds = ray.data.from_items(videos, override_num_blocks=len(videos))
        plan_args = {"storage": storage, "spec": spec, "temporal_radius": temporal_radius}
        # A video per planning task (with the job's retry cap: a file that crashes its decoder must
        # not be retried forever, as Ray Data's default would). Its rows are a block each already
        # (target_max_block_size above); the repartition keeps decoding an operator of its own,
        # which Ray Data would otherwise fuse into the planning task (a video's segments decoded
        # one after another there), so decoding and encoding spread over segments, not videos.
        plan = {**plan_args, "progress": progress, "leases": leases}
        ds = ds.map_batches(plan_videos, batch_size=1, batch_format="numpy", fn_kwargs=plan, **task)
        ds = ds.repartition(target_num_rows_per_block=1)
        ds = ds.map(decode_segment, fn_kwargs={"storage": storage}, **task)
        strong = stage_args(spec.strong_pool, spec, models.strong, models.strong_sha256, storage, progress)
        light = stage_args(spec.light_pool, spec, models.light, models.light_sha256, storage, progress)
        if spec.fused:
            ds = ds.map_batches(FusedStage, **_pool_args(spec.strong_pool, spec, {"strong": strong, "light": light}))
        else:
            ds = ds.map_batches(StrongStage, **_pool_args(spec.strong_pool, spec, strong))
            ds = ds.map_batches(LightStage, **_pool_args(spec.light_pool, spec, light))
        encode = {"storage": storage, "encode": spec.encode, "access": spec.access}
        return ds.map(encode_segment, fn_kwargs=encode, **task)
