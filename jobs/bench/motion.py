"""`pssr bench quality`'s evidence that time helps: the motion sweep and the neighbour-frame ablation.

Both run the models alone, in one process, on clips with a true HR reference: every method's
output is rounded to 8 bits and scored by PSNR against the reference (the same path for all, so
no method gains from its output format). Methods: `bicubic`; `light` (the light model on
bicubic, per frame); `strong` (the strong model alone); `strong, no neighbours` (the same strong
weights with window 0: every frame upscaled from itself only, the ablation); `strong+light`.

* **Motion sweep** (`pipeline.benchset.sweep_clips`): straight pans at 0 (static), 0.25, 1, 3 and 8
  LR pixels per frame over the set's largest photos; per speed and track, each method's PSNR and
  the strong model's gains over bicubic, over the light model alone and from its neighbours.
* **Ablation** on the headline set itself (its scenes, both tracks): the strong model with and
  without its neighbour frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from jobs.bench.benchset import SWEEP_SPEEDS, TRACKS, BenchSet, sweep_clips
from jobs.bench.tables import table
from pipeline.config import JobSpec
from pipeline.media.decode import decode_frames
from pipeline.media.probe import probe_video
from pipeline.models import load_model, pick_device
from pipeline.models.inference import run_light, run_strong
from pipeline.quality.metrics import psnr
from pipeline.training.degrade import bicubic_lr, quantize, realistic_lr

METHODS = ("bicubic", "light", "strong", "strong, no neighbours", "strong+light")
GAINS = {
    "strong_over_bicubic": "strong − bicubic",
    "strong_over_light": "strong − light",
    "from_neighbours": "from neighbours",
    "light_over_strong": "light over strong",
}


@contextmanager
def without_neighbours(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The same weights with window 0: attention sees only the frame itself (R = 0)."""
    window = model.window
    model.window = 0
    try:
        yield model
    finally:
        model.window = window


class Methods:
    """The benchmark's methods on one device, with the pools' per-pass settings."""

    def __init__(self, strong: str, light: str, scale: int, job: JobSpec) -> None:
        self.device = pick_device(job.device)
        weights = job.models.weights_dir
        self.strong, _ = load_model("strong", strong, scale, self.device, weights, job.models.strong_sha256)
        self.light, _ = load_model("light", light, scale, self.device, weights, job.models.light_sha256)
        self.bicubic, _ = load_model("strong", "bicubic", scale, self.device)
        self.strong_pass, self.light_pass = job.strong_pool.frames_per_pass, job.light_pool.frames_per_pass

    def _strong(self, model: torch.nn.Module, lr: torch.Tensor) -> torch.Tensor:
        return run_strong(model, lr, slice(0, lr.shape[0]), model.temporal_radius, self.strong_pass)

    def run(self, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every method's 8-bit output for one scene's LR frames (T, 3, h, w)."""
        lr = lr.to(self.device)
        bicubic = self._strong(self.bicubic, lr)
        strong = self._strong(self.strong, lr)
        with without_neighbours(self.strong) as alone:
            strong_alone = self._strong(alone, lr)
        outs = {
            "bicubic": bicubic,
            "light": run_light(self.light, bicubic, self.light_pass),
            "strong": strong,
            "strong, no neighbours": strong_alone,
            "strong+light": run_light(self.light, strong, self.light_pass),
        }
        return {name: quantize(out).cpu() for name, out in outs.items()}


def _degrade(hr: torch.Tensor, track: str, scale: int, gen: torch.Generator) -> torch.Tensor:
    return bicubic_lr(hr, scale) if track == "bi" else realistic_lr(hr, scale, gen)


def _mean_psnr(scores: list[dict[str, float]]) -> dict[str, float]:
    return {m: sum(s[m] for s in scores) / len(scores) for m in METHODS}


def _gains(row: dict[str, Any]) -> dict[str, float]:
    """The differences the targets are about (docs/benchmarks.md), in dB; keys as GAINS."""
    return {
        "strong_over_bicubic": row["strong"] - row["bicubic"],
        "strong_over_light": row["strong"] - row["light"],
        "from_neighbours": row["strong"] - row["strong, no neighbours"],
        "light_over_strong": row["strong+light"] - row["strong"],
    }


def motion_sweep(
    photos: str | Path,
    spec: BenchSet,
    methods: Methods,
    echo: Callable[[str], None] = print,
    speeds: tuple[float, ...] = SWEEP_SPEEDS,
    clips_per_speed: int = 3,
    frames: int = 12,
) -> list[dict[str, Any]]:
    """One row per speed and track: mean PSNR (dB) of each method over the sweep's clips, and gains."""
    clips = sweep_clips(photos, spec, speeds, clips_per_speed, frames)
    rows = []
    for track in TRACKS:
        gen = torch.Generator().manual_seed(spec.seed + 4)
        by_speed: dict[float, list[dict[str, float]]] = {}
        for speed, hr in clips:
            outs = methods.run(_degrade(hr, track, spec.scale, gen))
            by_speed.setdefault(speed, []).append({m: psnr(out, hr) for m, out in outs.items()})
        for speed, scores in by_speed.items():
            row = {"track": track, "speed": speed, "clips": len(scores), **_mean_psnr(scores)}
            rows.append({**row, **_gains(row)})
            echo(f"sweep {track} {speed:g} px/frame: strong {row['strong']:.2f} dB, light {row['light']:.2f}, bicubic {row['bicubic']:.2f}")
    return rows


def _scenes(path: Path, frames: int) -> Iterator[torch.Tensor]:
    """The scenes of a bench set video, float (frames, 3, H, W)."""
    decoded = decode_frames(path, 0, probe_video(path, detect_scenes=False).n_frames).frames
    clip = torch.from_numpy(decoded).permute(0, 3, 1, 2).float() / 255.0
    yield from clip.split(frames)


def ablation(set_root: Path, spec: BenchSet, methods: Methods, echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One row per track of the headline set: every method's mean PSNR over its scenes, and gains."""
    rows = []
    for track in TRACKS:
        scores = []
        for name in spec.names():
            pairs = zip(_scenes(set_root / track / name, spec.frames), _scenes(set_root / "hr" / name, spec.frames))
            for lr, hr in pairs:
                outs = methods.run(lr)
                scores.append({m: psnr(out, hr) for m, out in outs.items()})
        row = {"track": track, "scenes": len(scores), **_mean_psnr(scores)}
        rows.append({**row, **_gains(row)})
        echo(f"ablation {track}: strong {row['strong']:.2f} dB, without neighbours {row['strong, no neighbours']:.2f} dB")
    return rows


def psnr_markdown(rows: list[dict[str, Any]], key: str, label: str) -> str:
    """One line per row: its track and `key` (speed, scenes), each method's PSNR (dB) and the gains."""
    columns = [("track", "track", "s"), (label, key, "g")]
    columns += [(m, m, ".2f") for m in METHODS] + [(header, g, "+.2f") for g, header in GAINS.items()]
    return table(rows, columns)
