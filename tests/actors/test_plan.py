"""The plan task: a bad input's or reference's error comes back, never raised."""

from __future__ import annotations

from actors.plan import plan_stored_video
from pipeline.config import LimitsSpec, SegmentSpec
from pipeline.storage import Storage
from tests.clips import make_clip


def test_plan_stored_video_names_the_reference_in_its_error(tmp_path):
    lr = make_clip(tmp_path / "lr.mp4", frames=10, size=(32, 24))
    hr = make_clip(tmp_path / "hr.mp4", frames=10, size=(64, 48))
    args = (Storage(), str(lr), SegmentSpec(), 1, LimitsSpec())
    assert plan_stored_video(*args, str(hr), 2)[1] == ""
    plan, error = plan_stored_video(*args, str(hr), 3)
    assert plan is None and error == f"reference {hr}: its frames are 64x48, not the input's 32x24 x3 = 96x72"
    plan, error = plan_stored_video(*args, str(tmp_path / "missing.mp4"), 2)
    assert plan is None and error.startswith(f"reference {tmp_path / 'missing.mp4'}: cannot open it: ")


def test_an_input_that_cannot_be_opened_fails_its_plan_only(tmp_path):
    plan, error = plan_stored_video(Storage(), str(tmp_path / "gone.mp4"), SegmentSpec(), 1, LimitsSpec())
    assert plan is None and error.startswith("StorageError: ") and "no such file" in error
