"""`pssr plan`: the segment plan of each input, computed locally without Ray or models."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import JobSpec
from pipeline.models import model_info
from pipeline.naming import VIDEO_EXTENSIONS
from pipeline.plan import plan_video
from pipeline.storage import Storage


def print_plan(spec: JobSpec, echo: Callable[[str], None]) -> bool:
    """Print each video's probe and segments; False when any input could not be planned."""
    storage = Storage(**spec.storage.model_dump())
    models = spec.models
    radius = model_info("strong", models.strong, spec.scale, models.weights_dir, models.strong_sha256).temporal_radius
    all_ok = True
    for info in storage.list_videos(spec.input, VIDEO_EXTENSIONS)[: spec.limit]:
        try:
            with storage.open_read(info.uri) as source:
                deinterlace = (spec.deinterlace, spec.deinterlace_rate)
                plan = plan_video(source, spec.segment, radius, spec.limits, deinterlace=deinterlace)
        except Exception as exc:  # noqa: BLE001 - report every input, then exit non-zero
            echo(f"{info.uri}: cannot plan: {type(exc).__name__}: {exc}")
            all_ok = False
            continue
        probe = plan.probe
        rate = f"{float(probe.avg_rate):.3f} fps" if probe.avg_rate else "unknown rate"
        echo(
            f"{info.uri}: {probe.n_frames} frames, {probe.width}x{probe.height} {probe.pix_fmt} {probe.codec}, "
            f"{rate}, {probe.duration_s:.2f} s, {len(probe.cuts) + 1} scene(s), {len(plan.segments)} segment(s), "
            f"context {plan.context_frames}, rotation {probe.rotation}, interlaced {probe.interlaced}, "
            f"audio {probe.audio_streams}, subtitles {probe.subtitle_streams}"
            + (
                ", field rate: segments count fields (two frames per source frame)"
                if plan.deinterlace == "fields"
                else ""
            )
        )
        echo("  seg scene      core frames   context frames")
        for seg in plan.segments:
            echo(
                f"  {seg.index:3d} {seg.scene_index:5d} {seg.core_start:7d}-{seg.core_end - 1:<7d}"
                f" {seg.context_start:7d}-{seg.context_end - 1:<7d}"
            )
    return all_ok
