import pickle
import random
from fractions import Fraction

import av
import pytest

from pipeline.media import MediaError, decode_frames, probe_video
from pipeline.media.probe import output_timecode
from tests.clips import clip_timing, damage_packet, make_audio_only, make_clip, make_corrupt, make_truncated


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    return {
        "cfr": make_clip(d / "cfr.mp4", frames=40, audio_streams=2, subtitle=True),
        "vfr": make_clip(d / "vfr.mkv", frames=40, vfr=True, audio_streams=1),
        "cuts": make_clip(d / "cuts.mp4", frames=60, scene_cut_at=[20, 41]),
        "rotated": make_clip(d / "rot.mp4", frames=8, rotation=90),
        "interlaced": make_clip(d / "il.mp4", frames=8, size=(160, 96), interlaced=True),
        "dir": d,
    }


def test_cfr_clip(clips):
    probe = probe_video(clips["cfr"])
    assert (probe.n_frames, probe.width, probe.height) == (40, 160, 90)
    assert probe.codec == "h264" and probe.pix_fmt == "yuv420p"
    assert [p * probe.time_base for p in probe.pts] == [Fraction(i, 24) for i in range(40)]
    assert probe.avg_rate == 24 and not probe.pts_synthetic
    assert probe.duration_s == pytest.approx(40 / 24)
    assert (probe.audio_streams, probe.subtitle_streams) == (2, 1)
    assert (probe.rotation, probe.interlaced) == (0, False)
    assert pickle.loads(pickle.dumps(probe)) == probe


def test_vfr_pts_survive_matroska_millisecond_rounding(clips):
    probe = probe_video(clips["vfr"])
    ticks, time_base = clip_timing(40, 24, vfr=True)
    assert probe.n_frames == 40 and probe.time_base == Fraction(1, 1000)
    for got, want in zip(probe.pts, ticks):
        assert abs(got * probe.time_base - want * time_base) <= Fraction(1, 2000)
    assert len(set(b - a for a, b in zip(probe.pts, probe.pts[1:]))) > 2  # really variable


def test_file_object_gives_the_same_probe(clips):
    with open(clips["vfr"], "rb") as f:
        assert probe_video(f) == probe_video(clips["vfr"])


def test_scene_cuts_at_the_generated_cuts(clips):
    cuts = probe_video(clips["cuts"]).cuts
    assert len(cuts) == 2 and abs(cuts[0] - 20) <= 1 and abs(cuts[1] - 41) <= 1
    assert probe_video(clips["cuts"], detect_scenes=False).cuts == []


def test_rotation_and_interlacing(clips):
    assert probe_video(clips["rotated"]).rotation == 90
    assert probe_video(clips["interlaced"]).interlaced


def elementary_stream(src, dst):
    """The H.264 packets of `src` as a raw stream: no container, so no pts and no duration."""
    with av.open(str(src)) as container, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(container.streams.video[0])
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    return dst


def test_missing_timestamps_are_synthesised_from_the_rate(clips):
    raw = elementary_stream(clips["cfr"], clips["dir"] / "raw.h264")
    probe = probe_video(raw)
    assert probe.pts_synthetic and probe.decode_pts is None
    assert probe.n_frames == 40 and probe.pts == list(range(40))
    assert probe.time_base == 1 / probe.avg_rate


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: _written(d / "zero.mp4", b""), "empty file"),
        (lambda d: make_corrupt(d / "corrupt.mp4"), "cannot open: Invalid data"),
        (lambda d: _written(d / "text.mp4", b"not a video\n"), "cannot open: Invalid data"),
        (lambda d: make_audio_only(d / "audio.m4a"), "no video stream"),
        (lambda d: make_truncated(make_clip(d / "full.mp4"), d / "cut.mp4"), "cannot open"),  # moov lost
        (lambda d: make_truncated(make_clip(d / "full.mkv"), d / "cut.mkv"), "truncated"),
    ],
    ids=["zero-byte", "corrupt", "text", "audio-only", "truncated-mp4", "truncated-mkv"],
)
def test_unusable_inputs_raise_media_error(tmp_path, make, message):
    with pytest.raises(MediaError, match=message):
        probe_video(make(tmp_path))


def test_truncated_faststart_mp4_fails_while_decoding(tmp_path):
    full = make_clip(tmp_path / "full.mp4", frames=48)
    faststart = tmp_path / "fast.mp4"
    with av.open(str(full)) as src, av.open(str(faststart), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    with pytest.raises(MediaError, match="truncated|decoding failed at frame"):
        probe_video(make_truncated(faststart, tmp_path / "cut.mp4"))


def test_corrupt_packets_mid_stream_name_the_frame(tmp_path):
    """The probe decodes every frame, so damage anywhere fails the video at planning, on the
    first frame that does not decode; a segment decode of the damaged range fails the same way."""
    path = make_clip(tmp_path / "damaged.mkv", frames=96, size=(320, 180))
    data = bytearray(path.read_bytes())
    middle = len(data) * 2 // 5
    data[middle : middle + 3000] = random.Random(1).randbytes(3000)
    path.write_bytes(data)
    with pytest.raises(MediaError, match=r"decoding failed at frame \d+: Invalid data"):
        probe_video(path)
    with pytest.raises(MediaError, match=r"decoding failed at frame \d+"):
        decode_frames(path, 60, 70, (60, 69))


# The damaged clips below decode "fine" with FFmpeg's defaults: the decoder conceals the damage
# (paints over it) or drops the frames that follow, without an error.
def test_damage_the_decoder_would_conceal_fails_the_probe(tmp_path):
    path = damage_packet(make_clip(tmp_path / "hevc.mp4", frames=24, size=(96, 64), codec="hevc"), 14)
    with pytest.raises(MediaError, match=r"decoding failed at frame \d+: Invalid data"):
        probe_video(path)


def test_a_frame_that_only_partly_decodes_fails_the_probe(tmp_path):
    """MPEG-4 Part 2 resynchronises inside a damaged picture and hands out the rest of it,
    flagged corrupt: treated like any other decode error."""
    path = damage_packet(make_clip(tmp_path / "mpeg4.mp4", frames=24, size=(96, 64), codec="mpeg4"), 10, seed=1)
    with pytest.raises(MediaError, match=r"decoding failed at frame 10: damaged data, only partly decoded"):
        probe_video(path)
    with pytest.raises(MediaError, match="only partly decoded"):
        decode_frames(path, 8, 12)


def test_damage_in_the_last_packet_is_not_lost_at_the_end_of_the_stream(tmp_path):
    """Frame-threaded decoding drops an error (and its frames) met while draining the threads."""
    path = damage_packet(make_clip(tmp_path / "tail.mp4", frames=24, size=(96, 64), codec="hevc"), 23)
    with pytest.raises(MediaError, match=r"decoding failed at frame \d+: Invalid data"):
        probe_video(path)


def test_limits_name_the_size_and_the_limit(clips):
    clip = clips["cfr"]  # 160x90, 40 frames at 24 fps
    with pytest.raises(MediaError, match="^160x90 is above the limit 128x72$"):
        probe_video(clip, max_width=128, max_height=72)
    with pytest.raises(MediaError, match="^160x90 is above the limit of width 128$"):
        probe_video(clip, max_width=128)
    with pytest.raises(MediaError, match="^160x90 is above the limit of height 72$"):
        probe_video(clip, max_height=72)
    with pytest.raises(MediaError, match=r"^duration 1.67 s is above the limit 1.5 s$"):
        probe_video(clip, max_duration_s=1.5)
    probe = probe_video(clip, max_width=160, max_height=90, max_duration_s=40 / 24)  # at the limit: fine
    assert probe.n_frames == 40


def test_limits_are_checked_on_the_header_before_decoding(tmp_path):
    """A damaged clip over a limit fails on the limit, not on the damage: no frame was decoded.
    Matroska states the duration only for the whole file; that is the one checked."""
    path = damage_packet(make_clip(tmp_path / "big.mkv", frames=24, size=(96, 64), codec="hevc"), 14)
    with pytest.raises(MediaError, match="decoding failed"):
        probe_video(path)
    with pytest.raises(MediaError, match="^96x64 is above the limit 64x64$"):
        probe_video(path, max_width=64, max_height=64)
    with pytest.raises(MediaError, match=r"^duration 1.00 s is above the limit 0.5 s$"):
        probe_video(path, max_duration_s=0.5)


def test_a_stream_without_a_stated_duration_is_checked_after_decoding(tmp_path, clips):
    raw = elementary_stream(clips["cfr"], tmp_path / "raw.h264")
    with av.open(str(raw)) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    # 40 frames timed at the rate FFmpeg assumes for raw H.264 (25 fps)
    with pytest.raises(MediaError, match=r"^duration 1.60 s is above the limit 1.5 s$"):
        probe_video(raw, max_duration_s=1.5)


@pytest.mark.parametrize(
    ("timecode", "per_frame", "expected"),
    [("10:00:00:12", 2, "10:00:00:24"), ("01:02:03;02", 2, "01:02:03;04"), ("10:00:00:12", 1, "10:00:00:12"),
     (None, 2, None)],
)  # fmt: skip
def test_the_output_counts_the_start_timecode_at_its_own_rate(timecode, per_frame, expected):
    assert output_timecode(timecode, per_frame) == expected
