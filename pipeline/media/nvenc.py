"""NVIDIA hardware encoding (NVENC) of h264/hevc chunks, and the choice between it and libx264/libx265.

Whether NVENC works is a property of the node (a GPU with an encoder, its driver; A100 and H100 have
none), so each worker process finds out once, by opening the encoder on a small frame, and keeps the
answer. The choice must be the same for every chunk of a video: chunks are concatenated by stream
copy, and NVENC's and x264's parameter sets differ (the stitcher refuses such a mix). Hence
EncodeSpec.hardware: `never` (the default) and `nvenc` give one encoder whatever the node; `auto`
is for clusters whose encode nodes are alike (docs/performance.md).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from functools import cache

import av
import numpy as np

from .errors import MediaError

log = logging.getLogger(__name__)

NVENC_ENCODERS = {"h264": "h264_nvenc", "hevc": "hevc_nvenc"}
# The output pixel format (as EncodeSpec.pix_fmt names it) -> the one NVENC takes for it. NVENC has
# 10-bit 4:2:0 as p010 (same samples, interleaved chroma), for HEVC only (H.264 10-bit needs the newest
# GPUs); no 4:2:2 before Blackwell.
NVENC_PIX_FMTS = {
    "h264": {"yuv420p": "yuv420p", "yuv444p": "yuv444p"},
    "hevc": {"yuv420p": "yuv420p", "yuv444p": "yuv444p", "yuv420p10le": "p010le"},
}
# x264/x265 preset names -> NVENC's p1 (fastest) .. p7 (slowest); p1-p7 are taken as they are.
NVENC_PRESETS = {
    "ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
    "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7",
}  # fmt: skip
# NVENC refuses frames under about 145x49 (H.264) and 129x33 (HEVC) on current GPUs; smaller chunks
# go to the software encoder (`auto`) or fail (`nvenc`). A rule by frame size keeps every chunk of a
# video on one encoder: they all have the same size.
NVENC_MIN_SIZE = (160, 64)
_PROBE_SIZE = (256, 128)


def nvenc_refusal(codec: str, pix_fmt: str | None, crf: int = 18) -> str | None:
    """Why NVENC cannot write this output (a setting it has no equivalent for), or None."""
    if codec not in NVENC_ENCODERS:
        return f"NVENC encodes h264 and hevc, not {codec}"
    if (pix_fmt or "yuv420p") not in NVENC_PIX_FMTS[codec]:
        return f"{NVENC_ENCODERS[codec]} takes pix_fmt {', '.join(NVENC_PIX_FMTS[codec])}, not {pix_fmt}"
    if crf == 0:
        return "crf 0 (lossless in x264/x265) has no NVENC cq equivalent (cq 0 means automatic)"
    return None


def nvenc_options(crf: int, preset: str, gop: int) -> dict[str, str]:
    """crf -> constant quality (VBR with cq and no bitrate target), the preset as p1-p7, gop as is.

    NVENC makes every GOP start with an IDR picture (its IDR period is the GOP length), so the
    GOPs are closed, as +cgop makes them for x264/x265."""
    if preset not in NVENC_PRESETS and preset not in NVENC_PRESETS.values():
        raise ValueError(f"unknown preset {preset!r} for NVENC (use p1-p7 or an x264 preset name)")
    return {
        "preset": NVENC_PRESETS.get(preset, preset),
        "tune": "hq",
        "rc": "vbr",
        "cq": str(crf),
        "b": "0",
        "g": str(gop),
    }


@cache
def nvenc_probe(encoder: str) -> str | None:
    """None when `encoder` opens and encodes a frame in this process, else why not; once per process."""
    try:
        ctx = av.CodecContext.create(encoder, "w")
        ctx.width, ctx.height = _PROBE_SIZE
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((*_PROBE_SIZE[::-1], 3), np.uint8), format="rgb24")
        ctx.encode(frame.reformat(format="yuv420p"))
        ctx.encode(None)
    except (av.FFmpegError, OSError, ValueError) as exc:
        log.info("%s cannot encode on this node: %s", encoder, exc)
        return f"{type(exc).__name__}: {exc}"
    log.info("%s encodes on this node", encoder)
    return None


def pick_encoder(codec: str, pix_fmt: str | None, crf: int, hardware: str, width: int, height: int) -> str | None:
    """The NVENC encoder this chunk is written with, or None for the software one."""
    if hardware == "never" or codec not in NVENC_ENCODERS:
        return None
    refusal = nvenc_refusal(codec, pix_fmt, crf)
    if refusal is None and (width < NVENC_MIN_SIZE[0] or height < NVENC_MIN_SIZE[1]):
        refusal = f"{width}x{height} frames are under NVENC's minimum, {NVENC_MIN_SIZE[0]}x{NVENC_MIN_SIZE[1]}"
    if refusal is None:
        refusal = nvenc_probe(NVENC_ENCODERS[codec])
    if refusal is None:
        return NVENC_ENCODERS[codec]
    if hardware == "nvenc":
        raise MediaError(f"encode.hardware is nvenc, but {NVENC_ENCODERS[codec]} cannot write this chunk: {refusal}")
    return None
