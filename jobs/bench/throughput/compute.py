"""Compute figures: a module's GMAC per frame, the device's peak FLOP/s for the arithmetic a pass
ran in (for MFU), and the GPUs' utilisation and memory while a job runs."""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.models.baselines import SRVGGNetCompact

if TYPE_CHECKING:
    from typing_extensions import Self

# Dense peaks (FLOP/s, no sparsity; NVIDIA's data sheets, SXM parts) by device name and the
# arithmetic a pass runs in: fp32 on CUDA cores, tf32, bf16 and fp16 on tensor cores. MFU is NaN
# on any other device.
PEAK_FLOPS = {
    "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12, "fp16": 989e12},
    "H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12, "fp16": 989e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12},
}


def module_gmac(build: Callable[[], torch.nn.Module], lr: tuple[int, int]) -> float:
    """GMAC per frame of a per-frame module on an LR frame (w, h), counted on the meta device."""
    with torch.device("meta"):
        model, x = build(), torch.empty(1, 3, lr[1], lr[0])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def srvgg(scale: int) -> torch.nn.Module:
    """Real-ESRGAN's compact model (64 features, 16 convs), the model-only speed baseline."""
    return SRVGGNetCompact(num_feat=64, num_conv=16, upscale=scale)


def arithmetic(precision: str) -> str:
    """What a pass at a pool's `precision` computes in on CUDA: autocast's 16 bits, or fp32, which
    cuDNN's convolutions (most of these models' work) run as TF32 on tensor cores unless torch is
    told not to."""
    if precision != "fp32":
        return precision
    return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"


def peak_flops(device: torch.device, precision: str) -> float:
    """The device's dense peak (FLOP/s) for a pass at `precision`; NaN when unknown (any CPU)."""
    if device.type != "cuda":
        return math.nan
    name = torch.cuda.get_device_name(device)
    peaks = next((peaks for mark, peaks in PEAK_FLOPS.items() if mark in name), None)
    return peaks[arithmetic(precision)] if peaks else math.nan


def mfu(gmac_per_frame: float, fps: float, device: torch.device, precision: str) -> tuple[float, float]:
    """(achieved TFLOP/s, model FLOP utilisation) of a model at `fps`: 2 FLOP per multiply-add, over
    the peak of the arithmetic it ran in."""
    achieved = 2 * gmac_per_frame * 1e9 * fps
    return achieved / 1e12, achieved / peak_flops(device, precision)


class GpuSampler:
    """nvidia-smi's utilisation and memory of the GPUs, sampled every 250 ms while in use."""

    def __init__(self) -> None:
        self.util: list[float] = []
        self.memory_mb: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if shutil.which("nvidia-smi"):
            query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "250"]
            self._process = subprocess.Popen(["nvidia-smi", *query], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            util, memory = (float(v) for v in line.split(",")[:2])
            self.util.append(util)
            self.memory_mb.append(memory)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()

    def summary(self) -> tuple[float, float]:
        """(mean utilisation %, peak memory MiB); NaN when nvidia-smi is absent."""
        if not self.util:
            return math.nan, math.nan
        return sum(self.util) / len(self.util), max(self.memory_mb)
