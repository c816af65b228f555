"""Review flags, thresholds and time codes (pipeline/quality/review.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.config import ConfigError, ReviewSpec, load_job_spec
from pipeline.quality.review import locate, review_flags, review_frame, review_segment, timecode
from pipeline.segment import SegmentRecord

DEFAULT = ReviewSpec()


@pytest.mark.parametrize(
    ("metric", "ok_value", "flagged_value"),
    [("lr_psnr", DEFAULT.min_lr_psnr + 0.1, DEFAULT.min_lr_psnr - 0.1),
     ("tfs", DEFAULT.max_tfs - 0.01, DEFAULT.max_tfs + 0.01),
     ("flicker", DEFAULT.max_flicker - 1e-4, DEFAULT.max_flicker + 1e-4),
     ("light_delta", DEFAULT.max_light_delta - 0.001, DEFAULT.max_light_delta + 0.001)],
)  # fmt: skip
def test_each_threshold_flags_its_own_metric(metric: str, ok_value: float, flagged_value: float):
    assert review_flags({metric: ok_value}, DEFAULT) == {
        "flag_lr_psnr": False, "flag_tfs": False, "flag_flicker": False, "flag_light_delta": False, "flagged": False,
    }  # fmt: skip
    flags = review_flags({metric: flagged_value}, DEFAULT)
    assert flags[f"flag_{metric}"] and flags["flagged"]
    assert sum(flags.values()) == 2  # its own flag and the summary, no other


def test_a_value_at_the_threshold_is_not_flagged():
    assert not review_flags({"lr_psnr": 38.0, "tfs": 1.0}, ReviewSpec(min_lr_psnr=38.0, max_tfs=1.0))["flagged"]


def test_missing_metrics_and_thresholds_flag_nothing():
    assert not review_flags({"tfs": math.nan, "lr_psnr": None}, ReviewSpec(max_tfs=0.0, min_lr_psnr=100))["flagged"]
    off = ReviewSpec(min_lr_psnr=None, max_tfs=None, max_flicker=None, max_light_delta=None)
    assert not review_flags({"tfs": 1e9, "flicker": 1.0, "lr_psnr": 0.0, "light_delta": 1.0}, off)["flagged"]


def segment(core: tuple[int, int] = (30, 33), **fields: object) -> SegmentRecord:
    return SegmentRecord(
        video_key="v.mp4", input_uri="v.mp4", segment_index=0, segment_count=1, scene_index=0,
        core_start=core[0], core_end=core[1], context_start=core[0], context_end=core[1],
        lr_width=32, lr_height=24, hr_width=64, hr_height=48, chunk_uri="chunk_000000.mp4",
        time_base_num=1, time_base_den=1000, colour_primaries=2, colour_transfer=2, colour_matrix=2, colour_range=0,
        **fields,
    )  # fmt: skip


def test_the_manifest_review_of_a_segment():
    reviewed = segment(tfs=2.5, flicker=0.02, lr_psnr=45.0, light_delta=0.001)
    review_segment(reviewed, DEFAULT)
    assert reviewed.flag_tfs and reviewed.flag_flicker and reviewed.flagged
    assert not reviewed.flag_lr_psnr and not reviewed.flag_light_delta
    # A failed segment's figures (taken before a later stage failed) raise no flag: its failure is the news.
    failed = segment(tfs=2.5, flicker=0.02, lr_psnr=45.0, light_delta=0.001, status="failed")
    review_segment(failed, DEFAULT)
    assert not failed.flagged


def test_thresholds_are_job_settings_outside_the_config_hash(tmp_path):
    base = load_job_spec(None, {"input": "in", "output": "out"})
    job_file = tmp_path / "job.yaml"
    job_file.write_text("review:\n  min_lr_psnr: null  # off\n")
    strict = load_job_spec(job_file, {"input": "in", "output": "out", "review.max_tfs": 0.2})
    assert strict.review.max_tfs == 0.2 and strict.review.min_lr_psnr is None
    # They change no output video: a finished video is not redone for new thresholds.
    assert strict.config_hash({}) == base.config_hash({})
    with pytest.raises(ConfigError, match="review.max_tfs"):
        load_job_spec(None, {"input": "in", "output": "out", "review.max_tfs": -1})
    with pytest.raises(ConfigError, match="review.max_flicker"):
        load_job_spec(None, {"input": "in", "output": "out", "review.max_flicker": -1})


def test_locate_counts_from_the_first_frame_of_the_video():
    # Frames at 10.0 s, 10.04 s, 10.1 s (variable rate) in a 1/1000 time base; the video starts at 9.96 s.
    located = segment(video_start_s=9.96, pts=np.array([10_000, 10_040, 10_100]), tfs_worst_frame=32)
    locate(located)
    assert located.start_s == pytest.approx(0.04) and located.end_s == pytest.approx(0.14)
    assert located.tfs_worst_s == pytest.approx(0.14) and located.lr_psnr_worst_s is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "00:00:00.000"), (61.0416, "00:01:01.042"), (3599.9996, "01:00:00.000"), (36_000.5, "10:00:00.500"),
     (None, "?"), (math.nan, "?")],
)  # fmt: skip
def test_timecode(seconds, text):
    assert timecode(seconds) == text


def test_the_review_frame_follows_the_flag():
    segment = {"flag_tfs": True, "tfs_worst_frame": 12, "tfs_worst_s": 0.5,
               "lr_psnr_worst_frame": 14, "lr_psnr_worst_s": 0.58}  # fmt: skip
    assert review_frame(segment) == (12, 0.5)
    assert review_frame({**segment, "flag_tfs": False, "flag_lr_psnr": True}) == (14, 0.58)
    assert review_frame({**segment, "flag_tfs": False, "lr_psnr_worst_frame": None}) == (12, 0.5)
    assert review_frame({"flag_tfs": True, "tfs_worst_frame": None, "lr_psnr_worst_frame": None}) is None
    # Flicker flagged: where it is worst, before tfs's frame (flicker is the sharper of the two).
    flickers = {**segment, "flag_flicker": True, "flicker_worst_frame": 13, "flicker_worst_s": 0.54}
    assert review_frame(flickers) == (13, 0.54)
    assert review_frame({**flickers, "flag_tfs": False, "flag_lr_psnr": True}) == (13, 0.54)
    assert review_frame({**flickers, "flicker_worst_frame": None}) == (12, 0.5)
