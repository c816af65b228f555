"""The training run's configuration (`TrainSpec`): YAML and `pssr train` flags map onto it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.config import StrictModel, load_spec
from pipeline.training.clips import MotionRanges
from pipeline.training.degrade import KERNELS, RealisticDegradation
from pipeline.training.losses import PixelLoss

Stage = Literal["strong", "light"]
_REAL, _MOTION = RealisticDegradation(), MotionRanges()


class RealisticSpec(StrictModel):
    """The realistic track's ranges (pipeline/training/degrade.py); each optional step happens
    with its probability."""

    blur_sigma: tuple[float, float] = Field(_REAL.blur_sigma, description="Gaussian blur sigma range, LR pixels.")
    kernels: tuple[str, ...] = Field(_REAL.kernels, description=f"Downscaling kernels drawn from: {', '.join(KERNELS)}.")
    antialias_probability: float = Field(_REAL.antialias_probability, ge=0, le=1, description="Share of antialiased downscales.")
    noise_sigma: tuple[float, float] = Field(_REAL.noise_sigma, description="Noise sigma range, code values.")
    shot_noise_probability: float = Field(_REAL.shot_noise_probability, ge=0, le=1, description="Share of signal-dependent noise.")
    chroma_probability: float = Field(_REAL.chroma_probability, ge=0, le=1, description="Share of clips with chroma subsampled and bled.")
    chroma_bleed: tuple[float, float] = Field(_REAL.chroma_bleed, description="Extra horizontal chroma blur, LR pixels.")
    tape_probability: float = Field(_REAL.tape_probability, ge=0, le=1, description="Share with tape damage.")
    interlace_probability: float = Field(_REAL.interlace_probability, ge=0, le=1, description="Share woven from two fields.")
    codecs: tuple[Literal["h264", "hevc", "mpeg2", "mpeg4"], ...] = Field(_REAL.codecs, description="Codecs drawn from.")
    crf: tuple[int, int] = Field(_REAL.crf, description="CRF range of H.264 and HEVC.")
    qscale: tuple[int, int] = Field(_REAL.qscale, description="qscale range of MPEG-2 and MPEG-4 part 2.")

    @model_validator(mode="after")
    def _known_kernels(self) -> RealisticSpec:
        unknown = set(self.kernels) - set(KERNELS)
        if unknown or not self.kernels:
            raise ValueError(f"unknown kernels {sorted(unknown)}; known: {', '.join(KERNELS)}")
        return self

    def degradation(self) -> RealisticDegradation:
        return RealisticDegradation(**self.model_dump())


class MotionSpec(StrictModel):
    """How photos are filmed (pipeline/training/clips.py); speeds in LR pixels per frame."""

    max_speed: float = Field(_MOTION.max_speed, ge=0, description="Fastest pan or object, LR pixels per frame.")
    slow_share: float = Field(_MOTION.slow_share, ge=0, le=1, description="Share of moves under 1 px/frame.")
    fast_share: float = Field(_MOTION.fast_share, ge=0, le=1, description="Share of moves over 4 px/frame.")
    max_zoom: float = Field(_MOTION.max_zoom, ge=0, lt=0.1, description="Relative zoom per frame.")
    max_rotate_deg: float = Field(_MOTION.max_rotate_deg, ge=0, le=5, description="Rotation per frame, degrees.")
    shake_probability: float = Field(_MOTION.shake_probability, ge=0, le=1, description="Share of hand-held clips.")
    max_shake: float = Field(_MOTION.max_shake, ge=0, description="Hand-held jitter, LR pixels (std).")
    object_probability: float = Field(_MOTION.object_probability, ge=0, le=1, description="Share with moving objects.")
    max_objects: int = Field(_MOTION.max_objects, ge=1, description="Most objects in a clip.")
    blur_probability: float = Field(_MOTION.blur_probability, ge=0, le=1, description="Share with motion blur.")
    max_reduce: float = Field(_MOTION.max_reduce, ge=1, description="Most photo pixels per HR pixel.")

    def ranges(self) -> MotionRanges:
        return MotionRanges(**self.model_dump())


class StrongStage(StrictModel):
    """How the strong model is trained."""

    steps: int = Field(4000, ge=1)
    lr: float = Field(2e-3, gt=0, description="Peak learning rate (AdamW, linear warm-up, cosine decay).")
    warmup_steps: int = Field(100, ge=0)
    pixel_loss: PixelLoss = "charbonnier"
    temporal_weight: float = Field(0.3, ge=0, description="λ of the temporal-consistency term.")
    realistic_fraction: float = Field(0.3, ge=0, le=1, description="Share of clips on the realistic track.")
    init: str | None = Field(
        None,
        description="Weight file to start from (this size, any scale: layers whose shape differs, such as the "
        "strong model's reconstruction at another scale, start fresh).",
    )
    init_sha256: str | None = Field(None, description="sha256 the init file must have (recipes pin it).")


class LightStage(StrongStage):
    """How the light model is trained. It polishes edges, where squared error gathers: with
    L1's sign gradient the flat areas, which a small model cannot improve, swamp the signal
    (measured: no gain over the strong output with Charbonnier, a gain with MSE). BI clips only:
    trained on blurred inputs too it learns a sharpening that overshoots on clean ones."""

    steps: int = Field(1000, ge=1)
    lr: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW, linear warm-up, cosine decay).")
    pixel_loss: PixelLoss = "mse"
    temporal_weight: float = Field(0.0, ge=0, description="λ of the temporal-consistency term.")
    realistic_fraction: float = Field(0.0, ge=0, le=1, description="Share of clips on the realistic track.")


class TrainSpec(StrictModel):
    data: list[str] = Field(min_length=1, description="Folders (or files) of still images and/or videos.")
    out: str = Field("train-out", description="Folder for checkpoints, weights and the training record.")
    model: str = Field("tiny", description="Registry size to train (both kinds).")
    scale: Literal[2, 3, 4] = 4
    stages: list[Stage] = Field(
        ["strong", "light"], min_length=1, description="Strong first, then light on its output."
    )
    strong: StrongStage = Field(default_factory=StrongStage)
    light: LightStage = Field(default_factory=LightStage)
    batch: int = Field(8, ge=1, description="Clips per step.")
    frames: int = Field(7, ge=2, description="Frames per clip.")
    patch: int = Field(32, ge=8, description="LR patch side; HR patches are patch * scale.")
    realistic: RealisticSpec = Field(default_factory=RealisticSpec)
    motion: MotionSpec = Field(default_factory=MotionSpec)
    max_side: int = Field(2048, ge=64, description="Photos are area-reduced to this longer side at load.")
    flow_margin: int = Field(
        16,
        ge=0,
        description="LR pixels of context around each patch that the flow is estimated on (as a whole frame's "
        "flow sees beyond any patch of it); the model sees the patch only.",
    )
    seed: int = 0
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Autocast precision (CUDA only).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores).")
    checkpoint_every: int = Field(200, ge=1)
    eval_every: int = Field(250, ge=1)
    strong_weights: str | None = Field(
        None,
        description="Frozen strong weights for a light-only run (default: this run's, else the registered).",
    )

    @model_validator(mode="after")
    def _stages_in_order(self) -> TrainSpec:
        if self.stages != sorted(set(self.stages), key=["strong", "light"].index):
            raise ValueError("stages run strong then light, each once")
        return self

    def stage(self, kind: Stage) -> StrongStage:
        return self.strong if kind == "strong" else self.light

    @property
    def hr_patch(self) -> int:
        return self.patch * self.scale


def load_train_spec(yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainSpec:
    return load_spec(TrainSpec, yaml_path, overrides, "training")
