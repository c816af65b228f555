"""NVENC (EncodeSpec.hardware): the software fallback is the plain path to the byte, the probe runs
once per process, a required NVENC that cannot run fails clearly; NVENC chunks themselves where a
GPU with an encoder is present."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.config import ConfigError, EncodeSpec, load_job_spec
from pipeline.media import MediaError, decode_frames, encode_chunk, stitch_chunks
from pipeline.media.nvenc import NVENC_MIN_SIZE, nvenc_options, nvenc_probe, nvenc_refusal, pick_encoder
from tests.clips import make_clip, synthetic_frame

FRAMES = np.stack([synthetic_frame(i, 256, 144) for i in range(12)])
TB = Fraction(1, 24)
HAS_NVENC = nvenc_probe("h264_nvenc") is None
NO_NVENC = pytest.mark.skipif(HAS_NVENC, reason="NVENC works on this machine: the fallback is not taken")
NEEDS_NVENC = pytest.mark.skipif(not HAS_NVENC, reason="needs a GPU with NVENC: h264_nvenc does not open here")


def encode(path: Path, hardware: str, codec: str = "h264", pts: range = range(12), frames=FRAMES) -> str:
    return encode_chunk(
        frames, list(pts), TB, str(path), codec=codec, crf=20, preset="veryfast", pix_fmt=None,
        container_format="mp4", gop=6, rate=Fraction(24), hardware=hardware,
    )  # fmt: skip


@NO_NVENC
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_auto_without_nvenc_writes_what_never_writes(tmp_path: Path, codec: str) -> None:
    assert encode(tmp_path / "auto.mp4", "auto", codec) == {"h264": "libx264", "hevc": "libx265"}[codec]
    encode(tmp_path / "never.mp4", "never", codec)
    assert (tmp_path / "auto.mp4").read_bytes() == (tmp_path / "never.mp4").read_bytes()


def test_the_probe_runs_once_per_process() -> None:
    nvenc_probe.cache_clear()
    answers = {pick_encoder("h264", None, 18, "auto", 1920, 1080) for _ in range(3)}
    assert len(answers) == 1
    info = nvenc_probe.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    assert pick_encoder("h264", None, 18, "never", 1920, 1080) is None
    assert nvenc_probe.cache_info().misses == 1  # never: not even asked


def test_outputs_nvenc_cannot_write_go_to_software_without_probing() -> None:
    """By settings or frame size, the same for every chunk of a video: never a mix."""
    nvenc_probe.cache_clear()
    assert pick_encoder("av1", None, 18, "auto", 1920, 1080) is None
    assert pick_encoder("hevc", "yuv422p10le", 18, "auto", 1920, 1080) is None
    assert pick_encoder("h264", None, 0, "auto", 1920, 1080) is None  # crf 0: lossless
    assert pick_encoder("h264", None, 18, "auto", NVENC_MIN_SIZE[0] - 2, 1080) is None
    assert nvenc_probe.cache_info().misses == 0


@NO_NVENC
def test_required_nvenc_that_cannot_run_fails_the_chunk_clearly(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="encode.hardware is nvenc, but h264_nvenc cannot write this chunk"):
        encode(tmp_path / "chunk.mp4", "nvenc")
    assert not (tmp_path / "chunk.mp4").exists()


def test_required_nvenc_refuses_small_frames(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"96x64 frames are under NVENC's minimum, 160x64"):
        encode(tmp_path / "chunk.mp4", "nvenc", frames=FRAMES[:, :64, :96])


def test_settings_nvenc_has_no_equivalent_for_are_config_errors() -> None:
    for overrides, cause in [
        ({"encode.codec": "av1"}, "NVENC encodes h264 and hevc, not av1"),
        ({"encode.pix_fmt": "yuv420p10le"}, "h264_nvenc takes pix_fmt yuv420p, yuv444p, not yuv420p10le"),
        ({"encode.crf": 0}, "crf 0"),
    ]:
        with pytest.raises(ConfigError, match=f"encode: .*hardware nvenc: {cause}"):
            load_job_spec(None, {"input": "a", "output": "b", "encode.hardware": "nvenc", **overrides})
    assert EncodeSpec(hardware="auto", codec="av1").hardware == "auto"  # auto: software for these
    assert nvenc_refusal("hevc", "yuv420p10le") is None  # as p010


def test_crf_and_preset_map_to_nvenc_constant_quality() -> None:
    assert nvenc_options(18, "slow", 48) == {"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "18", "b": "0", "g": "48"}
    assert nvenc_options(23, "p7", 12)["preset"] == "p7"
    with pytest.raises(ValueError, match="unknown preset 'turbo' for NVENC"):
        nvenc_options(18, "turbo", 48)


def test_hardware_is_in_the_config_hash_only_when_set() -> None:
    """Jobs from before the setting keep their hash (their outputs are not redone); NVENC chunks
    never stand in for software ones on a resume."""
    base = {"input": "a", "output": "b"}
    plain = load_job_spec(None, base)
    assert "hardware" not in plain.output_affecting()["encode"]
    hashes = {load_job_spec(None, {**base, "encode.hardware": h}).config_hash({}) for h in ("never", "auto", "nvenc")}
    assert len(hashes) == 3 and plain.config_hash({}) in hashes


@NEEDS_NVENC
@pytest.mark.gpu
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_nvenc_chunks_keep_content_and_concatenate(tmp_path: Path, codec: str) -> None:
    first, second = tmp_path / "c0.mp4", tmp_path / "c1.mp4"
    assert encode(first, "nvenc", codec, range(6), FRAMES[:6]) == f"{codec}_nvenc"
    encode(second, "auto", codec, range(6, 12), FRAMES[6:])
    frames = decode_frames(str(first), 0, 6).frames
    assert np.abs(frames.astype(int) - FRAMES[:6]).mean() <= 4
    source = make_clip(tmp_path / "src.mp4", frames=12, size=(128, 72))
    stats = stitch_chunks([str(first), str(second)], str(source), str(tmp_path / "out.mp4"), container_format="mp4")
    assert stats.frames == 12
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert sum(1 for _ in out.decode(video=0)) == 12
    # A video whose chunks come from both encoders is refused, not written.
    encode(second, "never", codec, range(6, 12), FRAMES[6:])
    with pytest.raises(MediaError, match="other codec parameters"):
        stitch_chunks([str(first), str(second)], str(source), str(tmp_path / "mixed.mp4"), container_format="mp4")
