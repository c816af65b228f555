"""The generator of honest-start weights: what the WeightsError of a size without bundled weights
tells users to run (`--sizes base --out DIR`) gives files that load, verified, from weights_dir;
and it never touches the package's trained files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.models.make_initial_weights import main, make_weights
from pipeline.models.registry import SCALES, get_spec
from pipeline.models.weights import BUNDLED_DIR, load_model, weights_sha256


@pytest.mark.parametrize(("kind", "scale"), [("light", 2), ("light", 3), ("light", 4), ("strong", 2)])
def test_generated_base_files_are_the_registered_ones_and_load_from_weights_dir(
    tmp_path: Path, kind: str, scale: int
) -> None:
    path, sha = make_weights(kind, "base", scale, tmp_path)
    assert sha == weights_sha256(kind, "base", scale)  # the same seed and torch build give the same bytes
    model, loaded = load_model(kind, "base", scale, "cpu", weights_dir=tmp_path)
    assert loaded == sha and path.parent == tmp_path
    if kind == "light":  # an honest start: the light model passes its input through
        frames = torch.rand(1, 3, 16, 16)
        assert torch.equal(model(frames), frames)


def test_refuses_big_sizes_in_the_package() -> None:
    with pytest.raises(SystemExit):
        main(["--sizes", "base"])


def test_trained_files_in_the_package_are_never_overwritten(capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in BUNDLED_DIR.glob("*.safetensors")}
    main([])
    printed = capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in BUNDLED_DIR.glob("*.safetensors")} == before
    for kind in ("strong", "light"):
        for scale in SCALES:  # only an untrained file would be regenerated, and listed
            listed = weights_sha256(kind, "tiny", scale) in printed
            assert listed == (not get_spec(kind, "tiny").weights[scale].trained)
