"""A segment's metrics onto its record, as the light stage takes them (the definitions:
pipeline/quality/metrics.py and docs/manifest.md, "Metric definitions")."""

from __future__ import annotations

import math

import torch

from pipeline.quality import metrics
from pipeline.segment import SegmentRecord


def _measured(value: float) -> float | None:
    """A metric's value; None where it is not taken (NaN: a one-frame segment's tfs, say)."""
    return None if math.isnan(value) else float(value)


@torch.inference_mode()
def measure(segment: SegmentRecord, lr: torch.Tensor, strong: torch.Tensor, out: torch.Tensor, scale: int) -> None:
    """The no-reference metrics of the segment's core frames, and the frames where tfs, flicker and
    lr_psnr are worst (video frame indices)."""
    found = metrics.bicubic_metrics(out, lr, scale)
    lr_psnr, lr_psnr_worst = metrics.lr_psnr_and_worst(out, lr, scale)
    first = segment.core_start
    segment.tfs = _measured(found.tfs)
    segment.flicker = _measured(found.flicker)
    segment.lr_psnr = _measured(lr_psnr)
    segment.detail_gain = _measured(found.detail_gain)
    segment.light_delta = _measured(metrics.light_delta(out, strong))
    segment.tfs_worst_frame = None if found.tfs_worst is None else first + found.tfs_worst
    segment.flicker_worst_frame = None if found.flicker_worst is None else first + found.flicker_worst
    segment.lr_psnr_worst_frame = first + lr_psnr_worst


@torch.inference_mode()
def measure_against_reference(segment: SegmentRecord, out: torch.Tensor, reference: torch.Tensor) -> None:
    """Benchmark mode: the output's core frames against the HR reference's."""
    segment.psnr = _measured(metrics.psnr(out, reference))
    segment.ssim = _measured(metrics.ssim(out, reference))
    segment.ewarp = _measured(metrics.ewarp(out, reference))
