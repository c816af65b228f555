"""Synthetic videos written with PyAV: the sample clip of `make run` and the tests' clips.

Content moves smoothly (a drifting gradient and a moving square) so super-resolution
models and temporal metrics have something to work on; a scene cut switches to a
different palette and pattern at once.
"""

from __future__ import annotations

import os
import random
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "prores": "prores_ks"}
AUDIO_RATE = 48_000
# Subtitle codec each container can hold: ASS only fits Matroska, MP4/MOV take mov_text.
SUBTITLE_CODEC = {".mkv": "ass", ".mp4": "mov_text", ".mov": "mov_text"}
_ASS_HEADER = b"""[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def synthetic_frame(index: int, width: int, height: int, scene: int = 0) -> np.ndarray:
    """RGB uint8 (height, width, 3): smooth motion within a scene, a different look per scene."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = index * 2.0
    if scene % 2 == 0:
        r = 128 + 100 * np.sin((x + phase) / 17.0)
        g = 128 + 100 * np.cos((y + phase * 0.5) / 13.0)
        b = np.full_like(x, 60.0)
    else:
        r = np.full_like(x, 230.0)
        g = 40 + 30 * np.sin((x - phase) / 9.0) * np.cos(y / 7.0)
        b = 200 - 120 * (y / max(height - 1, 1))
    rgb = np.stack([r, g, b], axis=-1)
    side = max(4, min(width, height) // 4)
    x0 = int(index * 3) % max(width - side, 1)
    y0 = (height - side) // 2 + int(side / 2 * np.sin(index / 5.0))
    y0 = min(max(y0, 0), height - side)
    rgb[y0 : y0 + side, x0 : x0 + side] = (255, 255, 255) if scene % 2 == 0 else (10, 10, 80)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def clip_timing(frames: int, fps: int | Fraction, vfr: bool) -> tuple[list[int], Fraction]:
    """Presentation timestamps and their time base: CFR ticks of 1/fps, or irregular VFR steps."""
    if not vfr:
        return list(range(frames)), Fraction(1, fps)
    rng = random.Random(frames)
    # Durations from half to one and a half nominal frame periods, in quarter-period ticks.
    pts, t = [], 0
    for _ in range(frames):
        pts.append(t)
        t += rng.choice((2, 3, 4, 5, 6))
    return pts, Fraction(1, fps * 4)


def make_clip(
    path: str | os.PathLike[str],
    *,
    frames: int = 48,
    size: tuple[int, int] = (160, 90),
    fps: int | Fraction = 24,
    codec: str = "h264",
    audio_streams: int = 0,
    subtitle: bool = False,
    vfr: bool = False,
    scene_cut_at: int | list[int] | None = None,
    gop: int = 12,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    interlaced: bool = False,
    timecode: str | None = None,
    timecode_tag: Literal["stream", "container"] = "stream",
) -> Path:
    """Write a synthetic clip; the container follows the suffix (.mp4, .mkv, .mov).

    h264 uses B-frames (decode order differs from presentation order, as in real files);
    hevc keeps x265's default open GOPs. Each audio stream is a stereo 48 kHz AAC sine of its
    own frequency covering the video; subtitles are three cues (ASS in .mkv, mov_text otherwise).
    Interlaced h264 needs a height divisible by 4; interlaced mpeg4 (in AVI) states no field order,
    only each frame's flag. `timecode` is the start timecode, tagged on the
    video stream (MP4/MOV then get a tmcd track, Matroska a TIMECODE tag) or on the container.
    """
    if frames < 1:
        raise ValueError("a clip needs at least one frame")
    path = Path(path)
    cuts = sorted([scene_cut_at] if isinstance(scene_cut_at, int) else scene_cut_at or [])
    pts, time_base = clip_timing(frames, fps, vfr)
    last_step = pts[-1] - pts[-2] if frames > 1 else 1
    duration_s = float((pts[-1] + last_step) * time_base)
    width, height = size
    with av.open(str(path), "w") as out:
        options = {"g": str(gop)}
        if codec == "h264":
            options |= {"preset": "veryfast", "crf": "20", "bf": "3"}
        elif codec == "hevc":
            options |= {"preset": "ultrafast", "x265-params": "log-level=error"}
        if interlaced and codec in ("h264", "mpeg4", "mpeg2video"):
            options["flags"] = "+ildct+ilme"
        video = out.add_stream(ENCODERS.get(codec, codec), rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        if timecode is not None:
            (video if timecode_tag == "stream" else out).metadata["timecode"] = timecode
        audios = [_add_audio(out) for _ in range(audio_streams)]
        sub = _add_subtitle(out, path.suffix) if subtitle else None
        out.start_encoding()
        if sub is not None:  # the muxer's interleaving queue holds these until video catches up
            _write_subtitles(out, sub, duration_s)

        audio_done = [0] * audio_streams
        for i, p in enumerate(pts):
            scene = sum(1 for c in cuts if c <= i)
            frame = av.VideoFrame.from_ndarray(synthetic_frame(i, width, height, scene), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            out.mux(video.encode(frame))
            for k, stream in enumerate(audios):  # keep audio roughly interleaved with video
                audio_done[k] = _write_audio(out, stream, k, audio_done[k], float(p * time_base), duration_s)
        out.mux(video.encode())
        for k, stream in enumerate(audios):
            _write_audio(out, stream, k, audio_done[k], duration_s, duration_s)
            out.mux(stream.encode())
    return path


def _add_audio(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=AUDIO_RATE)
    stream.layout = "stereo"
    return stream


def _write_audio(out, stream, k: int, done: int, until_s: float, duration_s: float) -> int:
    """Encode sine samples from `done` up to `until_s` (capped at the clip end); return samples written."""
    total = round(duration_s * AUDIO_RATE)
    target = min(total, round(until_s * AUDIO_RATE))
    freq = 220.0 * (k + 2)
    while done < target:
        n = min(1024, target - done)
        t = (np.arange(done, done + n) / AUDIO_RATE).astype(np.float32)
        wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, done, Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
        done += n
    return done


def _add_subtitle(out: av.container.OutputContainer, suffix: str):
    stream = out.add_stream(SUBTITLE_CODEC[suffix])
    stream.codec_context.subtitle_header = _ASS_HEADER
    return stream


def _write_subtitles(out, stream, duration_s: float) -> None:
    from av.subtitles.subtitle import SubtitleSet

    tb = stream.time_base
    for n in range(3):
        start = duration_s * n / 3
        text = f"0,0,Default,,0,0,0,,Line {n + 1}".encode()
        sub = SubtitleSet.create(text=text, start=0, end=int(duration_s / 3 / tb), pts=int(start / tb))
        packet = stream.codec_context.encode_subtitle(sub)
        packet.stream = stream
        out.mux(packet)


def make_audio_only(path: str | os.PathLike[str], seconds: float = 1.0) -> Path:
    """An AAC-only file: a valid container without any video stream."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = _add_audio(out)
        _write_audio(out, stream, 0, 0, seconds, seconds)
        out.mux(stream.encode())
    return path
