from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.media import MediaError, decode_frames, encode_chunk, encoded_size
from pipeline.media.encode import reorder_depth, with_dts
from tests.clips import synthetic_frame

FRAMES = np.stack([synthetic_frame(i, 160, 96) for i in range(16)])
TB = Fraction(1, 24)  # a coarse source time base: the chunk must refine it, not round it


def encode(path, codec, container_format, pts, frames=FRAMES, **overrides):
    options = dict(codec=codec, crf=20, preset="veryfast", pix_fmt=None, gop=8, rate=Fraction(24))
    encode_chunk(frames, pts, TB, str(path), container_format=container_format, **(options | overrides))


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
    path = tmp_path / "twelve_bit.mp4"
    with pytest.raises(MediaError, match="encoding h264 failed"):
        encode(path, "h264", "mp4", list(range(16)), pix_fmt="yuv420p12le")  # x264 here: 8 and 10 bit only
    assert not path.exists()


@pytest.mark.parametrize(
    "codec, pix_fmt, size",
    [
        ("h264", "yuv420p", (100, 76)),
        ("hevc", "yuv420p10le", (100, 76)),
        ("h264", "yuv422p", (100, 75)),  # 4:2:2 halves only the width
        ("h264", "yuv444p", (99, 75)),
        ("av1", "yuv420p", (99, 75)),  # SVT-AV1, FFV1 and ProRes take odd sizes as they are
        ("ffv1", "bgr0", (99, 75)),
        ("prores", "yuv422p10le", (99, 75)),
    ],
)
def test_encoded_size(codec, pix_fmt, size):
    assert encoded_size(99, 75, codec, pix_fmt) == size
    assert encoded_size(100, 76, codec, pix_fmt) == (100, 76)


ODD = np.stack([synthetic_frame(i, 99, 75) for i in range(6)])  # 33x25 upscaled x3


@pytest.mark.parametrize("codec, container_format", [("h264", "mp4"), ("hevc", "mkv")])
def test_odd_size_is_padded_by_repeating_the_edge(tmp_path, codec, container_format):
    """x264/x265 refuse 99x75 in 4:2:0: the chunk is 100x76, the picture in its top-left corner
    and the last column/row repeated, and every chunk of the video gets that same size."""
    paths = [tmp_path / f"{n}.{container_format}" for n in range(2)]
    for n, path in enumerate(paths):
        encode(path, codec, container_format, list(range(6 * n, 6 * n + 6)), frames=ODD)
    decoded = [decode_frames(str(path), 0, 6).frames.astype(int) for path in paths]
    assert all(d.shape == (6, 76, 100, 3) for d in decoded)
    frames = decoded[0]
    assert np.abs(frames[:, :75, :99] - ODD).mean() <= 4
    assert np.abs(frames[:, :75, 99] - ODD[:, :, 98]).mean() <= 6  # not black, not garbage
    assert np.abs(frames[:, 75, :99] - ODD[:, 74, :]).mean() <= 6
    with av.open(str(paths[0])) as first, av.open(str(paths[1])) as second:  # the stitcher's condition
        assert first.streams.video[0].codec_context.extradata == second.streams.video[0].codec_context.extradata


@pytest.mark.parametrize("codec, container_format", [("ffv1", "mkv"), ("prores", "mov")])
def test_codecs_that_take_odd_sizes_keep_them(tmp_path, codec, container_format):
    path = tmp_path / f"odd.{container_format}"
    encode(path, codec, container_format, list(range(6)), frames=ODD)
    frames = decode_frames(str(path), 0, 6).frames
    assert frames.shape == ODD.shape
    if codec == "ffv1":
        assert np.array_equal(frames, ODD)


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


def test_hevc_refuses_frames_x265_cannot_encode_safely(tmp_path):
    """libx265 corrupts its heap on frames under 64 px wide (an abort, not an error): refuse them before."""
    with pytest.raises(MediaError, match="under 64 px wide"):
        encode(tmp_path / "a.mkv", "hevc", "mkv", list(range(16)), frames=FRAMES[:, :, :48])
    assert not (tmp_path / "a.mkv").exists()
