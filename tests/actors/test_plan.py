"""The plan task: a bad input's or reference's error comes back, never raised."""

from __future__ import annotations

from actors.plan import plan_stored_video
from pipeline.config import load_job_spec
from pipeline.storage import Storage
from tests.clips import make_clip


def test_plan_stored_video_names_the_reference_in_its_error(tmp_path):
    lr = make_clip(tmp_path / "lr.mp4", frames=10, size=(32, 24))
    hr = make_clip(tmp_path / "hr.mp4", frames=10, size=(64, 48))
    x2, x3 = (load_job_spec(None, {"input": str(lr), "output": str(tmp_path), "scale": s}) for s in (2, 3))
    assert plan_stored_video(Storage(), str(lr), x2, 1, str(hr))[1] == ""
    plan, error = plan_stored_video(Storage(), str(lr), x3, 1, str(hr))
    assert plan is None and error == f"reference {hr}: its frames are 64x48, not the input's 32x24 x3 = 96x72"
    plan, error = plan_stored_video(Storage(), str(lr), x2, 1, str(tmp_path / "missing.mp4"))
    assert plan is None and error.startswith(f"reference {tmp_path / 'missing.mp4'}: cannot open it: ")


def test_an_input_that_cannot_be_opened_fails_its_plan_only(tmp_path):
    spec = load_job_spec(None, {"input": str(tmp_path), "output": str(tmp_path / "out")})
    plan, error = plan_stored_video(Storage(), str(tmp_path / "gone.mp4"), spec, 1)
    assert plan is None and error.startswith("StorageError: ") and "no such file" in error
