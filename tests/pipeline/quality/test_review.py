"""Review flags, thresholds and time codes (pipeline/quality/review.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pipeline.config import ConfigError, ReviewSpec, load_job_spec
from pipeline.quality.review import (
    NO_FRAME,
    flag_thresholds,
    locate,
    review_flags,
    review_frame,
    segment_review,
    timecode,
)

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


def test_the_manifest_review_of_a_segment_row():
    row = {"status": "ok", "tfs": 2.5, "flicker": 0.02, "lr_psnr": 45.0, "light_delta": 0.001,
           "tfs_worst_frame": 17, "flicker_worst_frame": 18, "lr_psnr_worst_frame": NO_FRAME}  # fmt: skip
    review = segment_review(row, DEFAULT)
    assert review["flag_tfs"] and review["flag_flicker"] and review["flagged"] and not review["flag_lr_psnr"]
    assert (review["tfs_worst_frame"], review["flicker_worst_frame"], review["lr_psnr_worst_frame"]) == (17, 18, None)
    # A failed segment's figures (taken before a later stage failed) raise no flag: its failure is the news.
    assert not segment_review({**row, "status": "failed"}, DEFAULT)["flagged"]


def test_thresholds_are_job_settings_outside_the_config_hash(tmp_path):
    base = load_job_spec(None, {"input": "in", "output": "out"})
    job_file = tmp_path / "job.yaml"
    job_file.write_text("review:\n  min_lr_psnr: null  # off\n")
    strict = load_job_spec(job_file, {"input": "in", "output": "out", "review.max_tfs": 0.2})
    assert strict.review.max_tfs == 0.2 and strict.review.min_lr_psnr is None
    assert flag_thresholds(strict.review) == {
        "min_lr_psnr": None, "max_tfs": 0.2, "max_flicker": DEFAULT.max_flicker, "max_light_delta": 0.02,
    }  # fmt: skip
    # They change no output video: a finished video is not redone for new thresholds.
    assert strict.config_hash({}) == base.config_hash({})
    with pytest.raises(ConfigError, match="review.max_tfs"):
        load_job_spec(None, {"input": "in", "output": "out", "review.max_tfs": -1})
    with pytest.raises(ConfigError, match="review.max_flicker"):
        load_job_spec(None, {"input": "in", "output": "out", "review.max_flicker": -1})


def test_locate_counts_from_the_first_frame_of_the_video():
    # Frames at 10.0 s, 10.04 s, 10.1 s (variable rate) in a 1/1000 time base; the video starts at 9.96 s.
    located = locate([10_000, 10_040, 10_100], Fraction(1, 1000), 9.96, 30, {"tfs_worst_frame": 32,
                     "lr_psnr_worst_frame": NO_FRAME})  # fmt: skip
    assert located["start_s"] == pytest.approx(0.04) and located["end_s"] == pytest.approx(0.14)
    assert located["tfs_worst_s"] == pytest.approx(0.14) and math.isnan(located["lr_psnr_worst_s"])


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
