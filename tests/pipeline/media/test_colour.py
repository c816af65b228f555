"""Colour through encode and decode: each output converted with the source's matrix and range and
tagged with its description; 10-bit outputs carry 10-bit samples."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.media import Colour, MediaError, decode_frames, encode_chunk, probe_video
from pipeline.media.colour import output_colour, resolved
from pipeline.media.encode import written_colour

# Saturated patches move most between matrices: BT.601 and BT.709 read the same YUV as colours
# up to ~30 levels apart.
PATCHES = np.array([(200, 30, 40), (30, 180, 60), (40, 60, 200), (235, 200, 20)], np.uint8)
BT709 = Colour(1, 1, 1, 1)
PAL = Colour(5, 5, 5, 1)  # BT.470BG: 625-line SD
FULL_709 = Colour(1, 13, 1, 2)  # full range, sRGB transfer


def patch_frames(count: int = 2) -> np.ndarray:
    """(count, 32, 128, 3): four flat 32x32 patches side by side."""
    row = np.repeat(PATCHES, 32, axis=0)[None, :, :].repeat(32, axis=0)
    return row[None].repeat(count, axis=0)


def interiors(frames: np.ndarray) -> np.ndarray:
    """Mean colour of each patch, 8 px away from its edges (chroma subsampling and coding blur them)."""
    return np.stack([frames[:, 8:24, 32 * i + 8 : 32 * i + 24].reshape(-1, 3).mean(axis=0) for i in range(4)])


def encode(path, frames, codec, container, pix_fmt, colour):
    encode_chunk(
        frames, list(range(len(frames))), Fraction(1, 24), str(path), codec=codec, crf=4, preset="veryfast",
        pix_fmt=pix_fmt, container_format=container, gop=4, rate=Fraction(24), colour=colour,
    )  # fmt: skip
    return probe_video(path, detect_scenes=False)


@pytest.mark.parametrize(
    "codec, container, pix_fmt",
    [
        ("h264", "mp4", None),
        ("hevc", "mp4", "yuv420p10le"),
        ("av1", "mkv", "yuv420p10le"),
        ("prores", "mov", None),
        ("ffv1", "mkv", None),
        ("ffv1", "mkv", "yuv422p10le"),
    ],
)
@pytest.mark.parametrize("colour", [BT709, PAL, FULL_709], ids=["bt709", "bt470bg", "bt709-full"])
def test_known_colours_come_back_and_the_output_is_tagged(tmp_path, codec, container, pix_fmt, colour):
    path = tmp_path / f"c.{container}"
    probe = encode(path, patch_frames(), codec, container, pix_fmt, colour)
    expected = written_colour(codec, pix_fmt, probe.height, colour)
    assert probe.tagged_colour == expected  # primaries and transfer carried, matrix and range as converted
    assert expected.range == (1 if codec == "prores" else colour.range) or expected.matrix == 0
    got = interiors(decode_frames(path, 0, 2, colour=probe.colour).frames.astype(np.float64))
    assert np.abs(got - PATCHES).max() <= 3
    if expected.matrix != 0:  # YUV: the other matrix reads other colours, so the one used matters
        other = Colour(matrix=5 if expected.matrix == 1 else 1, range=expected.range)
        wrong = interiors(decode_frames(path, 0, 2, colour=other).frames.astype(np.float64))
        assert np.abs(wrong - PATCHES).max() > 10


def test_untagged_yuv_is_read_as_players_read_it():
    assert resolved(Colour(), 576, is_rgb=False) == Colour(matrix=6, range=1)  # SD: BT.601, limited
    assert resolved(Colour(), 720, is_rgb=False) == Colour(matrix=1, range=1)  # HD: BT.709
    assert resolved(Colour(1, 1, 2, 2), 480, is_rgb=False) == Colour(1, 1, 6, 2)  # tags kept, matrix chosen
    assert resolved(Colour(1, 1, 1, 1), 480, is_rgb=True) == Colour(1, 1, 0, 2)  # RGB: no matrix, full range
    # An upscaled SD video keeps BT.601; a YUV output of an RGB source takes its own height's matrix.
    assert output_colour(Colour(6, 6, 6, 1), "yuv420p", 1152).matrix == 6
    assert output_colour(Colour(1, 13, 0, 2), "yuv420p", 1080) == Colour(1, 13, 1, 1)
    assert output_colour(Colour(5, 5, 5, 1), "bgr0", 1152) == Colour(5, 5, 0, 2)


@pytest.mark.parametrize(
    "codec, container, pix_fmt",
    [
        ("hevc", "mp4", "yuv420p10le"),
        ("av1", "mp4", "yuv420p10le"),
        ("prores", "mov", "yuv422p10le"),
        ("ffv1", "mkv", "gbrp10le"),
    ],
)
def test_ten_bit_outputs_carry_ten_bits(tmp_path, codec, container, pix_fmt):
    """A gentle ramp in uint16 frames: 8-bit RGB would hold 16 steps of it, the 10-bit output keeps ~64."""
    ramp = (20000 + np.arange(256) * 16).astype(np.uint16)  # 16 steps of 8 bits, 64 of 10
    frames = np.stack([ramp, ramp, ramp], axis=-1)[None, None].repeat(32, axis=1).repeat(2, axis=0)
    path = tmp_path / f"t.{container}"
    probe = encode(path, frames, codec, container, pix_fmt, BT709)
    assert probe.pix_fmt == pix_fmt
    with av.open(str(path)) as c:
        first = next(c.decode(video=0)).planes[0]  # luma; G for gbrp: the native 10-bit codes
        plane = np.frombuffer(bytes(first), np.uint16).reshape(first.height, -1)[:, : first.width]
    assert plane.max() < 1024
    row = plane[8]
    assert len(np.unique(row)) >= 40  # 8-bit precision on the way would leave at most ~17


def test_av1_refuses_frames_svt_cannot_encode(tmp_path):
    with pytest.raises(MediaError, match="under 32 lines"):
        encode(tmp_path / "a.mp4", patch_frames()[:, :16], "av1", "mp4", None, BT709)
    assert not (tmp_path / "a.mp4").exists()
