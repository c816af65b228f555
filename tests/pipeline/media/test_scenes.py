import numpy as np

from pipeline.media.scenes import ContentDetector, detect_cuts, hsv
from tests.clips import synthetic_frame


def small(index: int, scene: int = 0) -> np.ndarray:
    return synthetic_frame(index, 64, 36, scene)


def test_hsv_uses_opencv_8bit_scale():
    colours = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128], [0, 0, 0]]], np.uint8)
    h, s, v = np.moveaxis(hsv(colours)[0], -1, 0)
    np.testing.assert_allclose(h, [0, 60, 120, 0, 0])
    np.testing.assert_allclose(s, [255, 255, 255, 0, 0])
    np.testing.assert_allclose(v, [255, 255, 255, 128, 0])


def test_cut_found_where_content_changes():
    frames = [small(i, scene=int(i >= 15)) for i in range(40)]
    assert detect_cuts(frames) == [15]


def test_no_cut_on_smooth_motion():
    assert detect_cuts(small(i) for i in range(60)) == []


def test_no_cut_on_a_fade():
    base = small(0).astype(np.float32)
    fade = [(base * (1 - i / 50)).astype(np.uint8) for i in range(50)]
    assert detect_cuts(fade) == []


def test_cuts_closer_than_min_scene_frames_are_dropped():
    scenes = [0] * 10 + [1] * 3 + [0] * 10 + [1] * 10
    frames = [small(i, scene) for i, scene in enumerate(scenes)]
    assert detect_cuts(frames, min_scene_frames=8) == [10, 23]
    assert detect_cuts(frames, min_scene_frames=2) == [10, 13, 23]


def test_no_cut_before_min_scene_frames_from_start():
    frames = [small(i, scene=int(i >= 3)) for i in range(20)]
    assert detect_cuts(frames, min_scene_frames=8) == []


def test_push_reports_each_frame():
    detector = ContentDetector(threshold=27.0, min_scene_frames=1)
    results = [detector.push(small(i, scene=int(i >= 5))) for i in range(8)]
    assert results == [False] * 5 + [True] + [False] * 2
