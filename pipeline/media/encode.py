"""Encode one segment's frames as a self-contained chunk: closed GOP, source pts kept exactly."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from itertools import chain, islice, pairwise

import av
import numpy as np
from av.packet import Packet
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from .colour import MATRIX_BT709, RANGE_LIMITED, Colour, output_colour, tag
from .errors import MediaError, no_partial_file
from .nvenc import NVENC_PIX_FMTS, nvenc_options, pick_encoder

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "ffv1": "ffv1", "prores": "prores_ks"}
# ffv1 keeps RGB (bgr0 is its 8-bit RGB input) so a round trip is bit-exact; ProRes 422 HQ is 10-bit 4:2:2.
DEFAULT_PIX_FMT = {"h264": "yuv420p", "hevc": "yuv420p", "av1": "yuv420p", "ffv1": "bgr0", "prores": "yuv422p10le"}
FORMATS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov"}
# SVT-AV1 takes a number 0 (slowest) .. 13; the config speaks x264 preset names.
_SVT_PRESETS = {
    "ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
    "medium": 6, "slow": 5, "slower": 4, "veryslow": 3, "placebo": 2,
}  # fmt: skip
# Timestamp resolution of chunks: fine enough that the stitcher can fit strictly increasing
# dts between consecutive pts, and that MP4 keeps its own timescale (it doubles any below 10000).
_MIN_TICKS_PER_S = 10_000
_FALLBACK_RATE = Fraction(25)
_DEFAULT_COLOUR = Colour(matrix=MATRIX_BT709, range=RANGE_LIMITED)
_LIMITED_RANGE_ONLY = {"prores"}
_SVT_MIN_HEIGHT = 32
# libx265 (as PyAV's wheels carry it) corrupts its heap on frames narrower than one 64-px CTU: a
# process that encodes a few 48x32, 48x64 or 40x32 chunks aborts ("corrupted size vs. prev_size"),
# taking a Ray worker and its other tasks with it (seen at every preset; 64x16 and 96x40 were
# fine). Such outputs come only from inputs under 32 px wide.
_X265_MIN_WIDTH = 64
# Encoders that refuse a frame size its chroma subsampling does not divide (x264/x265: 99x75
# in 4:2:0). SVT-AV1, FFV1 and ProRes take any size and keep it.
_WHOLE_CHROMA_ONLY = {"h264", "hevc"}


def encoded_size(width: int, height: int, codec: str, pix_fmt: str | None) -> tuple[int, int]:
    """The frame size a chunk is written at: `width` x `height`, except that h264/hevc round each
    up to a multiple of the pixel format's chroma subsampling (99x75 -> 100x76 in yuv420p).

    Why padding, and why the padding stays in the output: H.264 SPS cropping and the HEVC
    conformance window count in chroma samples as well (x264 refuses crop-rect=0,0,1,1), so no
    4:2:0 bitstream can say "99 wide"; a container crop (MP4 `clap`, Matroska PixelCrop) cannot
    be set through PyAV, and PyAV's decoding, like many players, would not apply it anyway. So
    the output is the padded size, the last column/row repeated into the extra pixels (no dark
    edge, nothing for the encoder to spend bits on). The size depends only on the frame size,
    codec and pixel format: every chunk of a video gets the same one and the chunks concatenate.
    """
    if codec not in _WHOLE_CHROMA_ONLY:
        return width, height
    fmt = av.VideoFormat(pix_fmt or DEFAULT_PIX_FMT[codec])
    step_x, step_y = 64 // fmt.chroma_width(64), 64 // fmt.chroma_height(64)  # 2, 2 for 4:2:0
    return -(-width // step_x) * step_x, -(-height // step_y) * step_y


def encoder_pix_fmts(codec: str) -> list[str]:
    """The pixel formats the codec's encoder takes, in this FFmpeg build."""
    return [f.name for f in av.codec.Codec(ENCODERS[codec], "w").video_formats or []]


def written_colour(codec: str, pix_fmt: str | None, height: int, source: Colour | None) -> Colour:
    """The colour a chunk is converted to and tagged with (`colour.output_colour`; None: BT.709,
    limited). ProRes has no full range: a full-range source's ProRes is limited range."""
    colour = output_colour(source or _DEFAULT_COLOUR, pix_fmt or DEFAULT_PIX_FMT[codec], height)
    return replace(colour, range=RANGE_LIMITED) if codec in _LIMITED_RANGE_ONLY and colour.matrix else colour


def bit_depth(codec: str, pix_fmt: str | None) -> int:
    """Bits per sample of the output pixel format (8 for yuv420p, 10 for yuv420p10le)."""
    return max(c.bits for c in av.VideoFormat(pix_fmt or DEFAULT_PIX_FMT[codec]).components)


def deep_frames(codec: str, pix_fmt: str | None) -> bool:
    """Whether frames for this output travel as uint16 RGB: above 8 bits, 8-bit RGB would waste them."""
    return bit_depth(codec, pix_fmt) > 8


def fine_time_base(time_base: Fraction) -> tuple[Fraction, int]:
    """A time base 1/N (N >= 10000) in which every pts of `time_base` is exact, and the factor."""
    time_base = Fraction(time_base)
    m = max(1, math.ceil(_MIN_TICKS_PER_S / time_base.denominator))
    return Fraction(1, time_base.denominator * m), time_base.numerator * m


def container_options(container_format: str, time_base: Fraction) -> dict[str, str]:
    """Muxer options for reproducible files with exact timestamps.

    bitexact drops random ids (Matroska's SegmentUID) so a retried task writes the same bytes.
    MP4/MOV store a leading offset (a chunk that starts at 4.17 s) as an edit list in the movie
    timescale, 1/1000 by default, which would shift every pts by the rounding: use the track's.
    """
    options = {"fflags": "+bitexact"}
    if container_format in ("mp4", "mov"):
        options["movie_timescale"] = str(Fraction(time_base).denominator)
    return options


def encode_chunk(
    frames: np.ndarray,
    pts: list[int],
    time_base: Fraction,
    path: str,
    *,
    codec: str,
    crf: int,
    preset: str,
    pix_fmt: str | None,
    container_format: str,
    gop: int,
    rate: Fraction | None,
    sample_aspect_ratio: Fraction | None = None,
    colour: Colour | None = None,
    hardware: str = "never",
) -> str:
    """Write RGB frames (T, H, W, 3), uint8 or uint16 (0..65535), with the given source pts (in
    `time_base`) to `path`.

    The chunk starts with a keyframe and holds only closed GOPs, so chunks can be concatenated
    by stream copy. crf, preset and gop steer h264/hevc/av1; ffv1 and prores are intra-only.
    Pass the same `rate` (the source's average rate) for every chunk of a video: it goes into
    the codec headers, which must match across chunks (None: a fixed 25). YUV chunks are
    converted with the source's matrix and range (`colour`, the source's resolved description;
    None: BT.709, limited) and tagged with it, primaries and transfer included (see
    `colour.output_colour`). Frames are written at `encoded_size` (odd sizes padded for h264/hevc
    by repeating the last column/row). `hardware` (EncodeSpec.hardware) lets h264/hevc go to NVENC
    (pipeline/media/nvenc.py). A failed encode leaves no file. Returns the encoder's name.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"frames must be uint8 or uint16 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(pts) != len(frames) or not frames.size:
        raise ValueError(f"{len(frames)} frames but {len(pts)} pts")
    if any(a >= b for a, b in pairwise(pts)):
        raise ValueError("pts must be strictly increasing")
    if codec not in ENCODERS or container_format not in FORMATS:
        raise ValueError(f"unknown codec {codec!r} or container {container_format!r}")
    fine, factor = fine_time_base(time_base)
    options = container_options(container_format, fine)
    height, width = frames.shape[1:3]
    pix_fmt = pix_fmt or DEFAULT_PIX_FMT[codec]
    out_width, out_height = encoded_size(width, height, codec, pix_fmt)
    if codec == "av1" and out_height < _SVT_MIN_HEIGHT:
        # Seen with SVT-AV1 4.1: below this it never returns a packet, and the task would hang.
        raise MediaError(f"av1 (SVT-AV1) cannot encode frames under {_SVT_MIN_HEIGHT} lines ({out_height})")
    nvenc = pick_encoder(codec, pix_fmt, crf, hardware, out_width, out_height)
    encoder = nvenc or ENCODERS[codec]
    if encoder == "libx265" and out_width < _X265_MIN_WIDTH:
        raise MediaError(
            f"hevc (libx265) cannot safely encode frames under {_X265_MIN_WIDTH} px wide ({out_width}x{out_height}); "
            "use h264, av1 or ffv1"
        )
    out_colour = written_colour(codec, pix_fmt, out_height, colour)
    stream_pix_fmt = NVENC_PIX_FMTS[codec][pix_fmt] if nvenc else pix_fmt
    rgb = "rgb48le" if frames.dtype == np.uint16 else "rgb24"
    pad = ((0, out_height - height), (0, out_width - width), (0, 0))
    with (
        no_partial_file(path, f"encoding {codec}"),
        av.open(path, "w", format=FORMATS[container_format], options=options) as out,
    ):
        if ENCODERS[codec] not in out.supported_codecs:
            raise MediaError(f"{codec} cannot be stored in {container_format}")
        options = nvenc_options(crf, preset, gop) if nvenc else _codec_options(codec, crf, preset, gop)
        stream = out.add_stream(encoder, options=options)
        _configure(stream, out_width, out_height, stream_pix_fmt, fine, rate, sample_aspect_ratio, out_colour)
        convert = _converter(out_colour, stream_pix_fmt)
        packets: list[Packet] = []  # compressed: small next to the frames we were handed
        for array, p in zip(frames, pts):
            if out_width != width or out_height != height:  # one frame at a time: no copy of the segment
                array = np.pad(array, pad, mode="edge")
            frame = tag(convert(av.VideoFrame.from_ndarray(array, format=rgb)), out_colour)
            frame.pts, frame.time_base = p * factor, fine
            packets += stream.encode(frame)
        packets += stream.encode()
        # libx265 emits garbage dts for chunks shorter than its B-frame delay: derive our own.
        out.mux(list(with_dts(iter(packets), reorder_depth([p.pts for p in packets]))))
    return encoder


def reorder_depth(pts: list[int]) -> int:
    """How many packets at most a frame is decoded after frames it is shown before (0: no B-frames)."""
    rank = {p: r for r, p in enumerate(sorted(pts))}
    return max((i - rank[p] for i, p in enumerate(pts)), default=0)


def with_dts(packets: Iterator[Packet], depth: int) -> Iterator[Packet]:
    """Set dts[i] to the (i - depth)-th smallest pts, extrapolated back for the first `depth`.

    That is how encoders derive dts: strictly increasing and never above the pts, given pts in
    decode order that are unique and reordered by at most `depth`. It holds only depth + 1 packets.
    """
    head = list(islice(packets, depth + 1))
    if not head:
        return
    first = sorted(p.pts for p in head)
    step = first[1] - first[0] if len(first) > 1 else 1
    pending: list[int] = []
    for i, packet in enumerate(chain(head, packets)):
        heapq.heappush(pending, packet.pts)
        packet.dts = first[0] - (depth - i) * step if i < depth else heapq.heappop(pending)
        yield packet


def _converter(colour: Colour, pix_fmt: str):
    """RGB frame -> a frame in `pix_fmt`, through one reused scaler, with `colour`'s matrix and range
    (PyAV's implicit conversion would use BT.601, limited, whatever the tags say)."""
    reformatter = VideoReformatter()
    if av.VideoFormat(pix_fmt).is_rgb:
        return lambda frame: reformatter.reformat(frame, format=pix_fmt)
    return lambda frame: reformatter.reformat(
        frame, format=pix_fmt, dst_colorspace=colour.matrix, dst_color_range=colour.range
    )


def _configure(
    stream: VideoStream,
    width: int,
    height: int,
    pix_fmt: str,
    time_base: Fraction,
    rate: Fraction | None,
    sample_aspect_ratio: Fraction | None,
    colour: Colour,
) -> None:
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt
    stream.time_base = stream.codec_context.time_base = time_base
    ctx = stream.codec_context
    # The rate lands in the codec headers (H.264 VUI), which must be equal in every chunk.
    ctx.framerate = Fraction(rate) if rate else _FALLBACK_RATE
    if sample_aspect_ratio:
        ctx.sample_aspect_ratio = Fraction(sample_aspect_ratio)
    # Into the codec headers (VUI, sequence header) and the container (MP4/MOV colr, Matroska Colour).
    ctx.color_primaries, ctx.color_trc = colour.primaries, colour.transfer
    ctx.colorspace, ctx.color_range = colour.matrix, colour.range


def _codec_options(codec: str, crf: int, preset: str, gop: int) -> dict[str, str]:
    if codec == "ffv1":
        return {"level": "3", "g": "1", "slicecrc": "1"}  # slice CRCs let archives detect bit rot
    if codec == "prores":
        return {}
    # +cgop: closed GOPs, so no picture of a chunk references another chunk.
    options = {"crf": str(crf), "g": str(gop), "flags": "+cgop"}
    if codec == "h264":
        return options | {"preset": preset}
    if codec == "hevc":
        return options | {"preset": preset, "x265-params": "open-gop=0:log-level=error"}
    if not preset.isdigit() and preset not in _SVT_PRESETS:
        raise ValueError(f"unknown preset {preset!r} for av1 (use 0-13 or an x264 preset name)")
    return options | {"preset": preset if preset.isdigit() else str(_SVT_PRESETS[preset])}
