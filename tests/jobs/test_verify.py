"""`pssr verify`: provenance read back from a stitched output, checked against its pictures and its
source; tampered, remuxed, foreign and unreadable files. (The full job writes the same tags:
tests/jobs/test_formats.py verifies its outputs.)"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from actors.stitch import stitch_video
from jobs.cli.main import cli
from pipeline.media import decode_frames, encode_chunk, probe_video
from pipeline.provenance import MARKER, PREFIX, Provenance, read_provenance, tool_version
from pipeline.storage import Storage
from tests.clips import damage_packet, make_clip, make_corrupt

FRAMES = 8


def pssr(*args: str):
    return CliRunner().invoke(cli, ["verify", *args], catch_exceptions=False)


def provenance_for(source: Path) -> Provenance:
    return Provenance(
        tool="pssr", tool_version=tool_version(), scale=2, strong_model="tiny", strong_sha256="ab" * 32,
        light_model="none", light_sha256=None, source_key=source.name, source_uri=str(source),
        source_sha256=probe_video(source, detect_scenes=False).sha256, config_hash="0123456789abcdef",
        deinterlace=None,
    )  # fmt: skip


def upscaled(source: Path, out: Path, codec: str, container: str) -> Path:
    """What the job does to `source`, without Ray: decode, x2 by pixel repetition, two chunks, stitch."""
    probe = probe_video(source, detect_scenes=False)
    frames = decode_frames(source, 0, FRAMES).frames.repeat(2, axis=1).repeat(2, axis=2)
    chunks = []
    for i, (a, b) in enumerate([(0, 5), (5, FRAMES)]):
        chunk = out.parent / f"chunk{i}.{container}"
        encode_chunk(
            frames[a:b], probe.pts[a:b], probe.time_base, str(chunk), codec=codec, crf=20, preset="ultrafast",
            pix_fmt=None, container_format=container, gop=4, rate=probe.avg_rate, colour=probe.colour,
        )  # fmt: skip
        chunks.append(str(chunk))
    stats = stitch_video(Storage(), str(source), chunks, str(out), container, FRAMES, None, provenance_for(source))
    assert stats.video_sha256 is not None
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("verify")
    source = make_clip(d / "film.mp4", frames=FRAMES, size=(32, 24), audio_streams=1)
    return source, upscaled(source, d / "film_x2.mp4", "h264", "mp4")


def test_the_output_carries_its_provenance(made):
    source, out = made
    assert read_provenance(out) == dataclasses.replace(
        provenance_for(source), video_sha256=read_provenance(out).video_sha256
    )
    with av.open(str(out)) as container:
        assert container.metadata[MARKER] == "true"
        assert container.metadata["comment"].startswith("Machine-upscaled x2 by pssr")


def test_verify_prints_the_tags_and_checks_the_source(made, tmp_path):
    source, out = made
    result = pssr(str(out), "--source", str(source))
    assert result.exit_code == 0, result.output
    assert f"{PREFIX}source_sha256: {probe_video(source, detect_scenes=False).sha256}" in result.output
    assert f"{PREFIX}light_sha256: none" in result.output and "verified:" in result.output

    other = make_clip(tmp_path / "other.mp4", frames=FRAMES, size=(32, 24))
    result = pssr(str(out), "--source", str(other))
    assert result.exit_code == 1 and "MISMATCH source sha256" in result.output


def test_checksum_sidecars_that_coreutils_and_verify_read(made, tmp_path):
    """OUTPUT.md5 and OUTPUT.sha256 beside the output: `md5sum -c` and `sha256sum -c` pass them;
    `pssr verify` checks them too, and catches a change that leaves the pictures as they were."""
    _, out = made
    for tool, suffix in (("md5sum", "md5"), ("sha256sum", "sha256")):
        sidecar = out.with_name(f"{out.name}.{suffix}")
        digest = hashlib.new(suffix, out.read_bytes()).hexdigest()
        assert sidecar.read_text() == f"{digest}  {out.name}\n"
        checked = subprocess.run([tool, "-c", sidecar.name], cwd=out.parent, capture_output=True, text=True)
        assert checked.returncode == 0 and checked.stdout == f"{out.name}: OK\n"
    result = pssr(str(out))
    assert result.exit_code == 0 and f"verified: {out} (video stream, {out.name}.md5, {out.name}.sha256" in result.output

    copy = tmp_path / out.name
    copy.write_bytes(out.read_bytes() + b"\0")  # a byte added after the last box: the pictures are intact
    for suffix in ("md5", "sha256"):
        (tmp_path / f"{out.name}.{suffix}").write_bytes(out.with_name(f"{out.name}.{suffix}").read_bytes())
    result = pssr(str(copy))
    assert result.exit_code == 1 and f"MISMATCH {copy}.sha256: says " in result.output
    assert f"MISMATCH {copy}.md5: says " in result.output and "video stream changed" not in result.output
    (tmp_path / f"{out.name}.md5").write_text("not a checksum line\n")
    result = pssr(str(copy))
    assert f"MISMATCH {copy}.md5: line 1 is not '<digest>  <file name>'" in result.output


def test_changed_pictures_are_a_mismatch(made, tmp_path):
    _, out = made
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(out.read_bytes())
    damage_packet(tampered, 3)
    result = pssr(str(tampered))
    assert result.exit_code == 1 and "video stream changed since PS-SR wrote it" in result.output


def test_a_remux_keeps_the_provenance(made, tmp_path):
    """Stream copy into Matroska with the tags copied, as `ffmpeg -c copy` does: still verified."""
    source, out = made
    remuxed = tmp_path / "remuxed.mkv"
    with av.open(str(out)) as src, av.open(str(remuxed), "w") as dst:
        dst.metadata.update(src.metadata)
        video = dst.add_stream_from_template(src.streams.video[0], opaque=True)
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = video
                dst.mux(packet)
    result = pssr(str(remuxed), "--source", str(source))
    assert result.exit_code == 0, result.output


def test_files_without_provenance_and_unreadable_files(tmp_path):
    plain = make_clip(tmp_path / "plain.mp4", frames=4, size=(32, 24))
    result = pssr(str(plain))
    assert result.exit_code == 1 and "not a PS-SR output" in result.output
    assert pssr(str(make_corrupt(tmp_path / "noise.mp4"))).exit_code == 2
    assert pssr(str(tmp_path / "missing.mp4")).exit_code == 2


@pytest.mark.parametrize("codec, container", [("ffv1", "mkv"), ("prores", "mov")])
def test_archival_containers_round_trip(tmp_path, codec, container):
    source = make_clip(tmp_path / "tape.mkv", frames=FRAMES, size=(32, 24))
    out = upscaled(source, tmp_path / f"tape_x2.{container}", codec, container)
    assert pssr(str(out), "--source", str(source)).exit_code == 0
    # Matroska upper-cases tag names; they are read back whatever their case.
    assert read_provenance(out).source_key == "tape.mkv"


def test_verify_over_s3(made, s3_storage, s3_bucket, s3_server):
    source, out = made
    s3_storage.upload(str(out), f"s3://{s3_bucket}/out/film_x2.mp4")
    s3_storage.upload(str(source), f"s3://{s3_bucket}/in/film.mp4")
    result = pssr(
        f"s3://{s3_bucket}/out/film_x2.mp4", "--source", f"s3://{s3_bucket}/in/film.mp4", "--s3-endpoint-url", s3_server
    )
    assert result.exit_code == 0, result.output
    assert pssr(f"s3://{s3_bucket}/out/absent.mp4", "--s3-endpoint-url", s3_server).exit_code == 2
