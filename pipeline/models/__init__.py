"""The two super-resolution models (torch, Ray-free), classical stand-ins, their registry and
verified weights."""

from pipeline.models.classical import BicubicSR, IdentitySR, LanczosSR, lanczos_upscale
from pipeline.models.device import pick_device
from pipeline.models.light import LightSR
from pipeline.models.registry import MODELS, SCALES, ModelSpec, Registry, WeightFile, get_spec
from pipeline.models.strong import StrongSR, bicubic_upscale
from pipeline.models.weights import ModelInfo, WeightsError, find_weights, load_model, model_info, weights_sha256

__all__ = [
    "MODELS",
    "SCALES",
    "BicubicSR",
    "IdentitySR",
    "LanczosSR",
    "LightSR",
    "ModelInfo",
    "ModelSpec",
    "Registry",
    "StrongSR",
    "WeightFile",
    "WeightsError",
    "bicubic_upscale",
    "find_weights",
    "get_spec",
    "lanczos_upscale",
    "load_model",
    "model_info",
    "pick_device",
    "weights_sha256",
]
