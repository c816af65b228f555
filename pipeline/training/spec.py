"""The training run's configuration (`TrainSpec`): YAML and `pssr train` flags map onto it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.config import StrictModel, load_spec
from pipeline.training.clips import CameraMotion
from pipeline.training.degrade import RealisticDegradation
from pipeline.training.losses import PixelLoss

Stage = Literal["strong", "light"]


class RealisticSpec(StrictModel):
    blur_sigma: tuple[float, float] = Field(
        RealisticDegradation.blur_sigma,
        description="Gaussian blur sigma range, LR pixels.",
    )
    noise_sigma: tuple[float, float] = Field(
        RealisticDegradation.noise_sigma, description="Noise sigma range, code values."
    )
    crf: tuple[int, int] = Field(
        RealisticDegradation.crf,
        description="libx264 CRF range of the H.264 round trip.",
    )
    interlace_probability: float = Field(0.0, ge=0, le=1, description="Share of clips woven from two fields.")

    def degradation(self) -> RealisticDegradation:
        return RealisticDegradation(**self.model_dump())


class MotionSpec(StrictModel):
    max_pan: float = Field(CameraMotion.max_pan, ge=0, description="Camera pan per frame, HR pixels.")
    max_zoom: float = Field(CameraMotion.max_zoom, ge=0, lt=0.1, description="Relative zoom per frame.")
    max_rotate_deg: float = Field(
        CameraMotion.max_rotate_deg,
        ge=0,
        le=5,
        description="Rotation per frame, degrees.",
    )
    max_reduce: float = Field(CameraMotion.max_reduce, ge=1, description="Most photo pixels per HR pixel.")

    def motion(self) -> CameraMotion:
        return CameraMotion(**self.model_dump())


class StrongStage(StrictModel):
    """How the strong model is trained."""

    steps: int = Field(4000, ge=1)
    lr: float = Field(2e-3, gt=0, description="Peak learning rate (AdamW, linear warm-up, cosine decay).")
    warmup_steps: int = Field(100, ge=0)
    pixel_loss: PixelLoss = "charbonnier"
    temporal_weight: float = Field(0.3, ge=0, description="λ of the temporal-consistency term.")
    realistic_fraction: float = Field(0.3, ge=0, le=1, description="Share of clips on the realistic track.")


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
    max_side: int = Field(1280, ge=64, description="Photos are area-reduced to this longer side at load.")
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
