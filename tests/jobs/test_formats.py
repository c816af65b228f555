"""Output formats end to end: one job per codec family over the same five sources, each output
probed for codec, bit depth, colour, shape, scan and provenance, and verified with `pssr verify`."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

from jobs.cli.main import cli
from jobs.run.job import run_job
from pipeline.config import load_job_spec
from pipeline.media import Colour, encode_chunk, probe_video
from pipeline.provenance import read_provenance
from tests.clips import make_clip
from tests.jobs.conftest import audio_durations, video_timeline

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

FRAMES = 6
# Saturated patches: BT.601 and BT.709 read the same YUV as colours up to ~30 levels apart.
PATCHES = np.array([(200, 30, 40), (30, 180, 60), (40, 60, 200), (235, 200, 20)], np.uint8)
PAL = Colour(5, 5, 5, 1)  # BT.470BG, limited range: 625-line SD
HD_FULL = Colour(1, 1, 1, 2)  # BT.709, full range


def patch_clip(path: Path, colour: Colour, sar: Fraction | None) -> Path:
    """Four flat 32x32 patches side by side, converted and tagged as `colour` says."""
    frames = np.repeat(PATCHES, 32, axis=0)[None, None].repeat(32, axis=1).repeat(FRAMES, axis=0)
    encode_chunk(
        frames, list(range(FRAMES)), Fraction(1, 25), str(path), codec="h264", crf=4, preset="veryfast",
        pix_fmt=None, container_format=path.suffix[1:], gop=FRAMES, rate=Fraction(25), sample_aspect_ratio=sar,
        colour=colour,
    )  # fmt: skip
    return path


def ramp_clip(path: Path) -> Path:
    """10-bit FFV1: a horizontal luma ramp of 64 ten-bit codes (16 eight-bit levels) over 256 px."""
    width, height = 256, 32
    luma = (400 + np.arange(width, dtype=np.uint16) // 4)[None, :].repeat(height, axis=0)
    chroma = np.full((height // 2, width), 512, np.uint16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p10le")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("formats") / "in"
    root.mkdir()
    patch_clip(root / "pal.mp4", PAL, Fraction(16, 15))
    patch_clip(root / "hd.mkv", HD_FULL, None)
    make_clip(root / "interlaced.mp4", frames=FRAMES, size=(64, 48), interlaced=True, rotation=90)
    make_clip(root / "noorder.avi", frames=FRAMES, size=(64, 48), codec="mpeg4", interlaced=True)
    ramp_clip(root / "ramp10.mkv")
    return root


# codec, pix_fmt, container, bit depth, models (strong, light)
FAMILIES = [
    ("h264", None, "mp4", 8, ("bicubic", "none")),
    ("hevc", "yuv420p10le", "mp4", 10, ("tiny", "tiny")),
    ("av1", "yuv420p10le", "mp4", 10, ("bicubic", "none")),
    ("ffv1", "gbrp10le", "mkv", 10, ("bicubic", "none")),
    ("prores", None, "mov", 10, ("bicubic", "none")),
]


def patch_colours(path: Path) -> np.ndarray:
    """Mean colour of each patch interior of every frame, read with PyAV and the file's own tags."""
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            assert not frame.interlaced_frame
            options = {} if frame.format.is_rgb else {"src_colorspace": frame.colorspace,
                                                       "src_color_range": frame.color_range}  # fmt: skip
            frames.append(frame.reformat(format="rgb24", **options).to_ndarray())
    rgb = np.stack(frames).astype(np.float64)  # x2: patches are 64 px wide
    return np.stack([rgb[:, 16:48, 64 * i + 16 : 64 * i + 48].reshape(-1, 3).mean(axis=0) for i in range(4)])


def luma_codes(path: Path) -> int:
    """Distinct native codes along one row of the first frame's first plane (luma; G for RGB)."""
    with av.open(str(path)) as container:
        plane = next(container.decode(video=0)).planes[0]
        samples = np.frombuffer(bytes(plane), np.uint16).reshape(plane.height, -1)[:, : plane.width]
    return len(np.unique(samples[plane.height // 2, 16:-16]))


@pytest.mark.parametrize("codec, pix_fmt, container, depth, models", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_output_format_family(sources: Path, tmp_path: Path, codec, pix_fmt, container, depth, models):
    out = tmp_path / "out"
    spec = load_job_spec(
        None,
        {
            "input": str(sources), "output": str(out), "scale": 2, "segment.max_core_frames": 4,
            "encode.codec": codec, "encode.pix_fmt": pix_fmt, "encode.crf": 4, "encode.preset": "veryfast",
            "models.strong": models[0], "models.light": models[1],
        },
    )  # fmt: skip
    summary = run_job(spec, echo=lambda _: None)
    assert summary.ok, summary.videos_failed
    rows = {r["video_key"]: r for r in pads.dataset(str(out / "_pssr" / "manifest" / "videos")).to_table().to_pylist()}
    outputs = {key: out / Path(key).with_name(f"{Path(key).stem}_x2.{container}") for key in rows}

    for key, path in outputs.items():
        row, probe = rows[key], probe_video(path, detect_scenes=False)
        with av.open(str(path)) as c:
            assert c.streams.video[0].codec_context.codec.canonical_name == codec
        # (FFmpeg's H.264 decoder names a full-range yuv420p stream yuvj420p)
        written = probe.pix_fmt.replace("yuvj", "yuv")
        assert (written, row["pix_fmt"], row["bit_depth"]) == (pix_fmt or row["pix_fmt"], written, depth)
        assert probe.n_frames == FRAMES and not probe.interlaced and probe.field_order == "progressive"
        # Provenance: the file's tags and the manifest row say the same, and the source is traceable.
        prov = read_provenance(path)
        source_sha256 = hashlib.sha256((sources / key).read_bytes()).hexdigest()
        assert prov.source_sha256 == row["source_sha256"] == source_sha256
        assert prov.video_sha256 == row["video_sha256"] and prov.source_key == key and prov.scale == 2
        assert (prov.strong_model, prov.light_model) == (row["strong_model"], row["light_model"]) == models
        assert prov.strong_sha256 == row["strong_sha256"] and (prov.strong_sha256 is None) == (models[0] != "tiny")
        assert prov.config_hash == row["config_hash"] and prov.tool_version == row["tool_version"]

    rgb = av.VideoFormat(probe_video(outputs["pal.mp4"], detect_scenes=False).pix_fmt).is_rgb
    # Colour: each output is tagged with its source's description and shows the source's colours.
    pal, hd = (probe_video(outputs[k], detect_scenes=False) for k in ("pal.mp4", "hd.mkv"))
    assert (pal.tagged_colour.primaries, pal.tagged_colour.transfer) == (PAL.primaries, PAL.transfer)
    assert (hd.tagged_colour.primaries, hd.tagged_colour.transfer) == (HD_FULL.primaries, HD_FULL.transfer)
    if rgb:
        assert pal.tagged_colour.matrix == hd.tagged_colour.matrix == 0
    else:
        assert (pal.tagged_colour.matrix, pal.tagged_colour.range) == (PAL.matrix, PAL.range)
        assert hd.tagged_colour.matrix == HD_FULL.matrix
        assert hd.tagged_colour.range == (1 if codec == "prores" else HD_FULL.range)  # ProRes has no full range
    assert (rows["pal.mp4"]["color_matrix"], rows["hd.mkv"]["color_primaries"]) == (
        "gbr" if rgb else "bt470bg",
        "bt709",
    )
    # Two lossy 8-bit YUV generations (the source's, the output's) and swscale's rounding: a few levels;
    # read with the other matrix, the patches are ~30 levels off.
    for key in ("pal.mp4", "hd.mkv"):
        assert np.abs(patch_colours(outputs[key]) - PATCHES).max() <= 6, key

    # Shape: anamorphic and rotated sources keep their aspect ratio and orientation.
    assert pal.sample_aspect_ratio == Fraction(16, 15) and rows["pal.mp4"]["sample_aspect_ratio"] == "16:15"
    assert probe_video(outputs["interlaced.mp4"], detect_scenes=False).rotation == 90
    assert rows["interlaced.mp4"]["rotation"] == 90

    # Scan: the flagged source went through bwdif, the others did not; all outputs are progressive.
    interlaced = rows["interlaced.mp4"]
    assert (interlaced["field_order"], interlaced["deinterlaced"]) == ("tff", True)
    assert "bwdif=mode=send_frame" in interlaced["deinterlace_mode"]
    assert read_provenance(outputs["interlaced.mp4"]).deinterlace == interlaced["deinterlace_mode"]
    assert not any(rows[k]["deinterlaced"] for k in ("pal.mp4", "hd.mkv", "ramp10.mkv"))
    # A source whose stream states no field order (MPEG-4 part 2 in AVI: only each frame's flag):
    # the row says so, and bwdif still ran, taking each frame's own parity.
    no_order = rows["noorder.avi"]
    assert (no_order["field_order"], no_order["deinterlaced"]) == ("interlaced", True)
    assert "bwdif=mode=send_frame" in no_order["deinterlace_mode"]
    src_times, out_times = video_timeline(sources / "interlaced.mp4")[0], video_timeline(outputs["interlaced.mp4"])[0]
    assert max(abs(a - b) for a, b in zip(src_times, out_times)) <= 1e-3  # timing kept: one frame per frame

    # Precision: 10-bit outputs keep the 10-bit source's steps (8-bit frames would merge them 4 to 1).
    if depth > 8:
        assert luma_codes(outputs["ramp10.mkv"]) >= 40

    result = CliRunner().invoke(cli, ["verify", str(outputs["pal.mp4"]), "--source", str(sources / "pal.mp4")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["verify", str(outputs["hd.mkv"]), "--source", str(sources / "pal.mp4")])
    assert result.exit_code == 1 and "MISMATCH source sha256" in result.output


def test_the_source_timecode_reaches_the_output_its_row_and_the_status(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "tape.mov", frames=8, size=(32, 24), timecode="10:00:00:00")
    make_clip(tmp_path / "in" / "plain.mp4", frames=8, size=(32, 24))
    out = tmp_path / "out"
    overrides = {"input": str(tmp_path / "in"), "output": str(out), "scale": 2, "models.strong": "bicubic",
                 "models.light": "none"}  # fmt: skip
    assert run_job(load_job_spec(None, overrides), echo=lambda _: None).ok

    written = probe_video(out / "tape_x2.mp4", detect_scenes=False)
    assert (written.timecode, written.timecode_source) == ("10:00:00:00", "tmcd track")
    rows = {r["video_key"]: r for r in pads.dataset(str(out / "_pssr/manifest/videos")).to_table().to_pylist()}
    assert (rows["tape.mov"]["timecode"], rows["tape.mov"]["timecode_source"]) == ("10:00:00:00", "tmcd track")
    assert (rows["plain.mp4"]["timecode"], rows["plain.mp4"]["timecode_source"]) == (None, None)
    status = CliRunner().invoke(cli, ["status", str(out)]).output
    assert "timecode" in status.splitlines()[0] and "10:00:00:00" in status


def test_field_rate_deinterlacing_gives_a_frame_per_field_whatever_the_segmenting(tmp_path: Path) -> None:
    """25i -> 50p: twice the frames at twice the rate over the same span, the audio as it was, the
    timecode counted at 50, and the same frames however the video is cut into segments (a segment
    may start on a source frame's second field)."""
    (tmp_path / "in").mkdir()
    source = make_clip(tmp_path / "in" / "tape.mov", frames=40, size=(64, 48), fps=25, gop=10, interlaced=True,
                       audio_streams=1, timecode="10:00:00:12", scene_cut_at=20)  # fmt: skip
    outputs = {}
    for segment_frames in (7, 1000):
        out = tmp_path / f"out{segment_frames}"
        overrides = {"input": str(source), "output": str(out), "scale": 2, "models.strong": "bicubic",
                     "models.light": "none", "deinterlace_rate": "field", "segment.max_core_frames": segment_frames,
                     "encode.codec": "ffv1"}  # fmt: skip
        assert run_job(load_job_spec(None, overrides), echo=lambda _: None).ok
        outputs[segment_frames] = out / "tape_x2.mkv"

    src_times, out_times = video_timeline(source)[0], video_timeline(outputs[7])[0]
    assert len(out_times) == 2 * len(src_times) == 80
    # (Matroska's timeline starts where the AAC audio's priming ends: both streams move together.)
    out_times = [t - out_times[0] for t in out_times]
    assert out_times[::2] == pytest.approx(src_times, abs=1e-3)  # each frame's first field at its time,
    assert np.diff(out_times) == pytest.approx(0.02, abs=1e-3)  # its second half a frame later
    assert audio_durations(outputs[7]) == pytest.approx(audio_durations(source), abs=0.03)
    with av.open(str(outputs[7])) as a, av.open(str(outputs[1000])) as b:
        first, second = ([f.to_ndarray(format="rgb24") for f in c.decode(video=0)] for c in (a, b))
        assert a.streams.video[0].average_rate == 50
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))
    written = probe_video(outputs[7], detect_scenes=False)
    assert written.timecode == "10:00:00:24" and written.n_frames == 80
    row = pads.dataset(str(tmp_path / "out7/_pssr/manifest/videos")).to_table().to_pylist()[0]
    assert (row["frames_in"], row["frames_out"], row["timecode"]) == (40, 80, "10:00:00:24")
    assert row["deinterlace_mode"] == "bwdif=mode=send_field:parity=auto:deint=all"
    assert read_provenance(outputs[7]).deinterlace == row["deinterlace_mode"]
