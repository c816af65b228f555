"""What one throughput benchmark run measures (the CLI's options), and the names its rows use."""

from __future__ import annotations

from dataclasses import dataclass

CPU, GPU = "cpu", "gpu"  # the resources the roofline counts
STAGES = ("plan", "decode", "strong", "light", "encode", "stitch")
MODEL_STAGES = ("strong", "light")


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures (the CLI's options)."""

    scales: tuple[int, ...] = (2, 4)
    size: tuple[int, int] = (160, 90)  # LR (w, h)
    frames: int = 240
    strong: str = "tiny"
    light: str = "tiny"
    device: str = "auto"
    actors: tuple[int, ...] = (1, 2)  # actors per pool on the scaling curve
    lengths: tuple[int, ...] = (60, 120)  # frames on the length curve (plus `frames`)
    rrdb_frames: int = 2
    num_cpus: int | None = None  # CPUs of each job's Ray cluster (the roofline's CPU units)
    object_store_mb: int = 300
    config: str | None = None
