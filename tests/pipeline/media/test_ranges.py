"""Sharded planning: a probe scanned range by range equals the serial one, and falls back to a
serial scan (saying why) wherever the keyframe index cannot serve."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.media import MediaError, probe_video
from pipeline.media.probe import VideoProbe
from pipeline.media.ranges import FrameRange, RangeScan, ShardingFailed, scan_range
from tests.clips import damage_packet, make_clip, make_truncated


def sharded(path: Path, range_frames: int = 20) -> tuple[VideoProbe, list[FrameRange]]:
    """The probe with its ranges scanned one after another here, and the ranges it asked for."""
    asked: list[FrameRange] = []

    def scan(ranges: list[FrameRange]) -> list[RangeScan]:
        asked.extend(ranges)
        return [scan_range(path, frames, detect_scenes=True) for frames in ranges]

    return probe_video(path, scan_ranges=scan, range_frames=range_frames), asked


CLIPS = {
    # B-frames (decode order is not presentation order); x264 starts an IDR at each cut, so some
    # cuts fall on a range's first frame and only the join can see them.
    "bframes.mp4": {"frames": 200, "gop": 12, "scene_cut_at": [37, 48, 130]},
    "open_gop_hevc.mp4": {"frames": 200, "codec": "hevc", "gop": 24, "scene_cut_at": [50, 120]},
    "vfr.mkv": {"frames": 200, "gop": 10, "vfr": True, "scene_cut_at": [60, 100]},
    "interlaced.mp4": {"frames": 120, "size": (160, 96), "interlaced": True, "scene_cut_at": [40]},
    "audio.mov": {"frames": 150, "audio_streams": 1, "scene_cut_at": [70]},
    "mpeg2.ts": {"frames": 160, "codec": "mpeg2video", "gop": 15, "scene_cut_at": [31]},
    "mpeg4.avi": {"frames": 120, "codec": "mpeg4", "scene_cut_at": [50]},
}


@pytest.mark.parametrize("name", CLIPS)
def test_a_sharded_probe_is_the_serial_one(tmp_path: Path, name: str):
    path = make_clip(tmp_path / name, **CLIPS[name])
    serial = probe_video(path)
    probe, ranges = sharded(path)
    assert len(ranges) >= 4 and probe.planning == f"sharded: {len(ranges)} ranges"
    assert replace(probe, planning="serial") == serial
    assert [r.first for r in ranges] == sorted(r.first for r in ranges) and ranges[0].first == 0
    assert sum(len(r.pts) for r in ranges) == serial.n_frames
    if name == "bframes.mp4":
        assert set(serial.cuts) & {r.first for r in ranges}, "no cut on a range edge: the join is untested"


def test_a_short_video_is_scanned_serially(tmp_path: Path):
    path = make_clip(tmp_path / "short.mp4", frames=30, gop=12)
    probe, ranges = sharded(path, range_frames=750)
    assert probe.planning == "serial" and ranges == [] and probe == probe_video(path)


def test_no_keyframe_after_the_first_falls_back(tmp_path: Path):
    path = make_clip(tmp_path / "one_gop.mp4", frames=100, gop=1000)
    probe, ranges = sharded(path)
    assert probe.planning == "serial: no keyframe after the first frame" and ranges == []
    assert replace(probe, planning="serial") == probe_video(path)


def test_a_failing_range_falls_back(tmp_path: Path):
    path = make_clip(tmp_path / "a.mp4", frames=120, gop=12, scene_cut_at=[50])

    def lost(ranges: list[FrameRange]) -> list[RangeScan]:
        raise ShardingFailed("a range failed: its worker died")

    probe = probe_video(path, scan_ranges=lost, range_frames=20)
    assert probe.planning == "serial: a range failed: its worker died"
    assert replace(probe, planning="serial") == probe_video(path)


@pytest.mark.parametrize("fault", ["damaged", "truncated"])
def test_a_bad_video_fails_as_the_serial_probe_does(tmp_path: Path, fault: str):
    path = make_clip(tmp_path / "a.mkv", frames=200, gop=12, scene_cut_at=[37])  # Matroska: a cut file still opens
    if fault == "damaged":
        damage_packet(path, 150)
    else:
        path = make_truncated(path, tmp_path / "cut.mkv", keep=0.6)
    with pytest.raises(MediaError) as serial:
        probe_video(path)
    with pytest.raises(MediaError) as shared:
        sharded(path)
    assert str(shared.value) == str(serial.value)
    assert str(serial.value).startswith("decoding failed at frame " if fault == "damaged" else "truncated: ")


def test_a_range_that_decodes_other_frames_than_its_index_says_is_refused(tmp_path: Path):
    """What an index that lies leaves a range with: a frame short, or a seek that lands past its first frame."""
    path = make_clip(tmp_path / "a.mp4", frames=60, gop=12)
    _, ranges = sharded(path)
    short = replace(ranges[1], pts=ranges[1].pts[:-1])
    with pytest.raises(ShardingFailed, match=r"range 1 \(from frame \d+\) decoded \d+ frames, the index lists"):
        scan_range(path, short, detect_scenes=True)
    late = replace(ranges[1], seek_dts=ranges[2].seek_dts)  # the seek cannot reach the range's keyframe
    with pytest.raises(ShardingFailed, match=r"range 1 \(from frame \d+\) decoded \d+ frames, the index lists 24"):
        scan_range(path, late, detect_scenes=True)


def test_a_long_video_is_cut_into_at_most_max_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("pipeline.media.ranges.MAX_RANGES", 3)
    path = make_clip(tmp_path / "a.mp4", frames=120, gop=10)
    probe, ranges = sharded(path, range_frames=10)
    # The first range keeps its 10 frames (the planning task's own); the others share out the rest.
    assert len(ranges) == 3 and len(ranges[0].pts) == 10 and all(len(r.pts) >= 55 for r in ranges[1:-1])
    assert replace(probe, planning="serial") == probe_video(path)
