import av
import numpy as np
import pytest

from pipeline.media import MediaError, decode_frames, probe_video
from pipeline.media.decode import _decode_after_seek, video_stream
from tests.clips import make_clip


@pytest.fixture(scope="module", params=["mp4-h264", "mkv-vfr", "mkv-hevc-open-gop"])
def clip(request, tmp_path_factory):
    """Several GOPs with B-frames; x265's default open GOPs make leading pictures reference the previous GOP."""
    d = tmp_path_factory.mktemp("decode")
    path = {
        "mp4-h264": lambda: make_clip(d / "c.mp4", frames=60, gop=10),
        "mkv-vfr": lambda: make_clip(d / "v.mkv", frames=60, gop=10, vfr=True),
        "mkv-hevc-open-gop": lambda: make_clip(d / "h.mkv", frames=60, gop=10, codec="hevc"),
    }[request.param]()
    with av.open(str(path)) as container:
        reference = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return path, probe_video(path, detect_scenes=False), reference


@pytest.mark.parametrize("start, stop", [(0, 5), (7, 8), (10, 25), (13, 31), (29, 60), (59, 60), (0, 60)])
def test_range_equals_sequential_decode(clip, start, stop):
    path, probe, reference = clip
    frames, pts = decode_frames(path, start, stop, (probe.pts[start], probe.pts[stop - 1]))
    assert frames.dtype == np.uint8 and frames.shape == (stop - start, probe.height, probe.width, 3)
    assert np.array_equal(frames, reference[start:stop])
    assert pts == probe.pts[start:stop]


@pytest.mark.parametrize("start", [13, 47])
def test_with_pts_it_seeks_instead_of_decoding_from_the_start(clip, start):
    path, probe, reference = clip
    with av.open(str(path)) as container:
        decoded = _decode_after_seek(container, video_stream(container), 5, (probe.pts[start], probe.pts[start + 4]))
    assert decoded is not None and np.array_equal(decoded.frames, reference[start : start + 5])


def test_without_pts_decodes_from_the_start(clip):
    path, _, reference = clip
    assert np.array_equal(decode_frames(path, 21, 34).frames, reference[21:34])


def test_file_object_source(clip):
    path, probe, reference = clip
    with open(path, "rb") as f:
        assert np.array_equal(decode_frames(f, 33, 47, (probe.pts[33], probe.pts[46])).frames, reference[33:47])
        assert np.array_equal(
            decode_frames(f, 2, 4, (probe.pts[2], probe.pts[3])).frames, reference[2:4]
        )  # reused object


def test_wrong_pts_fall_back_to_sequential(clip):
    path, probe, reference = clip
    shifted = [p + 1 for p in probe.pts]  # no frame carries these pts
    assert np.array_equal(decode_frames(path, 30, 35, (shifted[30], shifted[34])).frames, reference[30:35])


def test_range_past_the_end(clip):
    path, probe, _ = clip
    with pytest.raises(MediaError, match="has 60"):
        decode_frames(path, 55, 61)
    with pytest.raises(MediaError, match="has 60"):
        decode_frames(path, 55, 61, (probe.pts[55], probe.pts[59] + 1))
    with pytest.raises(ValueError):
        decode_frames(path, 5, 5)
