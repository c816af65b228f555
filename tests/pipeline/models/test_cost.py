"""Cost per output frame, counted on the meta device."""

from __future__ import annotations

import pytest

from pipeline.models.cost import gmac_per_frame, parameters


def test_light_cost_grows_with_output_pixels_and_strong_with_input() -> None:
    assert gmac_per_frame("light", "tiny", 4) == pytest.approx(4 * gmac_per_frame("light", "tiny", 2), rel=1e-6)
    small, big = gmac_per_frame("strong", "tiny", 4), gmac_per_frame("strong", "tiny", 4, (180, 320))
    assert big == pytest.approx(4 * small, rel=0.01)


def test_tiny_pair_is_about_2_7_gmac_per_640x360_frame() -> None:
    assert 2.2 < gmac_per_frame("strong", "tiny", 4) + gmac_per_frame("light", "tiny", 4) < 3.2


def test_parameters_and_radius() -> None:
    assert parameters("strong", "tiny", 4) == (105_122, 3)
    assert parameters("light", "none", 4) == (0, 0)
