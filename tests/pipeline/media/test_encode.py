from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.media import MediaError, decode_frames, encode_chunk
from pipeline.media.encode import reorder_depth, with_dts
from tests.clips import synthetic_frame

FRAMES = np.stack([synthetic_frame(i, 160, 96) for i in range(16)])
TB = Fraction(1, 24)  # a coarse source time base: the chunk must refine it, not round it


def encode(path, codec, container_format, pts, **overrides):
    options = dict(codec=codec, crf=20, preset="veryfast", pix_fmt=None, gop=8, rate=Fraction(24))
    encode_chunk(FRAMES, pts, TB, str(path), container_format=container_format, **(options | overrides))


def video_packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p for p in container.demux(stream) if p.size], stream.time_base


@pytest.mark.parametrize(
    "codec, container_format, max_error",
    [("h264", "mp4", 4), ("hevc", "mkv", 4), ("av1", "mp4", 4), ("ffv1", "mkv", 0), ("prores", "mov", 2.5)],
)
def test_chunk_keeps_pts_and_content(tmp_path, codec, container_format, max_error):
    pts = list(range(100, 116))  # a chunk from the middle of a video
    path = tmp_path / f"chunk.{container_format}"
    encode(path, codec, container_format, pts)
    packets, time_base = video_packets(path)
    assert packets[0].is_keyframe
    got = sorted(float(p.pts * time_base) for p in packets)
    assert got == pytest.approx([float(p * TB) for p in pts], abs=0.0005)  # Matroska: milliseconds
    frames = decode_frames(str(path), 0, 16).frames
    assert np.abs(frames.astype(int) - FRAMES).mean() <= max_error
    if max_error == 0:
        assert np.array_equal(frames, FRAMES)


def test_yuv_chunks_are_bt709_and_keep_the_aspect_ratio(tmp_path):
    """A matrix mismatch between our RGB->YUV conversion and the tag would shift colours (error ~7)."""
    path = tmp_path / "sar.mp4"
    encode(path, "h264", "mp4", list(range(16)), sample_aspect_ratio=Fraction(16, 15))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert container.streams.video[0].sample_aspect_ratio == Fraction(16, 15)
    assert frame.colorspace == 1  # AVCOL_SPC_BT709


def test_mp4_keeps_a_late_start_exactly(tmp_path):
    """MP4 writes a chunk's start as an edit list in the movie timescale (1/1000 by default)."""
    path = tmp_path / "late.mp4"
    encode(path, "h264", "mp4", list(range(100, 116)))
    packets, time_base = video_packets(path)
    assert min(p.pts for p in packets) * time_base == Fraction(100, 24)
    assert any(p.dts < p.pts for p in packets)  # B-frames: reordered


def test_same_input_same_bytes(tmp_path):
    for name in ("a.mkv", "b.mkv"):
        encode(tmp_path / name, "h264", "mkv", list(range(16)))
    assert (tmp_path / "a.mkv").read_bytes() == (tmp_path / "b.mkv").read_bytes()


def test_codec_the_container_cannot_hold(tmp_path):
    with pytest.raises(MediaError, match="prores cannot be stored in mp4"):
        encode(tmp_path / "p.mp4", "prores", "mp4", list(range(16)))
    assert not (tmp_path / "p.mp4").exists()


def test_encoder_failure_leaves_no_file(tmp_path):
    odd = tmp_path / "odd.mp4"
    with pytest.raises(MediaError, match="encoding h264 failed"):
        encode_chunk(
            FRAMES[:, :95], list(range(16)), TB, str(odd), codec="h264", crf=20, preset="veryfast",
            pix_fmt=None, container_format="mp4", gop=8, rate=None,
        )  # fmt: skip
    assert not odd.exists()


@pytest.mark.parametrize(
    "frames, pts",
    [
        (FRAMES[..., :2], list(range(16))),
        (FRAMES, list(range(15))),
        (FRAMES, [0] * 16),
        (FRAMES.astype(np.float32), list(range(16))),
    ],
)
def test_bad_arguments(tmp_path, frames, pts):
    with pytest.raises(ValueError):
        encode_chunk(
            frames, pts, TB, str(tmp_path / "x.mp4"), codec="h264", crf=20, preset="veryfast",
            pix_fmt=None, container_format="mp4", gop=8, rate=None,
        )  # fmt: skip


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize("n", [1, 2])
def test_chunk_shorter_than_the_b_frame_delay(tmp_path, codec, n):
    """libx265 emits garbage dts for such chunks (MP4 then refuses them); ours are rebuilt from pts."""
    path = tmp_path / "short.mp4"
    encode_chunk(
        FRAMES[:n], list(range(61, 61 + n)), TB, str(path), codec=codec, crf=20, preset="medium",
        pix_fmt=None, container_format="mp4", gop=8, rate=Fraction(24),
    )  # fmt: skip
    packets, time_base = video_packets(path)
    assert sorted(p.pts * time_base for p in packets) == [Fraction(61 + i, 24) for i in range(n)]


@pytest.mark.parametrize(
    "pts",
    [[0, 3, 1, 2, 6, 4, 5], [0, 4, 2, 1, 3, 8, 6, 5, 7], [0, 1, 2, 3], [5]],
    ids=["b-frames", "b-pyramid", "no-reorder", "single"],
)
def test_dts_from_pts(pts):
    packets = []
    for p in pts:
        packet = av.Packet(b"\0")
        packet.pts = p * 10
        packets.append(packet)
    dts = [p.dts for p in with_dts(iter(packets), reorder_depth([p.pts for p in packets]))]
    assert all(a < b for a, b in zip(dts, dts[1:]))
    assert all(d <= p.pts for d, p in zip(dts, packets))
