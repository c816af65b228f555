"""Fast paths of the models' forward pass against the plain fp32 path: autocast precision (CPU here,
CUDA where present) and the pinned host-device copies.

Tolerances (TOLERANCE) are in 8-bit levels of the model pair's output on real frames (a camera
move over a photo) with the shipped trained tiny weights, a few times what was measured on CPU
(bf16: mean 0.07, max 0.93; fp16: mean 0.009, max 0.12, at x4).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import load_job_spec
from pipeline.models import load_model
from pipeline.models.device import autocast, check_precision
from pipeline.models.inference import run_light, run_strong, to_pixels, to_tensor
from tests.clips import photo_clip

# precision -> (mean, max) absolute difference from fp32, in levels of 255.
TOLERANCE = {"bf16": (0.5, 4.0), "fp16": (0.1, 1.0)}
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: this machine has no GPU")


def clip() -> torch.Tensor:
    return photo_clip(6, (72, 96))


def pair(scale: int, device: torch.device, lr: torch.Tensor, precision: str) -> torch.Tensor:
    strong, _ = load_model("strong", "tiny", scale, device)
    light, _ = load_model("light", "tiny", scale, device)
    with autocast(device, precision):
        out = run_light(light, run_strong(strong, lr.to(device), slice(1, 5), strong.temporal_radius, 8), 8)
    assert out.dtype == torch.float32  # whatever the precision: the conversion to pixels stays exact
    return out.cpu()


def assert_within(out: torch.Tensor, ref: torch.Tensor, precision: str) -> None:
    levels = (out - ref).abs() * 255
    mean, peak = TOLERANCE[precision]
    assert levels.mean().item() < mean and levels.max().item() < peak
    assert levels.max().item() > 0  # the low precision did run: fp32 would match to the bit


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("scale", [2, 4])  # two of the trained scales
def test_cpu_autocast_stays_within_the_tolerance_of_fp32(scale: int, precision: str) -> None:
    lr, cpu = clip(), torch.device("cpu")
    assert_within(pair(scale, cpu, lr, precision), pair(scale, cpu, lr, "fp32"), precision)


def test_fp32_is_the_plain_forward_pass() -> None:
    lr, cpu = clip(), torch.device("cpu")
    strong, _ = load_model("strong", "tiny", 2)
    with autocast(cpu, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
        out = run_strong(strong, lr, slice(1, 5), strong.temporal_radius, 8)
    assert torch.equal(out, run_strong(strong, lr, slice(1, 5), strong.temporal_radius, 8))


def test_precision_is_checked_at_start_up() -> None:
    for precision in ("fp32", "bf16", "fp16"):
        check_precision(torch.device("cpu"), precision)  # CPU autocast has both 16-bit types
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        check_precision(torch.device("cpu"), "int8")


@CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_stays_within_the_tolerance_of_fp32(precision: str) -> None:
    cuda = torch.device("cuda")
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        with pytest.raises(RuntimeError, match="has no bfloat16"):
            check_precision(cuda, precision)
        return
    check_precision(cuda, precision)
    lr = clip()
    assert_within(pair(4, cuda, lr, precision), pair(4, torch.device("cpu"), lr, "fp32"), precision)


@CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pinned_copies_give_the_host_path_values(dtype: type) -> None:
    """to_tensor pins and copies without blocking, to_pixels copies into pinned memory and waits:
    the same numbers as on the CPU, both ways, at 8 and 16 bits."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, np.iinfo(dtype).max, size=(3, 17, 23, 3), dtype=dtype)
    cuda = to_tensor(frames, torch.device("cuda"))
    assert cuda.is_cuda and torch.equal(cuda.cpu(), to_tensor(frames, torch.device("cpu")))
    back = to_pixels(cuda * 0.5, dtype)
    assert back.dtype == dtype and np.array_equal(back, to_pixels(to_tensor(frames, "cpu") * 0.5, dtype))


def test_pool_precision_is_in_the_config_hash_only_when_not_fp32() -> None:
    """bf16 changes output bytes, so its chunks never stand in for fp32 ones on a resume; fp32 jobs
    keep the hash they had before the setting existed. Tiles and compilation change only float
    rounding, as frames_per_pass does: not in the hash."""
    base = {"input": "a", "output": "b"}
    plain = load_job_spec(None, base).config_hash({})
    assert (
        load_job_spec(None, {**base, "strong_pool.precision": "fp32", "light_pool.tile": 256}).config_hash({}) == plain
    )
    changed = {
        load_job_spec(None, {**base, f"{p}.precision": "bf16"}).config_hash({}) for p in ("strong_pool", "light_pool")
    }
    assert len(changed) == 2 and plain not in changed
