import av
import numpy as np
import pytest

from pipeline.media import MediaError, decode_frames, probe_video
from pipeline.media.decode import (
    _frames_after_seek,
    deinterlace_frames,
    deinterlace_mode,
    frames_per_frame,
    video_stream,
)
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
@pytest.mark.parametrize("pad", [0, 1])
def test_with_pts_it_seeks_instead_of_decoding_from_the_start(clip, start, pad):
    path, probe, reference = clip
    with av.open(str(path)) as container:
        seek = (probe.pts[start], probe.pts[start + 4])
        tagged = list(_frames_after_seek(container, video_stream(container), 5, seek, pad))
    # With pad, the neighbour each side comes too, marked as not part of the range.
    assert [wanted for _, wanted in tagged] == [False] * pad + [True] * 5 + [False] * pad
    frames = np.stack([f.to_ndarray(format="rgb24") for f, _ in tagged])
    assert np.array_equal(frames, reference[start - pad : start + 5 + pad])


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


@pytest.fixture(scope="module")
def interlaced(tmp_path_factory):
    path = make_clip(tmp_path_factory.mktemp("interlaced") / "i.mp4", frames=30, size=(48, 32), gop=10, interlaced=True)
    probe = probe_video(path, detect_scenes=False)
    return path, probe, decode_frames(path, 0, 30, deinterlace="all").frames


@pytest.mark.parametrize("start, stop", [(0, 4), (9, 17), (10, 11), (25, 30)])
def test_deinterlaced_range_equals_a_whole_video_pass(interlaced, start, stop):
    """bwdif reads each frame's neighbours: a segment's frames are those of one pass over the video,
    whether the range was reached by seeking or by decoding from the start."""
    path, probe, whole = interlaced
    assert probe.interlaced and probe.field_order == "tff"
    seek = (probe.pts[start], probe.pts[stop - 1])
    for pts_range in (seek, None):
        frames, pts = decode_frames(path, start, stop, pts_range, deinterlace="interlaced")
        assert np.array_equal(frames, whole[start:stop])
        assert pts == probe.pts[start:stop]  # one frame per frame, at its own time


@pytest.mark.parametrize("start, stop", [(0, 4), (9, 17), (10, 11), (25, 30)])
def test_field_rate_gives_two_frames_per_frame_as_a_whole_video_pass(interlaced, start, stop):
    """send_field: a frame per field, timed by bwdif in half the stream's time base (the first field
    at twice the frame's pts, the second half a frame later); a range gives a whole pass's frames."""
    path, probe, _ = interlaced
    whole, whole_pts = decode_frames(path, 0, 30, deinterlace="fields")
    assert len(whole) == len(whole_pts) == 60
    step = probe.pts[1] - probe.pts[0]
    assert whole_pts[::2] == [2 * p for p in probe.pts] and whole_pts[1::2] == [2 * p + step for p in probe.pts]
    for pts_range in ((probe.pts[start], probe.pts[stop - 1]), None):
        frames, pts = decode_frames(path, start, stop, pts_range, deinterlace="fields")
        assert np.array_equal(frames, whole[2 * start : 2 * stop]) and pts == whole_pts[2 * start : 2 * stop]


def test_which_frames_bwdif_takes_and_how_many_it_gives():
    assert [deinterlace_frames(s, True) for s in ("auto", "always", "never")] == ["interlaced", "all", None]
    assert [deinterlace_frames(s, False) for s in ("auto", "always", "never")] == [None, "all", None]
    assert [deinterlace_frames(s, True, "field") for s in ("auto", "always", "never")] == ["fields", "fields", None]
    assert deinterlace_frames("auto", False, "field") is None  # a progressive source keeps its rate
    assert [frames_per_frame(f) for f in ("interlaced", "all", "fields", None)] == [1, 1, 2, 1]
    assert deinterlace_mode("fields") == "bwdif=mode=send_field:parity=auto:deint=all"


def test_deinterlacing_changes_the_woven_frames(interlaced):
    path, _, whole = interlaced
    woven = decode_frames(path, 0, 30).frames
    assert woven.shape == whole.shape and not np.array_equal(woven, whole)
    with pytest.raises(ValueError, match="deinterlace"):
        decode_frames(path, 0, 2, deinterlace="yes")


def test_deep_frames_keep_ten_bits(tmp_path):
    """A 10-bit source decoded deep keeps the steps that 8-bit RGB merges (4 ten-bit codes to one)."""
    path = tmp_path / "ten.mkv"
    width, height = 256, 16
    luma = (400 + np.arange(width, dtype=np.uint16) // 4)[None, :].repeat(height, axis=0)  # 64 codes
    chroma = np.full((height // 2, width), 512, np.uint16)  # the U and V planes, one after the other
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p10le")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    deep = decode_frames(path, 0, 1, deep=True).frames
    shallow = decode_frames(path, 0, 1).frames
    assert deep.dtype == np.uint16 and shallow.dtype == np.uint8
    assert len(np.unique(deep[0, 0, :, 1])) == 64
    assert len(np.unique(shallow[0, 0, :, 1])) <= 20
