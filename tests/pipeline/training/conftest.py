"""Photo files made for the training tests: textured, with edges at every angle, any size."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """RGB uint8: smooth colour fields, sharp discs and fine stripes (something to super-resolve)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [128 + 90 * np.sin(x / rng.uniform(20, 60) + c) * np.cos(y / rng.uniform(20, 60)) for c in range(3)],
        -1,
    )
    for _ in range(12):
        cy, cx, r = (
            rng.uniform(0, height),
            rng.uniform(0, width),
            rng.uniform(5, width / 6),
        )
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    stripes = (np.sin((x * np.cos(0.7) + y * np.sin(0.7)) / 1.6) > 0) * 60.0
    img[: height // 3] += stripes[: height // 3, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """A PNG written with PyAV (no imaging library needed)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = (
            rgb.shape[1],
            rgb.shape[0],
            "rgb24",
        )
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (h, w) in enumerate([(300, 420), (360, 360), (280, 500)]):
        write_image(folder / f"photo{i}.png", textured_image(h, w, seed=i))
    (folder / "notes.txt").write_text("not a photo")
    return folder
