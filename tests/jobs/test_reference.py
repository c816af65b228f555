"""Benchmark mode end to end (`pssr run --reference`): real Ray, real FFV1 files."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from click.testing import CliRunner

from jobs.cli.main import cli
from pipeline.manifest.files import read_manifests
from pipeline.media import decode_frames, encode_chunk
from pipeline.models.inference import to_tensor, to_uint8
from pipeline.models.strong import bicubic_upscale
from pipeline.quality import metrics
from pipeline.storage import Storage
from tests.clips import clip_timing, synthetic_frame

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

FRAMES, HR_SIZE, SCALE = 14, (64, 48), 2


def write_ffv1(path: Path, frames: np.ndarray) -> Path:
    """Lossless RGB (FFV1 in Matroska), 24 fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pts, time_base = clip_timing(len(frames), 24, vfr=False)
    encode_chunk(frames, pts, time_base, str(path), codec="ffv1", crf=0, preset="medium", pix_fmt=None,
                 container_format="mkv", gop=1, rate=Fraction(24))  # fmt: skip
    return path


def hr_and_lr(size: tuple[int, int] = HR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """An HR original with a scene cut, and its antialiased bicubic downscale by SCALE."""
    w, h = size
    hr = np.stack([synthetic_frame(i, w, h, scene=int(i >= 7)) for i in range(FRAMES)])
    lr = metrics.bicubic_downscale(to_tensor(hr, torch.device("cpu")), (h // SCALE, w // SCALE))
    return hr, to_uint8(lr)


def run(*args: str):
    return CliRunner().invoke(cli, ["run", *args, "--scale", str(SCALE), "--segment-frames", "4", "--codec", "ffv1"])


@pytest.mark.allow_error_logs
def test_reference_metrics_in_the_manifest_and_a_reference_that_does_not_fit(tmp_path: Path):
    hr, lr = hr_and_lr()
    write_ffv1(tmp_path / "in" / "a.mkv", lr)
    write_ffv1(tmp_path / "hr" / "a.mkv", hr)
    write_ffv1(tmp_path / "in" / "b.mkv", lr)
    write_ffv1(tmp_path / "hr" / "b.mkv", hr_and_lr((48, 36))[0])  # not 32x24 x2
    out = tmp_path / "out"

    result = run(str(tmp_path / "in"), str(out), "--reference", str(tmp_path / "hr"))

    assert result.exit_code == 1, result.output  # b failed, a went on
    videos, segments = read_manifests(Storage(), str(out))
    rows = {r["video_key"]: r for r in videos.to_pylist()}
    assert rows["b.mkv"]["status"] == "failed" and rows["b.mkv"]["psnr"] is None
    assert rows["b.mkv"]["error"] == (
        f"reference {tmp_path / 'hr' / 'b.mkv'}: its frames are 48x36, not the input's 32x24 x2 = 64x48"
    )
    a = rows["a.mkv"]
    assert a["status"] == "ok" and a["reference_uri"] == str(tmp_path / "hr" / "a.mkv")
    assert 20 < a["psnr"] < 100 and 0.5 < a["ssim"] < 1 and 0 < a["ewarp"] < 0.05
    a_segments = segments.filter(pc.equal(segments["video_key"], "a.mkv")).to_pylist()
    assert len(a_segments) >= 4
    for seg in a_segments:
        assert 20 < seg["psnr"] < 100 and 0.5 < seg["ssim"] < 1
        assert (seg["ewarp"] is None) == (seg["frames"] == 1)
    frames = sum(s["frames"] for s in a_segments)
    assert a["psnr"] == pytest.approx(sum(s["psnr"] * s["frames"] for s in a_segments) / frames)
    pairs = [(s["ewarp"], s["frames"] - 1) for s in a_segments if s["ewarp"] is not None]
    assert a["ewarp"] == pytest.approx(sum(e * n for e, n in pairs) / sum(n for _, n in pairs))


def test_classical_pair_psnr_equals_bicubic_against_the_reference_and_resume(tmp_path: Path):
    """A single-file input with a single-file reference; bicubic + none is plain bicubic, so the
    manifest's psnr is that of bicubic(lr) against the reference, per segment."""
    hr, lr = hr_and_lr()
    source, reference = write_ffv1(tmp_path / "lr.mkv", lr), write_ffv1(tmp_path / "hr.mkv", hr)
    out = tmp_path / "out"
    classical = ["--strong-model", "bicubic", "--light-model", "none"]

    plain = run(str(source), str(out), *classical)  # first without a reference: no figures
    assert plain.exit_code == 0, plain.output
    measured = run(str(source), str(out), *classical, "--reference", str(reference))
    assert measured.exit_code == 0 and "1 ok" in measured.output  # redone for the figures
    again = run(str(source), str(out), *classical, "--reference", str(reference))
    assert "0 ok, 0 failed, 1 already done" in again.output

    videos, segments = read_manifests(Storage(), str(out))
    first, second = videos.sort_by("finished_at").to_pylist()
    assert first["psnr"] is None and first["reference_uri"] is None
    assert first["config_hash"] == second["config_hash"]  # same output: the reference is no setting of it
    job = segments.filter(pc.equal(segments["job_id"], second["job_id"])).to_pylist()
    cpu = torch.device("cpu")
    lr_frames = to_tensor(decode_frames(source, 0, FRAMES).frames, cpu)
    ref_frames = to_tensor(decode_frames(reference, 0, FRAMES).frames, cpu)
    upscaled = bicubic_upscale(lr_frames, SCALE).clamp(0, 1)
    for seg in job:
        assert (seg["strong_sha256"], seg["light_sha256"]) == (None, None)
        core = slice(seg["core_start"], seg["core_end"])
        assert seg["psnr"] == pytest.approx(metrics.psnr(upscaled[core], ref_frames[core]), abs=0.05)
        assert seg["light_delta"] == 0.0  # the light model is the identity
    assert math.isfinite(second["ewarp"]) and second["psnr"] < 100
