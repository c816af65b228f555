"""Content-based scene-cut detection on small RGB frames.

The same idea as PySceneDetect's ContentDetector (mean absolute change of hue, saturation
and value between consecutive frames, in OpenCV's 8-bit HSV scale so its default threshold
of 27 means the same here). It is our own because the probe already decodes every frame
once: detecting cuts in that pass avoids a second decode, and PySceneDetect would add
OpenCV as a dependency.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# Cheap size the probe scales frames to before detection; the mean change barely depends on it.
DETECT_SIZE = (64, 36)


def hsv(rgb: np.ndarray) -> np.ndarray:
    """OpenCV-style 8-bit HSV as float32: H in [0, 180), S and V in [0, 255]."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    chroma = v - rgb.min(axis=-1)
    s = np.where(v > 0, 255.0 * chroma / np.maximum(v, 1e-6), 0.0)
    safe = np.maximum(chroma, 1e-6)
    h = np.where(
        v == r,
        60.0 * (g - b) / safe,
        np.where(v == g, 120.0 + 60.0 * (b - r) / safe, 240.0 + 60.0 * (r - g) / safe),
    )
    h = np.where(chroma > 0, np.mod(h, 360.0), 0.0) / 2.0
    return np.stack([h, s, v], axis=-1)


class ContentDetector:
    """Feed consecutive small RGB frames; `push` says whether a frame starts a new scene.

    A cut is a frame whose mean |ΔH|, |ΔS|, |ΔV| (averaged over the three) against the previous
    frame reaches `threshold`, at least `min_scene_frames` after the previous cut (or the start),
    so flashes and fast motion do not split a video into tiny scenes.
    """

    def __init__(self, threshold: float = 27.0, min_scene_frames: int = 8) -> None:
        self.threshold = threshold
        self.min_scene_frames = min_scene_frames
        self._previous: np.ndarray | None = None
        self._index = -1
        self._last_cut = 0

    def score(self, rgb_small: np.ndarray) -> float | None:
        """Change from the previous frame (None for the first); remembers this frame."""
        current = hsv(rgb_small)
        previous, self._previous = self._previous, current
        return None if previous is None else frame_change(previous, current)

    def push(self, rgb_small: np.ndarray) -> bool:
        return self.push_change(self.score(rgb_small))

    def push_change(self, change: float | None) -> bool:
        """The rule alone, on the next frame's change against the one before it (None for the
        first frame): sharded planning joins changes its ranges measured (pipeline/media/ranges.py)."""
        self._index += 1
        if change is None or change < self.threshold or self._index - self._last_cut < self.min_scene_frames:
            return False
        self._last_cut = self._index
        return True


def frame_change(previous_hsv: np.ndarray, current_hsv: np.ndarray) -> float:
    """Mean |ΔH|, |ΔS|, |ΔV| between two frames in `hsv` form, averaged over the three."""
    return float(np.abs(current_hsv - previous_hsv).mean(axis=(0, 1)).mean())


def detect_cuts(frames: Iterable[np.ndarray], threshold: float = 27.0, min_scene_frames: int = 8) -> list[int]:
    """Indices of the frames that start a new scene (never 0)."""
    detector = ContentDetector(threshold, min_scene_frames)
    return [i for i, frame in enumerate(frames) if detector.push(frame)]
