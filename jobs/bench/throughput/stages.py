"""Each stage of the job alone on one unit, in this process without Ray; and the baselines timed the
same way (a plain PyAV -> Lanczos -> encode loop, RRDBNet)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import torch

from actors.decode import decode_segment
from actors.encode import encode_segment
from actors.light import LightStage
from actors.model_stage import ModelStage
from actors.plan import plan_stored_video
from actors.rows import records_from_batch, records_to_batch
from actors.stitch import stitch_video
from actors.strong import StrongStage
from jobs.bench.errors import BenchError
from jobs.bench.throughput.settings import STAGES
from jobs.run.job import Job
from pipeline.config import JobSpec, PoolSpec
from pipeline.host_memory import keep_freed_memory
from pipeline.media import ENCODERS
from pipeline.media.synthetic import make_clip
from pipeline.models import lanczos_upscale, pick_device
from pipeline.models.baselines import RRDBNet
from pipeline.models.inference import run_light, run_strong, to_pixels, to_tensor
from pipeline.segment import SegmentRecord


class Clock:
    """Wall and CPU seconds (every thread of this process) of the blocks run under `timed`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    @contextmanager
    def timed(self) -> Iterator[None]:
        self._sync()
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self._sync()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clip_path(root: Path, frames: int, size: tuple[int, int]) -> Path:
    """The benchmark clip (kept between runs: the same settings give the same file); a clip of N
    frames is the first N frames of any longer one."""
    path = root / "clips" / f"{frames}f_{size[0]}x{size[1]}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part.mp4")
        make_clip(part, frames=frames, size=size, audio_streams=1)
        part.rename(path)
    return path


def _stage(
    model: type[ModelStage], spec: JobSpec, pool: PoolSpec, name: str, sha256: str | None, job: Job
) -> ModelStage:
    """The pool's stage callable on one unit: one torch thread on CPU (the job's own pool settings on a GPU)."""
    one_unit = pool if pick_device(spec.device).type == "cuda" else pool.model_copy(update={"torch_threads": 1})
    return model(name, spec.scale, spec.device, one_unit, spec.models.weights_dir, sha256, job.storage)


def _checked(segment: SegmentRecord) -> SegmentRecord:
    if segment.status != "ok":
        raise BenchError(f"segment {segment.segment_index}: {segment.error}")
    return segment


def measure_stages(spec: JobSpec, echo: Callable[[str], None]) -> tuple[dict[str, Clock], int]:
    """Every stage of the job alone on one unit, over every segment of spec.input (one video), and
    the models alone on the first segment (separate passes, and fused: strong then light per pass),
    with that segment's frame count. Writes the output under spec.output."""
    keep_freed_memory()  # as the job's actors and tasks do
    dev = pick_device(spec.device)
    job = Job(spec, echo=lambda _: None)
    (state,) = job.list_videos()
    clocks = {name: Clock(dev) for name in (*STAGES, "strong model", "light model", "fused")}
    with torch_threads(1):
        with clocks["plan"].timed():
            radius = job.strong.temporal_radius
            plan, error = plan_stored_video(job.storage, state.info.uri, spec, radius)
        if plan is None:
            raise BenchError(f"{state.info.uri}: {error}")
        state.probe = plan.probe
        segments = job.segment_records(state, plan)
        strong = _stage(StrongStage, spec, spec.strong_pool, spec.models.strong, spec.models.strong_sha256, job)
        light = _stage(LightStage, spec, spec.light_pool, spec.models.light, spec.models.light_sha256, job)
        warm = decode_segment(segments[0].to_row(), job.storage)  # allocator and oneDNN kernel choice: not timed
        light(strong(records_to_batch([SegmentRecord.from_row(warm)])))
        for i, segment in enumerate(segments):
            with clocks["decode"].timed():
                segment = _checked(SegmentRecord.from_row(decode_segment(segment.to_row(), job.storage)))
            if i == 0:  # its own segment is enough for the model-only figures (they are slow)
                _models_alone(strong, light, segment, clocks)
            with clocks["strong"].timed():
                (segment,) = records_from_batch(strong(records_to_batch([segment])))
            with clocks["light"].timed():
                (segment,) = records_from_batch(light(records_to_batch([_checked(segment)])))
            with clocks["encode"].timed():
                _checked(SegmentRecord.from_row(encode_segment(_checked(segment).to_row(), job.storage, spec.encode)))
            echo(f"  segment {i + 1}/{len(segments)}")
        probe = plan.probe
        with clocks["stitch"].timed():
            stitch_video(
                job.storage, state.info.uri, [s.chunk_uri for s in segments], state.output_uri,
                spec.encode.container_format, probe.n_frames, probe.sample_aspect_ratio, job.provenance(state),
            )  # fmt: skip
    return clocks, segments[0].frames


@torch.inference_mode()
def _models_alone(strong: ModelStage, light: ModelStage, segment: SegmentRecord, clocks: dict[str, Clock]) -> None:
    lr, core = to_tensor(segment.lr, strong.device), segment.core
    radius, per_pass, light_pass = strong.model.temporal_radius, strong.frames_per_pass, light.frames_per_pass
    with clocks["strong model"].timed():
        hr = run_strong(strong.model, lr, core, radius, per_pass)
    with clocks["light model"].timed():
        run_light(light.model, hr, light_pass)
    with clocks["fused"].timed():
        for start in range(core.start, core.stop, per_pass):
            part = run_strong(strong.model, lr, slice(start, min(start + per_pass, core.stop)), radius, per_pass)
            run_light(light.model, part, light_pass)


def lanczos_floor(clip: Path, out: Path, spec: JobSpec) -> Clock:
    """Decode -> Lanczos-3 -> encode in one plain PyAV loop, all cores, no Ray: the floor of any
    pipeline (the job's codec, crf and preset; batches of the light pool's frames per pass)."""
    clock = Clock(torch.device("cpu"))
    batch_size = spec.light_pool.frames_per_pass
    with clock.timed(), av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = sink.add_stream(ENCODERS[spec.encode.codec], rate=video.average_rate)
        stream.width, stream.height = video.codec_context.width * spec.scale, video.codec_context.height * spec.scale
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(spec.encode.crf), "preset": spec.encode.preset}

        def flush(batch: list[np.ndarray]) -> None:
            frames = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255)
            for pixels in to_pixels(lanczos_upscale(frames, spec.scale), np.uint8):
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    sink.mux(packet)

        batch: list[np.ndarray] = []
        for frame in source.decode(video):
            batch.append(frame.to_ndarray(format="rgb24"))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        sink.mux(stream.encode())
    return clock


@torch.inference_mode()
def rrdbnet_fps(scale: int, lr: tuple[int, int], frames: int, device: torch.device) -> tuple[float, int]:
    """(frames/s, params) of RRDBNet (64 features, 23 blocks, growth 32) one frame at a time, all cores."""
    model = RRDBNet(scale=scale).to(device).eval()
    x = torch.rand(1, 3, lr[1], lr[0], generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        model(x)  # warm-up (cuDNN's choice of kernels); on CPU one frame takes seconds and this is noise
    clock = Clock(device)
    with clock.timed():
        for _ in range(frames):
            model(x)
    return frames / clock.wall, sum(p.numel() for p in model.parameters())
