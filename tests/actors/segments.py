"""Segment records of a clip for the stage tests, as planning would make them for x2."""

from __future__ import annotations

from pathlib import Path

from actors.decode import decode_segment
from pipeline.media import probe_video
from pipeline.segment import SegmentRecord
from pipeline.storage import Storage


def segment_record(path: Path, context: tuple[int, int], core: tuple[int, int]) -> SegmentRecord:
    probe = probe_video(path, detect_scenes=False)
    colour = probe.colour
    return SegmentRecord(
        video_key=path.name, input_uri=str(path), segment_index=0, segment_count=1, scene_index=0,
        core_start=core[0], core_end=core[1], context_start=context[0], context_end=context[1],
        seekable=True, seek_first_pts=probe.pts[context[0]], seek_last_pts=probe.pts[context[1] - 1],
        video_start_s=probe.start_s,
        time_base_num=probe.time_base.numerator, time_base_den=probe.time_base.denominator,
        rate_num=probe.avg_rate.numerator, rate_den=probe.avg_rate.denominator,
        chunk_uri=str(path.parent / "staging" / "chunk_000000.mp4"),
        lr_width=probe.width, lr_height=probe.height, hr_width=2 * probe.width, hr_height=2 * probe.height,
        colour_primaries=colour.primaries, colour_transfer=colour.transfer, colour_matrix=colour.matrix,
        colour_range=colour.range,
    )  # fmt: skip


def decoded(path: Path, context: tuple[int, int] = (0, 10), core: tuple[int, int] = (3, 7)) -> SegmentRecord:
    """The segment after the decode stage, which must have succeeded."""
    segment = SegmentRecord.from_row(decode_segment(segment_record(path, context, core).to_row(), Storage()))
    assert segment.status == "ok", segment.error
    return segment
