"""Named model sizes (BasicSR-style registry): architecture settings and, per scale, the weight file
and its sha256.

`tiny` ships in the package (pipeline/models/weights/), trained at every scale: its sha256 values
are the ones `pssr train` prints for the files it writes (docs/training.md). `base` and `large`
ship no weights: their files are looked for in the job's `weights_dir`, and their sha256 values
are those of the untrained honest starts `python -m pipeline.models.make_initial_weights --sizes
base large --out DIR` writes (bicubic / identity output) until trained weights replace them. The
classical methods (`bicubic`, `lanczos` strong, `none` light; pipeline/models/classical.py) have
no weights at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from torch import nn

from pipeline.models.classical import BicubicSR, IdentitySR, LanczosSR
from pipeline.models.light import LightSR
from pipeline.models.strong import StrongSR

Kind = Literal["strong", "light"]
SCALES: tuple[int, ...] = (2, 3, 4)
T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object; refuses a duplicate name, lists the known names for an unknown one."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise KeyError(f"{self._what} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self._what} {name!r}; known: {', '.join(sorted(self._items))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


@dataclass(frozen=True)
class WeightFile:
    filename: str
    sha256: str
    bundled: bool  # shipped in pipeline/models/weights/ (else expected in weights_dir)
    trained: bool = False  # False: the honest start of make_initial_weights (bicubic / identity output)


@dataclass(frozen=True)
class ModelSpec:
    kind: Kind
    name: str
    arch: dict[str, Any]
    # scale -> file; a scale absent: none published. None: a method that needs no weights.
    weights: dict[int, WeightFile] | None = field(default_factory=dict)
    module: type[nn.Module] | None = None  # default: StrongSR / LightSR by kind

    @property
    def needs_weights(self) -> bool:
        return self.weights is not None

    def build(self, scale: int) -> nn.Module:
        """A freshly initialised model (honest start: bicubic / identity output)."""
        if scale not in SCALES:
            raise ValueError(f"scale {scale} is not supported; supported: {SCALES}")
        if self.kind == "strong":
            return (self.module or StrongSR)(scale=scale, **self.arch)
        return (self.module or LightSR)(**self.arch)


MODELS: dict[Kind, Registry[ModelSpec]] = {"strong": Registry("strong model"), "light": Registry("light model")}


def register(spec: ModelSpec) -> ModelSpec:
    return MODELS[spec.kind].register(spec.name, spec)


def get_spec(kind: Kind, name: str) -> ModelSpec:
    if kind not in MODELS:
        raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(MODELS)}")
    return MODELS[kind].get(name)


def weight_filename(kind: Kind, name: str, scale: int) -> str:
    return f"{kind}_{name}_x{scale}.safetensors"


def _files(kind: Kind, name: str, sha256: dict[int, str], bundled: bool) -> dict[int, WeightFile]:
    return {
        s: WeightFile(weight_filename(kind, name, s), sha, bundled, trained=(kind, name, s) in _TRAINED)
        for s, sha in sha256.items()
    }


# Sizes. tiny: the CPU default, ~2.7 GMAC per 640x360 output frame for the pair at x4.
# base: a GPU size (~35M strong, ~1M light). large: the published split (~428M strong, ~8M light).
_ARCH: dict[Kind, dict[str, dict[str, Any]]] = {
    "strong": {
        "tiny": {"dim": 32, "n_blocks": 3, "heads": 2, "window": 1, "patch": 1, "neighbourhood": 1, "max_flow": 24},
        "base": {"dim": 384, "n_blocks": 8, "heads": 6, "window": 1, "patch": 2, "neighbourhood": 3, "max_flow": 48},
        "large": {
            # 14 blocks at MLP ratio 2: the published ~420M split with the aligned fusion's weights.
            "dim": 1024, "n_blocks": 14, "heads": 16, "window": 1, "patch": 2, "mlp_ratio": 2.0, "neighbourhood": 3,
            "max_flow": 48,
        },
    },
    "light": {
        "tiny": {"features": 24, "n_convs": 3, "unshuffle": 2},
        "base": {"features": 96, "n_convs": 12},
        "large": {"features": 192, "n_convs": 24},
    },
}

# Honest-start weights printed by `python -m pipeline.models.make_initial_weights` (tiny) and
# `... --sizes base large --out DIR` (regenerate base/large files that way, e.g. for GPU
# throughput runs); replace each line when trained weights land.
_SHA256: dict[tuple[Kind, str], dict[int, str]] = {
    ("strong", "tiny"): {
        2: "04e7f224e7a927c2eecda61c9213c3a976224e5a3a056ae2c2eb47a1981aaa9d",
        3: "1c545b2adc5da7b3d5014c69e482a325958c76a6b0a136c6e158a00c587d6c24",
        4: "a4eccfdcca837c6af15529c252d18dd51e62219677565da3a4393ed2e768edee",
    },
    ("light", "tiny"): {
        2: "58c4c6393b1c8161bd17c01b7866b07bea09fd3fef2ac3be853cbd6f7c0d9788",
        3: "c5421d94d5548c9cb211cc1e60864327b759b9039473bb74bacb56805638405f",
        4: "09d7ba956067a91af66683857a732d3a2a28835ea39ee80f79ab9f7943f0e0e2",
    },
    ("strong", "base"): {
        2: "659d106330254e257c8e824fb074789a34ecf4d2060d3bf6600bc9efcb5aa2a2",
        3: "3f49529a578c8e29fb00b8ca7f1903418c08187fcdb23969a4037dc95fea1d70",
        4: "b42f68351e84ba205f4529e2c3d3a624ca5464fd7b814d6909dabb4f414bf025",
    },
    ("light", "base"): {
        2: "c2021c79784c18743364be1080afb570995c3d6ad9289ea85b8a55cb03d549f0",
        3: "e29830edd3455b05a46267834e6e3e640e4cfd314f8bbfb58d9bf80541894cf3",
        4: "acd7e262948352c63894ffdd99b09800c9671970bc7c495e92bc69246431026c",
    },
    ("strong", "large"): {
        2: "ade11e8c0dd13138640203303a2ec455f0118aaef81811d508a35a3a31afdf90",
        3: "7ca384a7e5f6414a56669cad4cc38fe84d3d9641fb2c7040914ee6262a648466",
        4: "44e5a120744d5e87f72ac79220f7b255b097357e4481655d513be7b57942f85b",
    },
    ("light", "large"): {
        2: "ee956113231dcb2ac9fe534f228ec35467cd946c51936c818b569d6e8f0071de",
        3: "0821fb6e82043135f5152cce2655aaf906308bb1cf86c77691f186970ea9863c",
        4: "e61a21df305e7ea8be0ddfb017b5ee13fbdb04ca29066996c98733d08ee06135",
    },
}

# Weight files that are trained (jobs/train/train.py; see docs/models/); the rest are honest starts.
_TRAINED: set[tuple[Kind, str, int]] = {(kind, "tiny", scale) for kind in ("strong", "light") for scale in (2, 3, 4)}

for _kind, _sizes in _ARCH.items():
    for _name, _arch in _sizes.items():
        register(ModelSpec(_kind, _name, _arch, _files(_kind, _name, _SHA256.get((_kind, _name), {}), _name == "tiny")))

# Classical methods, for benchmarks through the same pipeline (no weights, nothing to verify).
register(ModelSpec("strong", "bicubic", {}, weights=None, module=BicubicSR))
register(ModelSpec("strong", "lanczos", {}, weights=None, module=LanczosSR))
register(ModelSpec("light", "none", {}, weights=None, module=IdentitySR))
