"""Decode stage (CPU task): the LR frames of one segment, context included."""

from __future__ import annotations

import numpy as np

from actors.rows import Row, run_stage
from pipeline.config import EncodeSpec
from pipeline.host_memory import keep_freed_memory
from pipeline.media import Colour, VideoProbe, decode_frames, deep_frames
from pipeline.media.decode import BWDIF
from pipeline.storage import Storage


def deinterlace_frames(setting: str, probe: VideoProbe) -> str | None:
    """Which frames bwdif deinterlaces (`decode_frames`): "interlaced" (those flagged so) for a
    source flagged interlaced under `auto`, "all" under `always`, None otherwise."""
    if setting == "always":
        return "all"
    return "interlaced" if setting == "auto" and probe.interlaced else None


def deinterlace_mode(frames: str | None) -> str | None:
    """The filter as it ran, for manifests and provenance."""
    return BWDIF.format(deint=frames) if frames else None


def frame_fields(probe: VideoProbe, encode: EncodeSpec, deinterlace: str) -> Row:
    """The row fields that say how a video's frames are decoded and encoded: the same for every
    segment, so the chunks agree."""
    colour = probe.colour
    return {
        "frames_16bit": deep_frames(encode.codec, encode.pix_fmt),
        "deinterlace": deinterlace_frames(deinterlace, probe) or "",
        "color_primaries": colour.primaries,
        "color_trc": colour.transfer,
        "colorspace": colour.matrix,
        "color_range": colour.range,
    }


def row_colour(row: Row) -> Colour:
    """The source's colour as the plan resolved it (every segment reads and writes with the same)."""
    return Colour(int(row["color_primaries"]), int(row["color_trc"]), int(row["colorspace"]), int(row["color_range"]))


def decode_segment(row: Row, storage: Storage) -> Row:
    keep_freed_memory()  # this worker process holds the segment's frames (pipeline/host_memory.py)

    def work(row: Row) -> None:
        start, stop = int(row["context_start"]), int(row["context_end"])
        seekable = bool(row["seekable"])
        seek = (int(row["seek_first_pts"]), int(row["seek_last_pts"])) if seekable else None
        with storage.open_read(row["input_uri"]) as source:
            frames, pts = decode_frames(
                source,
                start,
                stop,
                seek,
                deep=bool(row["frames_16bit"]),
                colour=row_colour(row),
                deinterlace=str(row["deinterlace"]) or None,
            )
        core = slice(int(row["core_start"]) - start, int(row["core_end"]) - start)
        # The chunk keeps the source's timing; a source without reliable pts is timed by frame
        # index (the probe then reports its time base as 1/frame rate).
        core_pts = pts[core] if seekable else range(int(row["core_start"]), int(row["core_end"]))
        row["pts"] = np.asarray(core_pts, dtype=np.int64)
        row["lr"] = frames
        row["lr_height"], row["lr_width"] = int(frames.shape[1]), int(frames.shape[2])

    return run_stage(row, "decode", work, storage)
