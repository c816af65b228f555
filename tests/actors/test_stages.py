"""The stage callables without Ray: what each does to a segment, and how failures are recorded."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from actors.decode import decode_segment
from actors.encode import encode_segment
from actors.light import LightStage
from actors.model_stage import set_torch_threads
from actors.rows import records_from_batch, records_to_batch
from actors.strong import StrongStage
from pipeline.config import EncodeSpec, PoolSpec
from pipeline.media import decode_frames, probe_video
from pipeline.models.inference import to_tensor
from pipeline.quality import metrics
from pipeline.runs.attempts import segment_attempts
from pipeline.segment import SegmentRecord
from pipeline.storage import Storage
from tests.actors.segments import decoded, segment_record
from tests.clips import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("stages") / "c.mp4", frames=20, size=(32, 24), vfr=True)


def test_a_segment_through_every_stage(clip: Path, tmp_path: Path):
    pool = PoolSpec()
    segment = decoded(clip, (4, 14), (7, 11))
    assert segment.lr.shape == (10, 24, 32, 3)
    assert list(segment.pts) == probe_video(clip, detect_scenes=False).pts[7:11]

    StrongStage("tiny", 2, "cpu", pool, None, None).process(segment)
    assert segment.lr.shape == (4, 24, 32, 3) and segment.hr.shape == (4, 48, 64, 3)  # context trimmed
    LightStage("tiny", 2, "cpu", pool, None, None).process(segment)
    found = (segment.tfs, segment.flicker, segment.lr_psnr, segment.detail_gain, segment.light_delta)
    assert all(value is not None and math.isfinite(value) for value in found)
    assert segment.lr_psnr > 30  # the output agrees with its input
    # Located in time from the source's own pts (a VFR clip), counted from its first frame.
    probe = probe_video(clip, detect_scenes=False)
    times = [float((p - probe.pts[0]) * probe.time_base) for p in probe.pts]
    assert (segment.start_s, segment.end_s) == pytest.approx((times[7], times[10]))
    assert 8 <= segment.tfs_worst_frame <= 10 and 7 <= segment.lr_psnr_worst_frame <= 10
    assert 8 <= segment.flicker_worst_frame <= 10  # the second frame of a pair
    assert segment.tfs_worst_s == pytest.approx(times[segment.tfs_worst_frame])
    assert segment.flicker_worst_s == pytest.approx(times[segment.flicker_worst_frame])
    assert segment.lr_psnr_worst_s == pytest.approx(times[segment.lr_psnr_worst_frame])

    segment.chunk_uri = str(tmp_path / "staging" / "chunk.mp4")
    pts = list(segment.pts)
    row = encode_segment(segment.to_row(), Storage(), EncodeSpec())
    assert not {"hr", "lr", "pts"} & set(row)  # only small fields go on
    encoded = SegmentRecord.from_row(row)
    assert encoded.status == "ok" and encoded.encoder == "libx264" and encoded.encoded_at is not None
    with av.open(encoded.chunk_uri) as chunk:
        frames = list(chunk.decode(video=0))
    assert [f.pts * Fraction(f.time_base) for f in frames] == [p * encoded.time_base for p in pts]


def test_the_light_stage_measures_against_a_reference(clip: Path, tmp_path: Path):
    """Benchmark mode: the reference's core frames are decoded in the light stage (by seeking
    with their own pts) and psnr, ssim and ewarp taken against them."""
    reference = make_clip(tmp_path / "hr.mkv", frames=20, size=(64, 48), vfr=True, codec="ffv1", pix_fmt="yuv444p")
    ref_pts = probe_video(reference, detect_scenes=False).pts
    segment = decoded(clip, (4, 14), (7, 11))
    segment.reference_uri, segment.ref_seekable = str(reference), True
    segment.ref_seek_first_pts, segment.ref_seek_last_pts = ref_pts[7], ref_pts[10]
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(segment)
    light = LightStage("tiny", 2, "cpu", PoolSpec(), None, None, storage=Storage())

    ref = decode_frames(reference, 7, 11).frames
    assert np.array_equal(light.reference_frames(segment), ref)
    light.process(segment)
    assert segment.status == "ok" and 0 < segment.ssim < 1 and segment.ewarp > 0
    # Taken on the output before 8-bit rounding: the rounded frames give nearly the same PSNR.
    expected = metrics.psnr(to_tensor(segment.hr, "cpu"), to_tensor(ref, "cpu"))
    assert segment.psnr == pytest.approx(expected, abs=0.05)


def test_a_failure_is_recorded_on_the_segment_and_later_stages_pass_it_through(clip: Path, tmp_path: Path):
    segment = segment_record(clip, (0, 5), (0, 5))
    segment.input_uri = str(tmp_path / "vanished.mp4")
    failed = SegmentRecord.from_row(decode_segment(segment.to_row(), Storage()))
    assert failed.status == "failed"
    assert failed.error.startswith("decode of frames 0-4:") and "vanished.mp4" in failed.error
    assert failed.lr.size == 0 and failed.decode_s >= 0
    (after,) = records_from_batch(StrongStage("tiny", 2, "cpu", PoolSpec(), None, None)(records_to_batch([failed])))
    assert after.status == "failed" and after.error == failed.error
    assert after.strong_s == 0.0 and after.hr.size == 0  # skipped, not run


def test_every_stage_run_is_counted_a_rerun_too(clip: Path, tmp_path: Path):
    """What Ray does after a lost worker: the same batch runs again on a restarted actor. Each
    run leaves its marker; a failed segment passing through a later stage is no run of it."""
    segment = segment_record(clip, (4, 14), (7, 11))
    segment.chunk_uri = str(tmp_path / "staging" / "chunk_000000.mp4")
    segment = SegmentRecord.from_row(decode_segment(segment.to_row(), Storage()))
    strong = StrongStage("tiny", 2, "cpu", PoolSpec(), None, None, storage=Storage())
    batch = records_to_batch([segment])
    strong(batch)
    (segment,) = records_from_batch(strong(batch))  # the re-run
    assert segment.status == "ok"
    assert segment_attempts(Storage(), str(tmp_path / "staging")) == {"chunk_000000.mp4": 2}

    failed = segment_record(clip, (0, 5), (0, 5))
    failed.input_uri = str(tmp_path / "vanished.mp4")
    failed.chunk_uri = str(tmp_path / "other" / "chunk_000000.mp4")
    strong(records_to_batch([SegmentRecord.from_row(decode_segment(failed.to_row(), Storage()))]))
    assert segment_attempts(Storage(), str(tmp_path / "other")) == {"chunk_000000.mp4": 1}  # decode only


def test_batches_round_trip_ragged_frames(clip: Path):
    first, second = segment_record(clip, (0, 5), (0, 5)), segment_record(clip, (4, 14), (7, 11))
    first.lr, second.lr = np.zeros((2, 4, 4, 3), np.uint8), np.ones((3, 2, 2, 3), np.uint8)
    back = records_from_batch(records_to_batch([first, second]))
    assert [s.core_start for s in back] == [0, 7]
    assert [s.lr.shape for s in back] == [(2, 4, 4, 3), (3, 2, 2, 3)]
    second.lr = np.zeros((2, 4, 4, 3), np.uint8)  # same shapes: still one array per segment
    same = records_from_batch(records_to_batch([first, second]))
    assert same[1].lr.shape == (2, 4, 4, 3)


@pytest.mark.parametrize(
    "pool, device, expected",
    [
        (PoolSpec(), "cpu", "cores"),  # a pool's one actor: every core
        (PoolSpec(size=2), "cpu", "half"),  # two actors share them
        (PoolSpec(size=16), "cpu", 1),  # at least one thread per reserved CPU, rounded up
        (PoolSpec(size=16, num_cpus=3), "cpu", 3),
        (PoolSpec(torch_threads=5), "cpu", 5),  # the user's setting wins
        (PoolSpec(), "cuda", 1),  # on a GPU the threads only feed it
    ],
)
def test_torch_threads_by_pool(monkeypatch: pytest.MonkeyPatch, pool, device, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)))
    before = torch.get_num_threads()
    try:
        set_torch_threads(pool, torch.device(device))
        assert torch.get_num_threads() == {"cores": 8, "half": 4}.get(expected, expected)
    finally:
        torch.set_num_threads(before)
