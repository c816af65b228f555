"""The README documents what the code defines: manifest columns and the two commands."""

from pathlib import Path

import pytest

from pipeline.manifest import SEGMENT_SCHEMA, VIDEO_SCHEMA

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("column", [f.name for f in SEGMENT_SCHEMA] + [f.name for f in VIDEO_SCHEMA])
def test_every_manifest_column_is_documented(column):
    assert f"`{column}`" in README


def test_the_two_commands_come_first():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
