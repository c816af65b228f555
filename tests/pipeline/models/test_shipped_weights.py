"""The shipped tiny weights are trained: the pair beats bicubic on a held-out photo clip.

A real check with a margin, so bicubic-equivalent weights cannot pass it: the clip is a
smooth camera move over a photo from the benchmark's package (never used in training), at
the BI degradation, and the whole pair runs as the pipeline runs it.
"""

from __future__ import annotations

import pytest

from pipeline.models.inference import run_light, run_strong
from pipeline.models.registry import SCALES, get_spec
from pipeline.models.strong import bicubic_upscale
from pipeline.models.weights import load_model
from pipeline.quality.metrics import psnr
from pipeline.training.degrade import bicubic_lr
from tests.clips import photo_clip

MARGIN_DB = 0.3


TRAINED = [s for s in SCALES if all(get_spec(kind, "tiny").weights[s].trained for kind in ("strong", "light"))]


def test_the_registry_lists_x2_and_x4_as_trained() -> None:
    assert {2, 4} <= set(TRAINED)


@pytest.mark.parametrize("scale", TRAINED)
def test_shipped_pair_beats_bicubic_on_a_held_out_clip(scale: int) -> None:
    # 144x240: whole LR frames at x2, x3 and x4
    hr = photo_clip(8, (144, 240), seed=7, max_side=400)
    lr = bicubic_lr(hr, scale)
    strong, _ = load_model("strong", "tiny", scale)
    light, _ = load_model("light", "tiny", scale)
    out = run_light(light, run_strong(strong, lr, slice(0, 8), strong.temporal_radius, 8), 8)
    bicubic = bicubic_upscale(lr, scale).clamp(0, 1)
    assert psnr(out, hr) >= psnr(bicubic, hr) + MARGIN_DB


@pytest.mark.parametrize("scale", TRAINED)
def test_shipped_strong_model_follows_a_fast_pan(scale: int) -> None:
    """At 4 LR pixels per frame (where attention without alignment fell below bicubic), the strong
    model alone beats bicubic. (What its neighbour frames add is measured, not asserted: at this
    training budget they add nothing here; docs/models/strong-tiny.md.)"""
    hr = photo_clip(8, (144, 240), seed=7, max_side=600, pan=(4.0 * scale, 1.0 * scale))
    lr = bicubic_lr(hr, scale)
    strong, _ = load_model("strong", "tiny", scale)
    out = run_strong(strong, lr, slice(0, 8), strong.temporal_radius, 8)
    bicubic = bicubic_upscale(lr, scale).clamp(0, 1)
    assert psnr(out, hr) >= psnr(bicubic, hr) + 0.1  # measured: +0.24 (x4) to +0.51 dB (x2)
