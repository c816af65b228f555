"""The one place where a device request ('auto', 'cpu', 'cuda', 'cuda:N') becomes a torch.device."""

from __future__ import annotations

import torch


def pick_device(requested: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; asking for CUDA without it is an error, not a silent CPU run."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but CUDA is not available on this machine")
        device = torch.device(requested)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return device
    raise ValueError(f"unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(device: torch.device, precision: str) -> None:
    """Fail at start-up, not on the first segment, when `device` cannot run `precision`."""
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        if precision != "fp32":
            raise ValueError(f"unknown precision {precision!r}; use 'fp32', 'bf16' or 'fp16'")
        return
    if not torch.amp.is_autocast_available(device.type):
        raise RuntimeError(f"precision {precision} needs autocast, which torch does not offer on {device}")
    # Without native bf16 (before Ampere) torch emulates it, slower than fp32: refuse rather than crawl.
    if (
        device.type == "cuda"
        and dtype == torch.bfloat16
        and not torch.cuda.is_bf16_supported(including_emulation=False)
    ):
        raise RuntimeError(
            f"precision bf16 requested but {torch.cuda.get_device_name(device)} has no bfloat16; use fp16 or fp32"
        )


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The forward pass at `precision`: fp32 as is; bf16/fp16 under torch.autocast on the device
    (CUDA, or CPU autocast), which runs convolutions and matrix products in the low precision and
    keeps reductions such as softmax and norms in fp32."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile for inference. Shapes vary (segment lengths, tiles, frame sizes): dynamic=None
    compiles the first shape static and recompiles with symbolic sizes when a new one comes. No CUDA
    graphs (they are captured per shape) and no max-autotune (it benchmarks kernels again for every
    new shape); the attributes of `model` (radii) stay readable through the compiled module."""
    return torch.compile(model, dynamic=None)
