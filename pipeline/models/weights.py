"""Weight files: safetensors only, each checked against its registered sha256 before use.

A classical method (registry `weights` None: bicubic, lanczos, none) has no file: it is built
as it is, and its sha256 is None wherever a model's sha256 is recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from pipeline.errors import PssrError
from pipeline.models.device import pick_device
from pipeline.models.registry import Kind, ModelSpec, WeightFile, get_spec, weight_filename

BUNDLED_DIR = Path(__file__).with_name("weights")


class WeightsError(PssrError, RuntimeError):
    """A weight file is missing, unregistered, altered or does not fit its model."""


def weight_file(kind: Kind, name: str, scale: int, sha256: str | None = None) -> WeightFile:
    """The registered file (name, sha256) of a model size at a scale.

    `sha256` names weights of the user's own (fine-tuned, say) under the registered file name;
    they are looked for in weights_dir only and checked against that sha256 instead.
    """
    spec = get_spec(kind, name)
    if not _needs_weights(spec, sha256):
        raise WeightsError(f"{kind} model {name!r} is a classical method: it has no weight file")
    if sha256 is not None:
        return WeightFile(weight_filename(kind, name, scale), sha256.lower(), bundled=False)
    try:
        return spec.weights[scale]
    except KeyError:
        raise WeightsError(
            f"no weights are registered for {kind} model {name!r} at x{scale}; "
            f"registered scales: {sorted(spec.weights) or 'none'}"
        ) from None


def _needs_weights(spec: ModelSpec, sha256: str | None) -> bool:
    """False for a classical method; a sha256 of the user's own weights makes no sense there."""
    if spec.needs_weights:
        return True
    if sha256 is not None:
        raise WeightsError(f"{spec.kind} model {spec.name!r} is a classical method: it takes no weights (sha256 given)")
    return False


def weights_sha256(kind: Kind, name: str, scale: int) -> str | None:
    """The sha256 a job records in its manifest, without reading or building anything; None
    for a classical method."""
    return weight_file(kind, name, scale).sha256 if get_spec(kind, name).needs_weights else None


def find_weights(
    kind: Kind, name: str, scale: int, weights_dir: str | Path | None = None, sha256: str | None = None
) -> Path:
    """weights_dir first (it may hold any size), then the files shipped in the package."""
    entry = weight_file(kind, name, scale, sha256)
    candidates = [Path(weights_dir) / entry.filename] if weights_dir is not None else []
    if entry.bundled:
        candidates.append(BUNDLED_DIR / entry.filename)
    for path in candidates:
        if path.is_file():
            return path
    if entry.bundled:
        raise WeightsError(
            f"bundled weight file {BUNDLED_DIR / entry.filename} is missing: the installation is incomplete"
        )
    raise WeightsError(
        f"no weights are shipped for {kind} model {name!r}: put {entry.filename} (sha256 {entry.sha256}) "
        f"in the weights folder, models.weights_dir (now {weights_dir or 'unset'}); the registered "
        f"initial weights come from `python -m pipeline.models.make_initial_weights --sizes {name} --out DIR`"
    )


@dataclass(frozen=True)
class ModelInfo:
    """What the job driver needs to know of a model without loading its weights."""

    kind: Kind
    name: str
    scale: int
    sha256: str | None  # None: a classical method, without weights
    path: Path | None
    temporal_radius: int  # R of the strong model (context frames needed); 0 for the per-frame light model
    spatial_radius: int  # pixels an output pixel sees on each side, and the tile alignment (pipeline/models/tiling.py)
    spatial_align: int


def model_info(
    kind: Kind, name: str, scale: int, weights_dir: str | Path | None = None, sha256: str | None = None
) -> ModelInfo:
    """Registry facts of a model; fails fast (WeightsError) when its weight file cannot be found.

    The file is located but not hashed here: the actors hash it when they load it.
    """
    spec = get_spec(kind, name)
    with torch.device("meta"):  # the radii are the model's own declarations; meta costs no memory
        model = spec.build(scale)
    reach = (getattr(model, "temporal_radius", 0), model.spatial_radius, model.spatial_align)
    if not _needs_weights(spec, sha256):
        return ModelInfo(kind, name, scale, None, None, *reach)
    path = find_weights(kind, name, scale, weights_dir, sha256)
    return ModelInfo(kind, name, scale, weight_file(kind, name, scale, sha256).sha256, path, *reach)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    """Hash the very bytes that get deserialised, so what is checked is what is loaded."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read weight file {path}: {exc}") from exc
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise WeightsError(f"weight file {path} has the wrong sha256: expected {expected_sha256}, actual {actual}")
    return load_safetensors(data)


def serialize(spec: ModelSpec, scale: int, model: nn.Module) -> bytes:
    """Deterministic safetensors bytes (one metadata key: several keys may be written in any order)."""
    meta = json.dumps({"kind": spec.kind, "name": spec.name, "scale": scale, "arch": spec.arch}, sort_keys=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state, metadata={"pssr": meta})


def load_model(
    kind: Kind,
    name: str,
    scale: int,
    device: torch.device | str = "cpu",
    weights_dir: str | Path | None = None,
    sha256: str | None = None,
) -> tuple[nn.Module, str | None]:
    """The registered model with its verified weights, in eval mode on `device`, and their sha256
    (None for a classical method, which is built as it is)."""
    spec = get_spec(kind, name)
    if not _needs_weights(spec, sha256):
        return spec.build(scale).to(pick_device(device)).eval(), None
    entry = weight_file(kind, name, scale, sha256)
    path = find_weights(kind, name, scale, weights_dir, sha256)
    tensors = read_verified(path, entry.sha256)
    with torch.device("meta"):  # no throwaway initialisation: the weights are assigned below
        model = spec.build(scale)
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise WeightsError(f"weight file {path} does not fit {kind} model {name!r} x{scale}: {exc}") from exc
    # Channels-last: oneDNN's convolutions run ~2x faster on CPU this way (measured once by hand), and
    # cuDNN's tensor-core kernels take it too (not measured here).
    model.to(device=pick_device(device), memory_format=torch.channels_last)
    return model.eval(), entry.sha256
