"""The throughput benchmark's report: its rows as Markdown tables."""

from __future__ import annotations

from typing import Any

from jobs.bench.tables import Column, table
from jobs.bench.throughput.settings import Settings

SCALE: Column = ("scale", "scale", "d")
STAGE_TABLE: list[Column] = [SCALE, ("stage", "stage", "s"), ("resource", "resource", "s")]
STAGE_TABLE += [("busy ms/frame", "busy_ms", ".2f"), ("fps", "fps", ".1f")]
E2E_TABLE: list[Column] = [SCALE, ("run", "stage", "s"), ("frames", "frames", "d"), ("actors/pool", "actors", "d")]
E2E_TABLE += [("seconds", "seconds", ".1f"), ("fps", "fps", ".2f"), ("ideal fps", "ideal_fps", ".2f")]
E2E_TABLE += [("efficiency", "efficiency", ".2f"), ("GPU util %", "gpu_util", ".0f"), ("GPU MiB", "gpu_mem_mb", ".0f")]
BASELINE_TABLE: list[Column] = [SCALE, ("baseline", "stage", "s"), ("frames", "frames", "d")]
BASELINE_TABLE += [("threads", "threads", "d"), ("fps", "fps", ".2f"), ("GMAC/frame", "gmac_per_frame", ".2f")]
BASELINE_TABLE += [("TFLOP/s", "achieved_tflops", ".4f"), ("MFU", "mfu", ".3f")]
FUSED_TABLE: list[Column] = [SCALE, ("mode", "stage", "s"), ("fps", "fps", ".2f")]
CURVE_TABLE: list[Column] = [("curve", "curve", "s"), *E2E_TABLE[:-2]]
RSS_TABLE: list[Column] = [SCALE, ("role", "stage", "s"), ("peak MiB", "peak_rss_mb", ".0f")]


def markdown(rows: list[dict[str, Any]], settings: Settings) -> str:
    """The report: stages and roofline, end to end, baselines, fused vs separate, curves, peaks."""

    def of(*kinds: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["kind"] in kinds]

    w, h = settings.size
    sizes = ", ".join(f"x{s}: {w}x{h} -> {w * s}x{h * s}" for s in settings.scales)
    stages = [{**r, "busy_ms": 1e3 * r["busy_s_per_frame"]} if r["kind"] == "stage" else {**r, "stage": "IDEAL"}
              for r in of("stage", "ideal")]  # fmt: skip
    curves = [{**r, "curve": r["kind"].removeprefix("curve: ")} for r in rows if r["kind"].startswith("curve")]
    parts = [
        f"Throughput: {settings.frames} frames ({sizes}), {settings.strong} + {settings.light}, {rows[0]['device']}.",
        "Stages alone on one unit (busy: CPU seconds on CPU, wall seconds on a GPU) and the roofline (IDEAL):",
        table(stages, STAGE_TABLE),
        "End to end: the real job in its own process and Ray cluster (steady: once the pipeline is full, from the "
        "chunks' writing times); efficiency = fps / ideal:",
        table(of("e2e"), E2E_TABLE),
        "Baselines on all cores; the models model-only, random weights for SRVGGNetCompact and RRDBNet:",
        table(of("baseline"), BASELINE_TABLE),
        "Fused vs separate, model-only on one unit (end to end: the fused pool rows above):",
        table(of("fused"), FUSED_TABLE),
    ]
    if curves:
        parts += ["Scaling curves, real jobs (actors per pool on the full clip; length with one actor per pool):"]
        parts += [table(curves, CURVE_TABLE)]
    parts += ["Peak RSS of the end-to-end run per process role (its largest process):", table(of("rss"), RSS_TABLE)]
    return "\n\n".join(parts) + "\n"
