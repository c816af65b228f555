"""Training: the strong model on LR clips, then the light model on the frozen strong model's output.

Every step's batch is a pure function of (seed, step), so a run resumed from its checkpoint
draws exactly the batches it would have drawn, and two runs with one seed match. Checkpoints
are safetensors (model and optimizer tensors, JSON metadata), written atomically: no pickle.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from pipeline.host_memory import keep_freed_memory
from pipeline.models.device import pick_device
from pipeline.models.registry import Kind, get_spec, weight_filename
from pipeline.models.strong import bicubic_upscale
from pipeline.models.weights import load_model, read_verified, serialize, sha256_bytes
from pipeline.quality.metrics import psnr
from pipeline.training.clips import make_clip
from pipeline.training.degrade import bicubic_lr, realistic_lr
from pipeline.training.losses import sr_loss
from pipeline.training.sources import Source, load_sources
from pipeline.training.spec import Stage, TrainSpec

EVAL_SEED_OFFSET = 1_000_003  # the fixed evaluation batches are drawn from seeds no step uses
EVAL_BATCHES = 2


class ClipBatches:
    """(LR, HR) batches of clips, (B, T, 3, p + 2m, p + 2m) and (B, T, 3, p·s, p·s): the LR clip
    keeps a margin of m = `flow_margin` pixels around the patch the HR reference covers, for the
    flow (a whole frame's flow sees beyond any patch of it); `Trainer._inputs` crops it."""

    def __init__(self, sources: list[Source], spec: TrainSpec) -> None:
        self.sources, self.spec = sources, spec

    def batch(self, seed: int, realistic_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spec
        s, m = spec.scale, spec.flow_margin
        side = (spec.patch + 2 * m) * s
        gen = torch.Generator().manual_seed(seed)
        lrs, hrs = [], []
        for _ in range(spec.batch):
            source = self.sources[int(torch.randint(len(self.sources), (), generator=gen))]
            hr = make_clip(source, spec.frames, (side, side), s, gen, spec.motion.ranges())
            if torch.rand((), generator=gen).item() < realistic_fraction:
                lr = realistic_lr(hr, s, gen, spec.realistic.degradation())
            else:
                lr = bicubic_lr(hr, s)
            lrs.append(lr)
            hrs.append(hr[..., m * s : side - m * s, m * s : side - m * s])
        return torch.stack(lrs), torch.stack(hrs)


@dataclass
class StageResult:
    kind: Kind
    steps: int
    seconds: float
    eval_psnr: float
    eval_bicubic_psnr: float
    weights: Path
    sha256: str


class Progress:
    """One updating line on a terminal; a plain log line every `every` steps otherwise."""

    def __init__(self, label: str, total: int, every: int, echo: Callable[[str], None]) -> None:
        self.label, self.total, self.every, self.echo = label, total, every, echo
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.first_step: int | None = None

    def update(self, step: int, loss: float, frames_per_s: float) -> None:
        if self.first_step is None:
            self.first_step = step
        done = step - self.first_step + 1
        rate = done / max(time.monotonic() - self.started, 1e-9)
        eta = (self.total - step - 1) / rate if rate else math.inf
        line = (
            f"[{self.label}] step {step + 1}/{self.total} loss {loss:.4f} "
            f"{rate:.2f} step/s {frames_per_s:.0f} frames/s eta {eta / 60:.1f} min"
        )
        if self.tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif (step + 1) % self.every == 0 or step + 1 == self.total:
            self.echo(line)

    def message(self, line: str) -> None:
        if self.tty:
            print(file=sys.stderr)
        self.echo(line)


def _lr_at(peak: float, warmup: int, step: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, spec: TrainSpec) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).contiguous()
    meta = {"step": str(step), "spec": spec.model_dump_json()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the previous checkpoint


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Restore model and optimizer; returns the number of steps already done."""
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    with safe_open(str(path), framework="pt") as f:
        return int(f.metadata()["step"])


def _break_symmetry(model: nn.Module) -> None:
    """Give the light model's zero-initialised output conv (the honest start: identity output)
    small random weights before training: a zero output layer passes no gradient to the body,
    and the light model's small body found no direction on its own (measured: no gain in 150
    steps). The strong model grows from its zero start as it is: its output conv learns from
    the random features of its wider body."""
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    if not last.weight.any():
        nn.init.normal_(last.weight, std=1e-3)


def _autocast(spec: TrainSpec, device: torch.device) -> torch.autocast:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.precision)
    return torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda" and dtype is not None)


class Trainer:
    def __init__(self, spec: TrainSpec, echo: Callable[[str], None] = print) -> None:
        keep_freed_memory()  # each step allocates the same large batches again (pipeline/host_memory.py)
        if spec.threads:
            torch.set_num_threads(spec.threads)
        self.spec, self.echo = spec, echo
        self.device = pick_device(spec.device)
        if spec.precision != "fp32" and self.device.type != "cuda":
            echo(f"precision {spec.precision} applies on CUDA only; training in fp32 on {self.device}")
        self.out = Path(spec.out)
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        sources = load_sources(spec.data, spec.max_side, min_side=(spec.patch + 2 * spec.flow_margin) * spec.scale + 16)
        echo(f"training data: {len(sources)} file(s) under {', '.join(spec.data)}")
        self.batches = ClipBatches(sources, spec)

    def run(self) -> list[StageResult]:
        results = []
        for stage in self.spec.stages:
            results.append(self.train_stage(stage))
        record = {
            "spec": json.loads(self.spec.model_dump_json()),
            "torch": torch.__version__,
            "results": [{**r.__dict__, "weights": str(r.weights)} for r in results],
        }
        (self.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        return results

    def _frozen_strong(self) -> nn.Module:
        spec = self.spec
        path = (
            Path(spec.strong_weights)
            if spec.strong_weights
            else self.out / weight_filename("strong", spec.model, spec.scale)
        )
        if spec.strong_weights or path.is_file():
            model = get_spec("strong", spec.model).build(spec.scale)
            model.load_state_dict(load_file(str(path)))  # this run's own output, or a file the user named
            return model.to(self.device).eval()
        return load_model("strong", spec.model, spec.scale, self.device)[0]

    def train_stage(self, kind: Stage) -> StageResult:
        spec, device = self.spec, self.device
        stage = spec.stage(kind)
        total = stage.steps
        torch.manual_seed(spec.seed)
        model = get_spec(kind, spec.model).build(spec.scale)
        if stage.init:
            self._start_from(model, stage.init, stage.init_sha256)
        elif kind == "light":
            _break_symmetry(model)
        model = model.to(device)
        strong = self._frozen_strong() if kind == "light" else None
        opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=0.0)
        scaler = torch.amp.GradScaler(device.type, enabled=spec.precision == "fp16" and device.type == "cuda")
        ckpt = self.out / "checkpoints" / f"{kind}_{spec.model}_x{spec.scale}.safetensors"
        start = _load_checkpoint(ckpt, model, opt) if ckpt.is_file() else 0
        if start:
            self.echo(f"[{kind}] resuming at step {start} from {ckpt}")
        progress = Progress(f"{kind} x{spec.scale}", total, spec.eval_every, self.echo)
        began = time.monotonic()
        # The next step's batch is made on a second thread while this one trains (a batch is a
        # pure function of its seed, so the order of work does not change it).
        pool = ThreadPoolExecutor(max_workers=1)
        seed_of = lambda i: spec.seed * 1_000_000 + i  # noqa: E731
        upcoming = pool.submit(self.batches.batch, seed_of(start), stage.realistic_fraction)
        for step in range(start, total):
            batch = upcoming.result()
            if step + 1 < total:
                upcoming = pool.submit(self.batches.batch, seed_of(step + 1), stage.realistic_fraction)
            lr, hr = (t.to(device, non_blocking=True) for t in batch)
            lr, motion = self._inputs(model if kind == "strong" else strong, lr)
            for group in opt.param_groups:
                group["lr"] = _lr_at(stage.lr, stage.warmup_steps, step, total)
            t0 = time.monotonic()
            model.train()
            with _autocast(spec, device):
                out = self._forward(kind, model, strong, lr, motion)
                loss = sr_loss(out.float(), hr, stage.pixel_loss, stage.temporal_weight, motion)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            progress.update(
                step,
                loss.item(),
                hr.shape[0] * hr.shape[1] / max(time.monotonic() - t0, 1e-9),
            )
            if (step + 1) % spec.checkpoint_every == 0 or step + 1 == total:
                _save_checkpoint(ckpt, model, opt, step + 1, spec)
            if (step + 1) % spec.eval_every == 0 and step + 1 < total:
                got, base = self.evaluate(kind, model, strong)
                progress.message(
                    f"[{kind} x{spec.scale}] step {step + 1}: eval PSNR {got:.2f} dB (bicubic {base:.2f} dB)"
                )
        pool.shutdown()
        got, base = self.evaluate(kind, model, strong)
        progress.message(f"[{kind} x{spec.scale}] done: eval PSNR {got:.2f} dB (bicubic {base:.2f} dB)")
        data = serialize(get_spec(kind, spec.model), spec.scale, model.cpu())
        path = self.out / weight_filename(kind, spec.model, spec.scale)
        path.write_bytes(data)
        sha = sha256_bytes(data)
        self.echo(f"[{kind} x{spec.scale}] weights {path} sha256 {sha}")
        return StageResult(kind, total, time.monotonic() - began, got, base, path, sha)

    def _start_from(self, model: nn.Module, path: str, sha256: str | None) -> None:
        """Load the tensors of `path` whose names and shapes fit; the others keep their start."""
        tensors = read_verified(Path(path), sha256) if sha256 else load_file(path)
        own = model.state_dict()
        fitting = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(fitting, strict=False)
        fresh = sorted(set(own) - set(fitting))
        self.echo(f"started from {path}: {len(fitting)} tensors" + (f"; fresh: {', '.join(fresh)}" if fresh else ""))

    def _inputs(self, strong: nn.Module | None, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The LR patch and its flow, estimated on the patch with its margin, then cropped."""
        m = self.spec.flow_margin
        motion = strong.motion(lr) if hasattr(strong, "motion") else None
        crop = (..., slice(m, lr.shape[-2] - m), slice(m, lr.shape[-1] - m))
        return lr[crop], None if motion is None else motion[crop]

    @staticmethod
    def _forward(
        kind: Stage, model: nn.Module, strong: nn.Module | None, lr: torch.Tensor, motion: torch.Tensor | None
    ) -> torch.Tensor:
        if kind == "strong":
            return model(lr, None, motion)
        assert strong is not None
        with torch.no_grad():
            base = strong(lr, None, motion)
        return model(base.flatten(0, 1)).view(base.shape)

    @torch.no_grad()
    def evaluate(self, kind: Stage, model: nn.Module, strong: nn.Module | None) -> tuple[float, float]:
        """PSNR of the stage's output and of bicubic on fixed held-back batches of the training sources."""
        model.eval()
        outs, bics, refs = [], [], []
        for i in range(EVAL_BATCHES):
            seed = self.spec.seed + EVAL_SEED_OFFSET + i
            lr, hr = (t.to(self.device) for t in self.batches.batch(seed, self.spec.stage(kind).realistic_fraction))
            lr, motion = self._inputs(model if kind == "strong" else strong, lr)
            with _autocast(self.spec, self.device):
                outs.append(self._forward(kind, model, strong, lr, motion).float().flatten(0, 1).clamp(0, 1))
            bics.append(bicubic_upscale(lr.flatten(0, 1), self.spec.scale).clamp(0, 1))
            refs.append(hr.flatten(0, 1))
        ref = torch.cat(refs)
        return psnr(torch.cat(outs), ref), psnr(torch.cat(bics), ref)


def train(spec: TrainSpec, echo: Callable[[str], None] = print) -> list[StageResult]:
    return Trainer(spec, echo).run()
