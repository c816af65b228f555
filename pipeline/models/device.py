"""The one place where a device request ('auto', 'cpu', 'cuda', 'cuda:N') becomes a torch.device."""

from __future__ import annotations

import torch


def pick_device(requested: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; asking for CUDA without it is an error, not a silent CPU run."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but CUDA is not available on this machine")
        device = torch.device(requested)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return device
    raise ValueError(f"unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
