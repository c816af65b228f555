from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.media import MediaError, decode_frames, encode_chunk, probe_video, stitch_chunks
from tests.clips import make_clip, make_unstamped_audio

BOUNDS = [(0, 13), (13, 29), (29, 48)]  # three chunks of uneven length


def encode_chunks(src, tmp_path, codec, container_format, bounds=BOUNDS, rate=None):
    probe = probe_video(src, detect_scenes=False)
    paths = []
    for n, (start, stop) in enumerate(bounds):
        path = str(tmp_path / f"chunk{n}.{container_format}")
        encode_chunk(
            decode_frames(src, start, stop, (probe.pts[start], probe.pts[stop - 1])).frames, probe.pts[start:stop], probe.time_base, path,
            codec=codec, crf=20, preset="veryfast", pix_fmt=None, container_format=container_format,
            gop=8, rate=rate or probe.avg_rate,
        )  # fmt: skip
        paths.append(path)
    return probe, paths


def video_packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.dts) for p in container.demux(stream) if p.size]


def audio_samples(path):
    with av.open(str(path)) as container:
        return [sum(f.samples for f in container.decode(stream)) for stream in container.streams.audio]


@pytest.mark.parametrize(
    "suffix, vfr",
    [("mp4", False), ("mp4", True), ("mkv", True)],
    ids=["mp4", "mp4-vfr", "mkv-vfr"],
)
def test_h264_with_b_frames_round_trip(tmp_path, suffix, vfr):
    src = make_clip(tmp_path / f"src.{suffix}", frames=48, audio_streams=2, vfr=vfr)
    source, chunks = encode_chunks(src, tmp_path, "h264", suffix)
    assert any(pts != dts for pts, dts in video_packets(chunks[1]) if dts is not None)  # B-frames in use

    out = tmp_path / f"out.{suffix}"
    stats = stitch_chunks(chunks, src, str(out), container_format=suffix)
    assert (stats.frames, stats.audio_streams, stats.subtitle_streams) == (48, 2, 0)
    with av.open(str(src)) as container:  # the last frame's duration is not carried: within a frame
        assert stats.duration_s == pytest.approx(container.duration / av.time_base, abs=1 / 24)

    result = probe_video(out, detect_scenes=False)
    assert result.n_frames == 48 and result.audio_streams == 2
    got = [float(p * result.time_base) for p in result.pts]
    assert got == pytest.approx([float(p * source.time_base) for p in source.pts], abs=0.001)
    if suffix == "mp4":  # MP4 keeps dts: strictly increasing across chunk boundaries, never after pts
        dts = [d for _, d in video_packets(out)]
        assert all(a < b for a, b in zip(dts, dts[1:]))
        assert all(d <= p for p, d in video_packets(out))
    for before, after in zip(audio_samples(src), audio_samples(out)):
        assert abs(before - after) <= 1024


def test_ffv1_chunks_are_lossless(tmp_path):
    src = make_clip(tmp_path / "src.mkv", frames=48, audio_streams=2, subtitle=True, vfr=True)
    source, chunks = encode_chunks(src, tmp_path, "ffv1", "mkv")
    out = tmp_path / "out.mkv"
    stats = stitch_chunks(chunks, src, str(out), container_format="mkv")
    assert (stats.frames, stats.audio_streams, stats.subtitle_streams) == (48, 2, 1)
    assert np.array_equal(decode_frames(out, 0, 48).frames, decode_frames(src, 0, 48).frames)
    assert probe_video(out).pts == source.pts


def test_source_subtitles_and_rotation_carried(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=48, audio_streams=1, subtitle=True, rotation=90)
    _, chunks = encode_chunks(src, tmp_path, "h264", "mp4")
    out = tmp_path / "out.mp4"
    with open(src, "rb") as source:  # as an S3 body would be
        stitch_chunks(chunks, source, str(out), container_format="mp4")
    result = probe_video(out)
    assert (result.rotation, result.audio_streams, result.subtitle_streams) == (90, 1, 1)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        # (MP4 adds its own empty cue to end the track: compare the cues that hold text)
        subs = [[(p.pts, bytes(p)) for p in c.demux(c.streams.subtitles[0]) if p.size > 2] for c in (a, b)]
    assert subs[0] == subs[1] and len(subs[0]) == 3


def test_subtitle_the_container_cannot_hold(tmp_path):
    src = make_clip(tmp_path / "src.mkv", frames=16, subtitle=True)  # ASS subtitles
    _, chunks = encode_chunks(src, tmp_path, "h264", "mp4", bounds=[(0, 16)])
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match=r"stream #1 \(subtitle, \w+\) cannot be stored in mp4; use the mkv"):
        stitch_chunks(chunks, src, str(out), container_format="mp4")
    assert not out.exists()


def test_chunks_out_of_order(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=48)
    _, chunks = encode_chunks(src, tmp_path, "h264", "mp4")
    with pytest.raises(MediaError, match="chunk 1 starts before chunk 0 ends"):
        stitch_chunks([chunks[1], chunks[0], chunks[2]], src, str(tmp_path / "o.mp4"), container_format="mp4")


def test_chunks_with_different_codec_headers(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=48)
    _, chunks = encode_chunks(src, tmp_path, "h264", "mp4")
    (tmp_path / "odd").mkdir()
    _, odd = encode_chunks(src, tmp_path / "odd", "h264", "mp4", rate=Fraction(30))
    with pytest.raises(MediaError, match="chunk 1 was encoded with other codec parameters"):
        stitch_chunks([chunks[0], odd[1], chunks[2]], src, str(tmp_path / "o.mp4"), container_format="mp4")


def test_no_chunks(tmp_path):
    with pytest.raises(MediaError, match="no chunks"):
        stitch_chunks([], "unused.mp4", str(tmp_path / "o.mp4"), container_format="mp4")


@pytest.mark.parametrize(
    "codec, container_format",
    [("h264", "mp4"), ("av1", "mkv"), ("ffv1", "mkv"), ("prores", "mov"), ("hevc", "mkv")],
)
def test_aspect_ratio_colour_and_tags_reach_the_stitched_file(tmp_path, codec, container_format):
    """Matroska's display size comes from the stream's aspect ratio alone (FFV1 and AV1 have none in
    their bitstream): it must be set on the output stream, not only on the codec."""
    src = make_clip(tmp_path / "anamorphic.mp4", frames=8, size=(96, 64), rotation=90)  # x265 needs >= 64 px
    _, paths = encode_chunks(src, tmp_path, codec, container_format, bounds=[(0, 4), (4, 8)])
    out = tmp_path / f"out.{container_format}"
    metadata = {"com.example.key": "value", "title": "ours"}
    stitch_chunks(paths, src, str(out), container_format=container_format, sample_aspect_ratio=Fraction(16, 15),
                  metadata=metadata)  # fmt: skip
    stitched = probe_video(out, detect_scenes=False)
    assert stitched.sample_aspect_ratio == Fraction(16, 15)
    assert stitched.rotation == 90
    assert stitched.tagged_colour == probe_video(paths[0], detect_scenes=False).tagged_colour  # as encoded
    with av.open(str(out)) as container:
        tags = {k.lower(): v for k, v in container.metadata.items()}
    assert tags["com.example.key"] == "value" and tags["title"] == "ours"


def test_audio_without_increasing_timestamps_is_retimed(tmp_path):
    """Every audio packet at pts 0 (a careless trim): copied as it is the muxer refuses it; the
    probe names the stream, and the stitch gives its packets the times their samples follow on
    from, the audio bits unchanged."""
    src = make_unstamped_audio(tmp_path / "src.avi", frames=48)
    assert probe_video(src, detect_scenes=False).audio_retimed == (1,)
    _, chunks = encode_chunks(src, tmp_path, "h264", "mp4")
    with pytest.raises(MediaError, match="stitching failed"):
        stitch_chunks(chunks, src, str(tmp_path / "plain.mp4"), container_format="mp4")
    out = tmp_path / "out.mp4"
    stats = stitch_chunks(chunks, src, str(out), container_format="mp4", retime_audio=(1,))
    assert (stats.frames, stats.audio_streams, stats.audio_streams_retimed) == (48, 1, 1)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.size]
        assert all(a.pts < b.pts for a, b in zip(packets, packets[1:]))
        assert float(audio.duration * audio.time_base) == pytest.approx(2.0, abs=0.05)  # 48 frames at 24 fps
    assert audio_samples(out) == audio_samples(src)
    with av.open(str(src)) as source, av.open(str(out)) as written:
        assert [bytes(p) for p in source.demux(source.streams.audio[0]) if p.size] == [
            bytes(p) for p in written.demux(written.streams.audio[0]) if p.size
        ]


@pytest.mark.parametrize(
    "source, tag, container_format, fps",
    [("mov", "stream", "mp4", 24), ("mkv", "stream", "mov", 24), ("mkv", "container", "mkv", 24),
     ("mp4", "stream", "mkv", Fraction(30000, 1001))],
    ids=["tmcd-to-mp4", "mkv-tag-to-mov", "container-tag-to-mkv", "drop-frame-to-mkv"],
)  # fmt: skip
def test_the_source_timecode_is_read_and_carried(tmp_path, source, tag, container_format, fps):
    timecode = "10:00:00;00" if fps != 24 else "01:02:03:04"
    src = make_clip(tmp_path / f"src.{source}", frames=48, fps=fps, timecode=timecode, timecode_tag=tag)
    probe = probe_video(src, detect_scenes=False)
    place = {"mov": "tmcd track", "mp4": "tmcd track", "mkv": "video stream tag"}[source] if tag == "stream" else "container tag"
    assert (probe.timecode, probe.timecode_source) == (timecode, place)
    _, chunks = encode_chunks(src, tmp_path, "h264", container_format)
    out = tmp_path / f"out.{container_format}"
    stitch_chunks(chunks, str(src), str(out), container_format=container_format, timecode=probe.timecode)
    result = probe_video(out, detect_scenes=False)
    expected = "tmcd track" if container_format in ("mp4", "mov") else "video stream tag"
    assert (result.timecode, result.timecode_source) == (timecode, expected)


@pytest.mark.parametrize("bad", ["25:99", "24:00:00:00", "01:00:00:24", "01:00:00;00"])
def test_a_malformed_timecode_is_named_and_not_carried(tmp_path, bad):
    """Not HH:MM:SS:FF, hour 24, frame 24 at 24 fps, drop-frame at 24 fps: none is carried (the
    MP4 muxer refuses the last two, which would fail the stitch)."""
    src = make_clip(tmp_path / "src.mkv", frames=24, timecode=bad, timecode_tag="container")
    probe = probe_video(src, detect_scenes=False)
    assert probe.timecode is None and probe.timecode_source == f"malformed container tag '{bad}'"
    _, chunks = encode_chunks(src, tmp_path, "h264", "mkv", bounds=[(0, 24)])
    stitch_chunks(chunks, str(src), str(tmp_path / "out.mkv"), container_format="mkv", timecode=probe.timecode)
    result = probe_video(tmp_path / "out.mkv", detect_scenes=False)
    assert (result.timecode, result.timecode_source) == (None, None)  # the bad tag is not copied either
    assert probe_video(make_clip(tmp_path / "none.mp4", frames=8), detect_scenes=False).timecode_source is None
