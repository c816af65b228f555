"""The generator script reproduces the bundled honest-start files and their registered sha256
(trained files replace some of them: those are checked by test_shipped_weights.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models.make_initial_weights import main
from pipeline.models.registry import SCALES, get_spec
from pipeline.models.weights import BUNDLED_DIR, weights_sha256


def test_regenerated_tiny_weights_match_the_untrained_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--out", str(tmp_path)])
    printed = capsys.readouterr().out
    for kind in ("strong", "light"):
        for scale in SCALES:
            name = f"{kind}_tiny_x{scale}.safetensors"
            same = (tmp_path / name).read_bytes() == (BUNDLED_DIR / name).read_bytes()
            assert same == (not get_spec(kind, "tiny").weights[scale].trained)
            assert (weights_sha256(kind, "tiny", scale) in printed) == same


def test_refuses_big_sizes_in_the_package() -> None:
    with pytest.raises(SystemExit):
        main(["--sizes", "base"])


def test_trained_files_in_the_package_are_never_overwritten(capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in BUNDLED_DIR.glob("*.safetensors")}
    main([])
    printed = capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in BUNDLED_DIR.glob("*.safetensors")}
    assert after == before  # untrained files regenerate to the same bytes, trained ones are skipped
    for kind in ("strong", "light"):
        for scale in SCALES:
            listed = weights_sha256(kind, "tiny", scale) in printed
            assert listed == (not get_spec(kind, "tiny").weights[scale].trained)
