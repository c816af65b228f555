"""With context >= the strong model's radius R, segmenting a video changes nothing.

Compared on lossless FFV1 outputs of a strong model with random, non-zero weights (the shipped
start weights are bicubic, which would make any segmentation look seamless).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from jobs.run.job import run_job
from pipeline.config import load_job_spec
from pipeline.models.registry import get_spec, weight_filename
from pipeline.models.weights import serialize, sha256_bytes
from tests.clips import synthetic_frame

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

SIZE = (48, 32)
CUT = 14
FRAMES = 30


def write_lossless(path: Path, indices: range) -> Path:
    """FFV1/RGB clip of the synthetic frames `indices` (scene 1 from CUT on), bit-exact on decode."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "bgr0"
        for n, i in enumerate(indices):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(i, *SIZE, scene=int(i >= CUT)), format="rgb24")
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.int16)


@pytest.fixture(scope="module")
def random_strong(tmp_path_factory) -> tuple[str, str]:
    """A weights folder holding a randomly initialised tiny strong model for x2, and its sha256."""
    spec = get_spec("strong", "tiny")
    torch.manual_seed(0)
    model = spec.build(2)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.08)
    data = serialize(spec, 2, model)
    folder = tmp_path_factory.mktemp("weights")
    (folder / weight_filename("strong", "tiny", 2)).write_bytes(data)
    return str(folder), sha256_bytes(data)


def upscale(source: Path, out: Path, weights: tuple[str, str] | None, **overrides) -> np.ndarray:
    own = {"models.weights_dir": weights[0], "models.strong_sha256": weights[1]} if weights else {}
    spec = load_job_spec(
        None,
        {
            "input": str(source),
            "output": str(out),
            "scale": 2,
            "encode.codec": "ffv1",
            **own,
            **overrides,
        },
    )
    summary = run_job(spec, echo=lambda _: None)
    assert summary.ok, summary.videos_failed
    return decode_all(Path(summary.outputs[source.name]))


def test_segments_and_scene_cut_do_not_change_the_output(tmp_path: Path, random_strong):
    source = write_lossless(tmp_path / "clip.mkv", range(FRAMES))
    whole = upscale(source, tmp_path / "whole", random_strong, **{"segment.max_core_frames": 1000})
    short = upscale(source, tmp_path / "short", random_strong, **{"segment.max_core_frames": 3})
    assert whole.shape == (FRAMES, SIZE[1] * 2, SIZE[0] * 2, 3)
    assert np.abs(whole - short).max() <= 1

    # Across the cut: the second scene alone, as its own video, comes out the same.
    alone = upscale(write_lossless(tmp_path / "scene.mkv", range(CUT, FRAMES)), tmp_path / "alone", random_strong)
    assert np.abs(whole[CUT:] - alone).max() <= 1

    # The check can fail: without context the seams differ, and the model is far from bicubic.
    seamy = upscale(
        source, tmp_path / "seamy", random_strong, **{"segment.max_core_frames": 3, "segment.context_frames": 0}
    )
    assert np.abs(whole - seamy).max() > 1
    bicubic = upscale(source, tmp_path / "bicubic", None)
    assert np.abs(whole - bicubic).mean() > 2
