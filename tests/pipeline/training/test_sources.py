"""Training material: images found once each, reduced at load, unusable files named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.training.sources import SourceError, find_media, load_media, load_sources
from tests.pipeline.training.conftest import textured_image, write_image


def test_find_media_skips_other_files_and_counts_links_once(photo_dir: Path) -> None:
    os.symlink(photo_dir / "photo0.png", photo_dir / "alias.png")
    found = find_media([photo_dir])
    assert len(found) == 3
    assert sorted(p.resolve().name for p in found) == [
        "photo0.png",
        "photo1.png",
        "photo2.png",
    ]


def test_load_media_reduces_the_longer_side(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo2.png", max_side=250)
    assert source.frames.shape == (1, 3, 140, 250)
    assert not source.is_video


def test_small_images_are_skipped_and_an_empty_folder_is_an_error(
    tmp_path: Path,
) -> None:
    write_image(tmp_path / "icon.png", textured_image(32, 32))
    with pytest.raises(SourceError, match="at least 64 pixels"):
        load_sources([tmp_path], max_side=512, min_side=64)
    with pytest.raises(SourceError, match="does not exist"):
        find_media([tmp_path / "missing"])


def test_an_undecodable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="broken.png"):
        load_sources([tmp_path], max_side=512, min_side=8)
