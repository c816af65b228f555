"""`pssr models` and `pssr train`: the model sizes, and training them."""

from __future__ import annotations

from typing import Any

import click

from jobs.cli.options import Refused
from pipeline.config import ConfigError


@click.command()
@click.option("--scale", type=click.Choice(["2", "3", "4"]), default="4", show_default=True)
def models(scale: str) -> None:
    """List the registered models: parameters, temporal radius R, cost per output frame at
    160x90 input, and where the weights are (trained, or the bicubic-equivalent start)."""
    from pipeline.models import MODELS, get_spec
    from pipeline.models.cost import gmac_per_frame, parameters

    click.echo(f"{'kind':6} {'name':7} {'params':>12} {'R':>3} {'GMAC/frame':>10}  weights (x{scale})")
    for kind, registry in MODELS.items():
        for name in registry:
            spec = get_spec(kind, name)
            params, radius = parameters(kind, name, int(scale))
            gmac = gmac_per_frame(kind, name, int(scale))
            if not spec.needs_weights:
                where = "not needed (classical)"
            elif entry := spec.weights.get(int(scale)):
                state = "trained" if entry.trained else "bicubic start"
                where = f"bundled, {state}" if entry.bundled else f"weights_dir: {entry.filename} ({state})"
            else:
                where = "none"
            click.echo(f"{kind:6} {name:7} {params:>12,} {radius:>3} {gmac:>10.3f}  {where}")


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="YAML training file (a TrainSpec).")
@click.option("--out", help="Folder for checkpoints, weights and training.json (resumes from its checkpoints).")
@click.option("--model", help="Registry size to train.  [default: tiny]")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), help="Upscaling factor.  [default: 4]")
@click.option("--stages", help="Comma-separated: strong, light or strong,light.  [default: strong,light]")
@click.option("--strong-steps", type=int)
@click.option("--light-steps", type=int)
@click.option("--batch", type=int, help="Clips per step.")
@click.option("--patch", type=int, help="LR patch side.")
@click.option("--seed", type=int)
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="Autocast precision on CUDA.")
def train(data: tuple[str, ...], config: str | None, **options: Any) -> None:
    """Train the strong model on clips made from DATA (folders of photos and/or videos), then
    the light model on the frozen strong model's output; prints each weight file's sha256."""
    from jobs.train.train import train as run_training
    from pipeline.training.spec import load_train_spec

    if options.get("scale"):
        options["scale"] = int(options["scale"])
    if options.get("stages"):
        options["stages"] = [s.strip() for s in options["stages"].split(",")]
    options["strong.steps"] = options.pop("strong_steps")
    options["light.steps"] = options.pop("light_steps")
    from pipeline.training.sources import SourceError

    try:
        spec = load_train_spec(config, {"data": list(data), **options})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        run_training(spec, echo=click.echo)
    except SourceError as exc:
        raise Refused(str(exc)) from None
