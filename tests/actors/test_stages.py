"""The stage callables without Ray: what each does to a row, and how failures are recorded."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from actors.decode import decode_segment, frame_fields
from actors.encode import encode_segment
from actors.light import LightStage
from actors.rows import EMPTY_FRAMES, batch_to_rows, new_row_fields, rows_to_batch
from actors.strong import StrongStage
from pipeline.quality import metrics
from pipeline.runs.attempts import segment_attempts
from pipeline.config import EncodeSpec, PoolSpec
from pipeline.media import decode_frames, probe_video
from pipeline.storage import Storage
from pipeline.models.inference import to_tensor
from tests.clips import make_clip


def segment_row(path: Path, context: tuple[int, int], core: tuple[int, int]) -> dict:
    probe = probe_video(path, detect_scenes=False)
    return {
        "video_id": "v", "video_key": path.name, "input_uri": str(path), "segment_index": 0,
        "core_start": core[0], "core_end": core[1], "context_start": context[0], "context_end": context[1],
        "seekable": True, "seek_first_pts": probe.pts[context[0]], "seek_last_pts": probe.pts[context[1] - 1],
        "video_start_s": probe.start_s,
        "time_base_num": probe.time_base.numerator, "time_base_den": probe.time_base.denominator,
        "rate_num": probe.avg_rate.numerator, "rate_den": probe.avg_rate.denominator, "sar_num": 0, "sar_den": 0,
        "reference_uri": "", "ref_seekable": False, "ref_seek_first_pts": 0, "ref_seek_last_pts": 0,
        "chunk_uri": str(path.parent / "staging" / "chunk_000000.mp4"),
        **frame_fields(probe, EncodeSpec(), "auto"),
        **new_row_fields(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("stages") / "c.mp4", frames=20, size=(32, 24), vfr=True)


def test_a_segment_through_every_stage(clip: Path, tmp_path: Path):
    pool = PoolSpec()
    row = decode_segment(segment_row(clip, (4, 14), (7, 11)), Storage())
    assert row["status"] == "ok" and row["lr"].shape == (10, 24, 32, 3)
    assert list(row["pts"]) == probe_video(clip, detect_scenes=False).pts[7:11]

    StrongStage("tiny", 2, "cpu", pool, None, None).process(row)
    assert row["lr"].shape == (4, 24, 32, 3) and row["hr"].shape == (4, 48, 64, 3)  # context trimmed
    LightStage("tiny", 2, "cpu", pool, None, None).process(row)
    assert all(math.isfinite(row[m]) for m in ("tfs", "flicker", "lr_psnr", "detail_gain", "light_delta"))
    assert row["lr_psnr"] > 30  # the output agrees with its input
    # Located in time from the source's own pts (a VFR clip), counted from its first frame.
    probe = probe_video(clip, detect_scenes=False)
    times = [float((p - probe.pts[0]) * probe.time_base) for p in probe.pts]
    assert (row["start_s"], row["end_s"]) == pytest.approx((times[7], times[10]))
    assert 8 <= row["tfs_worst_frame"] <= 10 and 7 <= row["lr_psnr_worst_frame"] <= 10
    assert 8 <= row["flicker_worst_frame"] <= 10  # the second frame of a pair
    assert row["tfs_worst_s"] == pytest.approx(times[row["tfs_worst_frame"]])
    assert row["flicker_worst_s"] == pytest.approx(times[row["flicker_worst_frame"]])
    assert row["lr_psnr_worst_s"] == pytest.approx(times[row["lr_psnr_worst_frame"]])

    row["chunk_uri"] = str(tmp_path / "staging" / "chunk.mp4")
    pts = list(row["pts"])
    row = encode_segment(row, Storage(), EncodeSpec())
    assert row["status"] == "ok" and not {"hr", "lr", "pts"} & set(row)  # only small fields go on
    with av.open(row["chunk_uri"]) as chunk:
        frames = list(chunk.decode(video=0))
    assert [f.pts * Fraction(f.time_base) for f in frames] == [
        p * Fraction(row["time_base_num"], row["time_base_den"]) for p in pts
    ]


def test_the_light_stage_measures_against_a_reference(clip: Path, tmp_path: Path):
    """Benchmark mode: the reference's core frames are decoded in the light stage (by seeking
    with their own pts) and psnr, ssim and ewarp taken against them."""
    reference = make_clip(tmp_path / "hr.mkv", frames=20, size=(64, 48), vfr=True, codec="ffv1", pix_fmt="yuv444p")
    ref_pts = probe_video(reference, detect_scenes=False).pts
    row = decode_segment(segment_row(clip, (4, 14), (7, 11)), Storage())
    row |= {"reference_uri": str(reference), "ref_seekable": True, "ref_seek_first_pts": ref_pts[7],
            "ref_seek_last_pts": ref_pts[10]}  # fmt: skip
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(row)
    light = LightStage("tiny", 2, "cpu", PoolSpec(), None, None, storage=Storage())

    ref = decode_frames(reference, 7, 11).frames
    assert np.array_equal(light.reference_frames(row), ref)
    light.process(row)
    assert row["status"] == "ok" and 0 < row["ssim"] < 1 and row["ewarp"] > 0
    # Taken on the output before 8-bit rounding: the rounded frames give nearly the same PSNR.
    assert row["psnr"] == pytest.approx(metrics.psnr(to_tensor(row["hr"], "cpu"), to_tensor(ref, "cpu")), abs=0.05)


def test_a_failure_is_recorded_on_the_row_and_later_stages_pass_it_through(clip: Path, tmp_path: Path):
    row = segment_row(clip, (0, 5), (0, 5))
    row["input_uri"] = str(tmp_path / "vanished.mp4")
    row = decode_segment(row, Storage())
    assert row["status"] == "failed"
    assert row["error"].startswith("decode of frames 0-4:") and "vanished.mp4" in row["error"]
    assert row["lr"] is EMPTY_FRAMES and row["decode_s"] >= 0
    (after,) = batch_to_rows(StrongStage("tiny", 2, "cpu", PoolSpec(), None, None)(rows_to_batch([row])))
    assert after["status"] == "failed" and after["error"] == row["error"]
    assert after["strong_s"] == 0.0 and after["hr"].size == 0  # skipped, not run


def test_every_stage_run_is_counted_a_rerun_too(clip: Path, tmp_path: Path):
    """What Ray does after a lost worker: the same batch runs again on a restarted actor. Each
    run leaves its marker; a failed row passing through a later stage is no run of it."""
    row = segment_row(clip, (4, 14), (7, 11))
    row["chunk_uri"] = str(tmp_path / "staging" / "chunk_000000.mp4")
    row = decode_segment(row, Storage())
    strong = StrongStage("tiny", 2, "cpu", PoolSpec(), None, None, storage=Storage())
    batch = rows_to_batch([row])
    strong(batch)
    (row,) = batch_to_rows(strong(batch))  # the re-run
    assert row["status"] == "ok"
    assert segment_attempts(Storage(), str(tmp_path / "staging")) == {"chunk_000000.mp4": 2}

    failed = segment_row(clip, (0, 5), (0, 5)) | {"input_uri": str(tmp_path / "vanished.mp4")}
    failed["chunk_uri"] = str(tmp_path / "other" / "chunk_000000.mp4")
    strong(rows_to_batch([decode_segment(failed, Storage())]))
    assert segment_attempts(Storage(), str(tmp_path / "other")) == {"chunk_000000.mp4": 1}  # decode only


def test_rows_and_batches_round_trip_ragged_frames():
    rows = [
        {"a": 1, "lr": np.zeros((2, 4, 4, 3), np.uint8)},
        {"a": 2, "lr": np.ones((3, 2, 2, 3), np.uint8)},
    ]
    back = batch_to_rows(rows_to_batch(rows))
    assert [r["a"] for r in back] == [1, 2]
    assert [r["lr"].shape for r in back] == [(2, 4, 4, 3), (3, 2, 2, 3)]
    same = batch_to_rows(rows_to_batch([rows[0], {"a": 3, "lr": np.zeros((2, 4, 4, 3), np.uint8)}]))
    assert same[1]["lr"].shape == (2, 4, 4, 3)
