"""`pssr bench flicker`: do `tfs` and `flicker` tell detail that changes from frame to frame from
stable detail? The figures of docs/status-and-report.md, "Flicker against tfs".

Clips are made the way training makes them: each photo filmed with a straight pan
(`pipeline/training/clips.py` `film`, `Motion(pan=(v, 0.4 v), reduce=1.5)`, centred on the photo),
12 frames of 640x360 on the 8-bit grid, LR by `bicubic_lr`; x4 at 0.6 and 2.5 LR px/frame, x2 at
1.3 and 5, and the photo still at x4. Outputs, each clamped to [0, 1] as a video stores it:

    a  stable, no detail added: bicubic and Lanczos (pipeline/models/classical.py)
    b  stable, all the true detail: the HR frames
    c  detail that changes from frame to frame: HR + independent noise; HR on even frames and
       bicubic on odd (detail popping); HR and bicubic, each with an unsharp mask whose strength
       is drawn per frame
    d  stable, sharpened: the same unsharp masks at the mean strength of c's draws

plus, for reference, the shipped `tiny` pair (strong, then light). Every score is
`bicubic_metrics(out, lr, scale)`, as the light stage takes it. Each c is compared clip by clip
with the stable output of the same mean strength (PAIRS). Seeded: the same photos give the same
figures.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from jobs.bench.errors import BenchError
from jobs.bench.tables import table
from pipeline.models import load_model
from pipeline.models.classical import BicubicSR, LanczosSR
from pipeline.models.inference import run_light, run_strong
from pipeline.quality.metrics import bicubic_metrics
from pipeline.training.clips import Motion, film
from pipeline.training.degrade import bicubic_lr, gaussian_blur, quantize
from pipeline.training.sources import load_media

# Six photos of the held-out natural set (`python -m jobs.train.photos natural DIR`), by content:
# smooth sky with thin cables, foliage against sky, dense fine bristles, a hillside of forest and
# grass, a wooded stream over rocks, tree bark beside a smooth blurred background.
_BACKGROUNDS = "lomiri-wallpapers-16.04_usr_share_backgrounds_"
PHOTOS = {
    "Bridge": _BACKGROUNDS + "Bridge_by_Sander_Klootwijk.jpg",
    "Dragonfly": _BACKGROUNDS + "Dragonfly_by_Bolly.jpg",
    "Picture_1A": _BACKGROUNDS + "Picture_1A_by_freespace.jpg",
    "aitzgorri": _BACKGROUNDS + "aitzgorri_by_Aitzol_Berasategi.jpg",
    "life": _BACKGROUNDS + "life_by_Aitzol_Berasategi.jpg",
    "Kleiber": "lomiri-wallpapers-20.04_usr_share_backgrounds_Kleiber_by_Lukas_Baubkus.jpg",
}
MOVING = ((4, 0.6), (4, 2.5), (2, 1.3), (2, 5.0))  # (scale, v in LR px/frame)
STILL_SCALE = 4
NOISE_SIGMA = 2 / 255
UNSHARP_SIGMA = 1.5
MODEL = "tiny"

# Output key -> table label; the first letter is its group (a, b, c, d above; "the" for the model).
OUTPUTS = {
    "bicubic": "a: bicubic",
    "lanczos": "a: Lanczos",
    "hr": "b: true HR frames",
    "noise": "c: HR + independent noise, σ 2/255",
    "popping": "c: HR on even frames, bicubic on odd (detail popping)",
    "hr_unsharp": "d: HR, unsharp k = 0.5",
    "hr_unsharp_drawn": "c: HR, unsharp k drawn in 0-1 per frame",
    "bicubic_unsharp": "d: bicubic, unsharp k = 1",
    "bicubic_unsharp_drawn": "c: bicubic, unsharp k drawn in 0-2 per frame",
    "model": f"the `{MODEL}` pair (strong, then light), for reference",
}
STABLE = [key for key, label in OUTPUTS.items() if label[0] in "abd"]
CHANGING = [key for key, label in OUTPUTS.items() if label[0] == "c"]
PAIRS = (
    ("noise", "hr", "noise against HR"),
    ("popping", "hr", "detail popping against HR"),
    ("hr_unsharp_drawn", "hr_unsharp", "unsharp 0-1 against unsharp 0.5 (HR)"),
    ("bicubic_unsharp_drawn", "bicubic_unsharp", "unsharp 0-2 against unsharp 1 (bicubic)"),
)
METRICS = ("tfs", "flicker")


@dataclass(frozen=True)
class Cases:
    """The clips: `moving` (scale, v) per photo and one still clip at STILL_SCALE."""

    frames: int = 12
    width: int = 640  # HR
    height: int = 360
    reduce: float = 1.5  # photo pixels per HR pixel
    max_side: int = 1280  # photos are loaded at most this large, as the quality set loads them
    moving: tuple[tuple[int, float], ...] = MOVING
    seed: int = 0


def unsharp(frames: torch.Tensor, k: float | torch.Tensor) -> torch.Tensor:
    """x + k (x − gauss_1.5(x)), clamped; k a number or one per frame, (T, 1, 1, 1)."""
    return (frames + k * (frames - gaussian_blur(frames, UNSHARP_SIGMA))).clamp(0.0, 1.0)


def outputs(hr: torch.Tensor, lr: torch.Tensor, scale: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every output of OUTPUTS but the model's, for one clip."""
    bicubic = BicubicSR(scale)(lr.unsqueeze(0))[0]
    popping = hr.clone()
    popping[1::2] = bicubic[1::2]
    per_frame = (hr.shape[0], 1, 1, 1)
    return {
        "bicubic": bicubic,
        "lanczos": LanczosSR(scale)(lr.unsqueeze(0))[0],
        "hr": hr,
        "noise": (hr + NOISE_SIGMA * torch.randn(hr.shape, generator=gen)).clamp(0.0, 1.0),
        "popping": popping,
        "hr_unsharp": unsharp(hr, 0.5),
        "hr_unsharp_drawn": unsharp(hr, torch.rand(per_frame, generator=gen)),
        "bicubic_unsharp": unsharp(bicubic, 1.0),
        "bicubic_unsharp_drawn": unsharp(bicubic, 2 * torch.rand(per_frame, generator=gen)),
    }


class _Model:
    """The shipped pair at each scale, loaded once, on the CPU (the clips are short)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loaded: dict[int, tuple[torch.nn.Module, torch.nn.Module]] = {}

    def __call__(self, lr: torch.Tensor, scale: int) -> torch.Tensor:
        if scale not in self.loaded:
            self.loaded[scale] = load_model("strong", self.name, scale)[0], load_model("light", self.name, scale)[0]
        strong, light = self.loaded[scale]
        frames = lr.shape[0]
        up = run_strong(strong, lr, slice(0, frames), strong.temporal_radius, frames)
        return run_light(light, up, frames).clamp(0.0, 1.0)


def score_clips(
    photos: Path, names: dict[str, str], cases: Cases, model: str | None = MODEL, echo: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """One row per photo, clip and output: photo, scale, speed (v; 0 for the still clip), output, tfs, flicker."""
    pair = _Model(model) if model else None
    rows = []
    for p, (label, name) in enumerate(names.items()):
        path = photos / name
        if not path.is_file():
            raise BenchError(f"{photos} has no {name} (fetch the set: python -m jobs.train.photos natural {photos})")
        source = load_media(path, cases.max_side)
        for c, (scale, speed) in enumerate(((STILL_SCALE, 0.0), *cases.moving)):
            started = time.monotonic()
            gen = torch.Generator().manual_seed(cases.seed * 1000 + 10 * p + c)  # each clip its own draws
            motion = Motion(pan=(speed, 0.4 * speed), reduce=cases.reduce, centre=(0.5, 0.5))
            try:
                hr = quantize(film(source, cases.frames, (cases.height, cases.width), motion, scale, gen))
            except ValueError as exc:  # a photo too small for the clips
                raise BenchError(str(exc)) from None
            lr = bicubic_lr(hr, scale)
            outs = outputs(hr, lr, scale, gen)
            if pair:
                outs["model"] = pair(lr, scale)
            scores = {key: bicubic_metrics(out, lr, scale) for key, out in outs.items()}
            rows += [
                {"photo": label, "scale": scale, "speed": speed, "output": key, "tfs": m.tfs, "flicker": m.flicker}
                for key, m in scores.items()
            ]
            truth, took = scores["hr"], time.monotonic() - started
            clip = f"{label} x{scale} {speed:g} px/frame"
            echo(f"{clip}: HR tfs {truth.tfs:.2f}, flicker {truth.flicker:.1e} ({took:.0f} s)")
    return rows


def _number(value: float, metric: str) -> str:
    """tfs to 2 decimals; flicker in 2 significant digits, exponent without padding (2.5e-6)."""
    if metric == "tfs":
        return f"{value:.2f}"
    return "0" if value == 0 else re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:.1e}")


def by_clip(rows: list[dict[str, Any]], moving: bool) -> dict[tuple[str, int, float], dict[str, dict[str, float]]]:
    """(photo, scale, speed) -> output -> its row, for the moving clips or the still ones."""
    clips: dict[tuple[str, int, float], dict[str, dict[str, float]]] = {}
    for row in rows:
        if (row["speed"] > 0) == moving:
            clips.setdefault((row["photo"], row["scale"], row["speed"]), {})[row["output"]] = row
    return clips


def outputs_markdown(rows: list[dict[str, Any]]) -> str:
    """Per output: each metric's range (median) over the moving clips, and its largest on the still ones."""
    moving, still = by_clip(rows, True).values(), by_clip(rows, False).values()
    lines = []
    for key in [k for k in OUTPUTS if any(k in clip for clip in moving)]:
        line = {"output": OUTPUTS[key]}
        for metric in METRICS:
            values = [clip[key][metric] for clip in moving]
            line[metric] = "-".join(_number(v, metric) for v in (min(values), max(values)))
            line[metric] += f" ({_number(statistics.median(values), metric)})"
            line["still_" + metric] = _number(max(clip[key][metric] for clip in still), metric) if still else None
        lines.append(line)
    columns = [("output", "output", "s")]
    columns += [(f"{m}: range (median)", m, "s") for m in METRICS]
    columns += [(f"still: {m}, max", "still_" + m, "s") for m in METRICS]
    return table(lines, columns)


def pairs_markdown(rows: list[dict[str, Any]]) -> str:
    """Per pair: the median over the moving clips of c / its stable counterpart, and how many clips rank c worse."""
    moving = list(by_clip(rows, True).values())
    lines = []
    for changing, stable, label in PAIRS:
        line = {"pair": label}
        for metric in METRICS:
            ratios = [c[changing][metric] / c[stable][metric] if c[stable][metric] else math.inf for c in moving]
            line[metric] = f"{statistics.median(ratios):.2f}, {sum(r > 1 for r in ratios)}/{len(ratios)}"
        lines.append(line)
    return table(lines, [("c against", "pair", "s"), *((m, m, "s") for m in METRICS)])


def findings(rows: list[dict[str, Any]]) -> list[str]:
    """Within one clip, is every c above every stable output; and how far the true frames' scores
    depend on the photo."""
    moving = by_clip(rows, True)
    lines = []
    for metric in METRICS:
        apart = sum(
            min(clip[k][metric] for k in CHANGING) > max(clip[k][metric] for k in STABLE) for clip in moving.values()
        )
        lines.append(f"{metric}: every c above every stable output within one clip in {apart}/{len(moving)} clips")
    by_photo: dict[str, list[float]] = {}
    for (photo, _, _), clip in moving.items():
        by_photo.setdefault(photo, []).append(clip["hr"]["flicker"])
    medians = sorted((statistics.median(v), photo) for photo, v in by_photo.items())
    (low, low_photo), (high, high_photo) = medians[0], medians[-1]
    lines.append(
        f"true HR frames, median flicker per photo: {_number(low, 'flicker')} ({low_photo}) to "
        f"{_number(high, 'flicker')} ({high_photo}), {high / low:.0f}x"
    )
    return lines


def bench_flicker(
    photos: str | Path,
    out: str | Path,
    names: dict[str, str] = PHOTOS,
    cases: Cases = Cases(),
    model: str | None = MODEL,
    echo: Callable[[str], None] = print,
) -> str:
    """Score every clip, write OUT/flicker.parquet (every score) and OUT/flicker.md; returns the report."""
    out = Path(out)
    started = time.monotonic()
    rows = score_clips(Path(photos), names, cases, model, echo)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "flicker.parquet")
    report = "\n\n".join([outputs_markdown(rows), pairs_markdown(rows), "\n".join(findings(rows))])
    (out / "flicker.md").write_text(report + "\n")
    echo(report)
    echo(f"bench: {time.monotonic() - started:.0f} s; {out / 'flicker.parquet'}, {out / 'flicker.md'}")
    return report
