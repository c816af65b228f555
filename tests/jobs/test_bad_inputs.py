"""Broken and unusual inputs end to end, through the `pssr` CLI on the shared local Ray cluster.

Each input gives a correct output or a clear failure of its own video: a manifest row with
status 'failed' and an error naming the cause, nothing at its output key, its staging removed,
the other videos finished, exit status 1. An input root that does not exist is refused before
any work, with exit status 2. Bad files are batched into one folder per job run: a run costs
10-20 s here. Variable frame rate is covered in test_run_job.py.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from jobs.cli.main import cli
from jobs.run.job import Job
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.media import decode_frames, encoded_size, probe_video
from pipeline.models.strong import bicubic_upscale
from pipeline.storage import Storage
from tests.clips import damage_packet, make_audio_only, make_clip, make_truncated, make_unstamped_audio
from tests.jobs.conftest import video_timeline
from tests.s3_fault_proxy import Rule, S3FaultProxy

pytestmark = pytest.mark.slow

EMPTY = "MediaError: cannot open: empty file (0 bytes)"
NOT_MEDIA = "MediaError: cannot open: Invalid data found when processing input"
BAD_PACKET = r"MediaError: decoding failed at frame \d+: Invalid data found when processing input"


def pssr(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def job_file(tmp_path: Path) -> str:
    """Whole-CPU tasks: with the default quarter CPU, a batch of 14 videos plans 14 at a time
    and Ray starts a worker process (torch import included) for each; on this 2-core machine
    that alone takes ~35 s of a 70 s run, against ~10 s with 4 reused workers."""
    path = tmp_path / "job.yaml"
    path.write_text("ray: {task_cpus: 1}\nsegment: {max_core_frames: 8}\n")
    return str(path)


def assert_bicubic_upscale(source: Path, output: Path, scale: int, deinterlaced: bool = False) -> None:
    """The output is the source upscaled (the bundled tiny weights are exactly bicubic), up to
    the output codec's loss: frame count, timing, and content (deinterlaced by bwdif first, when the
    job did), in the output's top-left corner when the encoder padded it; the padding repeats the last
    column and row."""
    src_times, width, height = video_timeline(source)
    out_times, out_width, out_height = video_timeline(output)
    assert (out_width, out_height) == encoded_size(width * scale, height * scale, "h264", None)
    assert len(out_times) == len(src_times)
    assert max(abs(a - b) for a, b in zip(src_times, out_times)) <= 1e-3
    lr = decode_frames(str(source), 0, len(src_times), deinterlace="interlaced" if deinterlaced else None).frames
    lr = torch.from_numpy(lr).permute(0, 3, 1, 2) / 255
    want = (bicubic_upscale(lr, scale).clamp(0, 1) * 255).round().permute(0, 2, 3, 1).numpy()
    got = decode_frames(str(output), 0, len(out_times)).frames.astype(np.float64)
    hr_h, hr_w = height * scale, width * scale
    assert np.abs(got[:, :hr_h, :hr_w] - want).mean() < 3
    if out_width > hr_w:
        assert np.abs(got[:, :hr_h, hr_w:] - got[:, :hr_h, hr_w - 1 : hr_w]).mean() < 3


def manifest_rows(storage: Storage, root: str) -> dict[str, dict]:
    videos, _ = read_manifests(storage, root)
    return {row["video_key"]: row for row in videos.to_pylist()}


def assert_failed_cleanly(
    rows: dict[str, dict], cli_output: str, failures: dict[str, str], exists: Callable[[str], bool]
) -> None:
    """Each key failed with an error matching its pattern, reported by the CLI, and has no output."""
    for key, pattern in failures.items():
        row = rows[key]
        assert row["status"] == "failed" and row["output_uri"] is None, key
        assert re.fullmatch(pattern, row["error"]), (key, row["error"])
        assert f": {row['error']}" in cli_output, key
        assert not exists(key), key


@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("ray_cluster")
def test_a_folder_of_broken_and_unusual_files(tmp_path: Path, job_file: str):
    src, out, spare = tmp_path / "in", tmp_path / "out", tmp_path / "spare"
    for folder in (src / "日本語", spare):
        folder.mkdir(parents=True)
    # Outputs expected: odd size at x3 (99x75, which x264 can only take padded to 100x76), a
    # single frame, display rotation, interlacing, 10-bit 4:2:0, and awkward names.
    good = {
        "odd 33x25.mkv": make_clip(src / "odd 33x25.mkv", frames=10, size=(33, 25), codec="ffv1"),
        "one frame.mp4": make_clip(src / "one frame.mp4", frames=1, size=(48, 32)),
        "rotated ü..x.mp4": make_clip(src / "rotated ü..x.mp4", frames=10, size=(48, 32), rotation=90),
        "interlaced.mp4": make_clip(src / "interlaced.mp4", frames=10, size=(48, 32), interlaced=True),
        "ten bit.mp4": make_clip(src / "ten bit.mp4", frames=10, size=(48, 32), pix_fmt="yuv420p10le"),
        "日本語/..第 1 話..mkv": make_clip(
            src / "日本語" / "..第 1 話..mkv", frames=10, size=(48, 32), audio_streams=1
        ),
        # Audio packets all at pts 0, which the muxer refused at the stitch: retimed.
        "unstamped audio.avi": make_unstamped_audio(spare / "unstamped audio.avi", frames=10).rename(
            src / "unstamped audio.avi"
        ),
    }
    failures = {
        "zero.mp4": re.escape(EMPTY),
        "text.mp4": re.escape(NOT_MEDIA),
        "cut off.mp4": re.escape(NOT_MEDIA),  # its index (moov, at the end) is gone
        "truncated.mkv": r"MediaError: truncated: frames end at [\d.]+ s but the header says 2\.00 s",
        "audio only.mp4": re.escape("MediaError: no video stream"),
        "damaged mid.mkv": BAD_PACKET,
        "damaged packet.mp4": BAD_PACKET,  # FFmpeg's defaults would conceal it and drop frames
        "partly decoded.mp4": "MediaError: decoding failed at frame 10: damaged data, only partly decoded",
    }
    (src / "zero.mp4").write_bytes(b"")
    (src / "text.mp4").write_bytes(b"This is not a video.\n")
    make_truncated(make_clip(spare / "full.mp4", frames=24, size=(48, 32)), src / "cut off.mp4")
    make_truncated(make_clip(spare / "full.mkv", frames=48, size=(48, 32)), src / "truncated.mkv")
    make_audio_only(src / "audio only.mp4")
    damaged = bytearray(make_clip(spare / "whole.mkv", frames=96, size=(320, 180)).read_bytes())
    middle = len(damaged) * 2 // 5  # random bytes over container and codec data alike
    damaged[middle : middle + 3000] = random.Random(1).randbytes(3000)
    (src / "damaged mid.mkv").write_bytes(damaged)
    damage_packet(make_clip(src / "damaged packet.mp4", frames=24, size=(96, 64), codec="hevc"), 14)
    damage_packet(make_clip(src / "partly decoded.mp4", frames=24, size=(96, 64), codec="mpeg4"), 10, seed=1)
    assert probe_video(good["interlaced.mp4"]).interlaced  # the flag is seen: bwdif deinterlaces it
    assert probe_video(good["ten bit.mp4"]).pix_fmt == "yuv420p10le"  # decoded to 8-bit RGB

    result = pssr("run", str(src), str(out), "--config", job_file, "--scale", "3")

    assert result.exit_code == 1, result.output
    rows = manifest_rows(Storage(), str(out))
    assert len(rows) == len(good) + len(failures)
    for key, source in good.items():
        stem, _ = os.path.splitext(key)
        output = out / f"{stem}_x3.mp4"
        assert rows[key]["status"] == "ok" and rows[key]["output_uri"] == str(output), rows[key]["error"]
        assert f"ok     {source} -> {output}" in result.output
        assert_bicubic_upscale(source, output, 3, deinterlaced=rows[key]["deinterlaced"])
    assert [key for key, row in rows.items() if row["deinterlaced"]] == ["interlaced.mp4"]
    assert probe_video(out / "rotated ü..x_x3.mp4").rotation == 90
    assert video_timeline(out / "odd 33x25_x3.mp4")[1:] == (100, 76)
    assert (rows["odd 33x25.mkv"]["out_width"], rows["odd 33x25.mkv"]["out_height"]) == (100, 76)
    assert probe_video(out / "日本語" / "..第 1 話._x3.mp4").audio_streams == 1  # stem "..第 1 話."
    assert [(k, r["audio_streams_copied"]) for k, r in rows.items() if r["audio_streams_retimed"]] == [
        ("unstamped audio.avi", 1)
    ]
    assert probe_video(out / "unstamped audio_x3.mp4").audio_streams == 1
    assert_failed_cleanly(
        rows, result.output, failures, lambda key: (out / f"{os.path.splitext(key)[0]}_x3.mp4").exists()
    )
    assert not [p for p in (out / "_pssr").rglob("*") if p.is_file() and "staging" in p.parts]


@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("ray_cluster")
def test_s3_keys_with_spaces_unicode_and_dots_round_trip(tmp_path: Path, s3_server: str, s3_bucket: str, job_file: str):
    storage = Storage(s3_endpoint_url=s3_server)
    clip = make_clip(tmp_path / "clip.mp4", frames=10, size=(48, 32), audio_streams=1)
    keys = ["my film ü..x.mp4", "日本語/ep 1..final.mp4", "a+b%20c?&=.mp4", "sub/../up.mp4"]
    for key in keys:
        storage.upload(str(clip), f"s3://{s3_bucket}/in/{key}")
    storage.write_bytes(f"s3://{s3_bucket}/in/leer ü.mp4", b"")
    root = f"s3://{s3_bucket}/out"

    result = pssr(
        "run", f"s3://{s3_bucket}/in/", f"{root}/", "--config", job_file, "--scale", "2", "--s3-endpoint-url", s3_server
    )

    assert result.exit_code == 1, result.output
    rows = manifest_rows(storage, root)
    for n, key in enumerate(keys):
        stem, _ = os.path.splitext(key)
        output_uri = f"{root}/{stem}_x2.mp4"  # the same key, literally: no escaping, no normalising
        assert rows[key]["status"] == "ok" and rows[key]["output_uri"] == output_uri, rows[key]["error"]
        local = tmp_path / f"out{n}.mp4"
        storage.download(output_uri, str(local))
        assert_bicubic_upscale(clip, local, 2)
    exists = lambda key: storage.exists(f"{root}/{os.path.splitext(key)[0]}_x2.mp4")
    assert_failed_cleanly(rows, result.output, {"leer ü.mp4": re.escape(EMPTY)}, exists)
    assert storage.list_uris(f"{root}/_pssr/staging/") == []


def test_an_input_root_that_does_not_exist_is_refused_before_any_work(tmp_path: Path, s3_server: str, s3_bucket: str):
    out, endpoint = str(tmp_path / "out"), ["--s3-endpoint-url", s3_server]
    nowhere = str(tmp_path / "nowhere")
    cases = {
        nowhere: f"Error: {nowhere}: no such file or folder ({nowhere})",
        "s3://pssr-no-such-bucket/in/": "Error: s3://pssr-no-such-bucket/in/: no such bucket",
        f"s3://{s3_bucket}/no/such/prefix/": f"Error: s3://{s3_bucket}/no/such/prefix/: no such key or prefix",
    }
    for root, message in cases.items():
        for args in (["run", root, out, *endpoint], ["plan", root, *endpoint]):
            result = pssr(*args)
            assert result.exit_code == 2, result.output
            assert isinstance(result.exception, SystemExit)  # a message, not a traceback
            assert result.output == message + "\n"
    assert not os.path.exists(out)


def test_plan_reports_videos_above_the_limits(tmp_path: Path):
    make_clip(tmp_path / "big.mp4", frames=12, size=(96, 64))
    make_clip(tmp_path / "long.mp4", frames=48, size=(48, 32))
    make_clip(tmp_path / "fine.mp4", frames=12, size=(48, 32))
    result = pssr("plan", str(tmp_path), "--max-width", "64", "--max-height", "48", "--max-duration", "1.5")
    assert result.exit_code == 1
    assert f"{tmp_path / 'big.mp4'}: cannot plan: MediaError: 96x64 is above the limit 64x48" in result.output
    assert f"{tmp_path / 'long.mp4'}: cannot plan: MediaError: duration 2.00 s is above the limit 1.5 s" in (
        result.output
    )
    assert f"{tmp_path / 'fine.mp4'}: 12 frames" in result.output


@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("ray_cluster")
def test_a_run_fails_videos_above_the_limits_before_decoding(tmp_path: Path, job_file: str):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "big.mp4", frames=12, size=(96, 64))
    make_clip(src / "long.mp4", frames=48, size=(48, 32))
    make_clip(src / "fine.mp4", frames=12, size=(48, 32))

    limits = ["--max-width", "64", "--max-height", "48", "--max-duration", "1.5"]
    result = pssr("run", str(src), str(out), "--config", job_file, "--scale", "2", *limits)

    assert result.exit_code == 1, result.output
    rows = manifest_rows(Storage(), str(out))
    assert rows["fine.mp4"]["status"] == "ok" and (out / "fine_x2.mp4").exists()
    failures = {
        "big.mp4": re.escape("MediaError: 96x64 is above the limit 64x48"),
        "long.mp4": re.escape("MediaError: duration 2.00 s is above the limit 1.5 s"),
    }
    assert_failed_cleanly(rows, result.output, failures, lambda key: (out / f"{key[:-4]}_x2.mp4").exists())


@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("ray_cluster")
def test_an_input_the_store_refuses_to_read_fails_alone(
    tmp_path: Path, job_file: str, s3_proxy: S3FaultProxy, s3_bucket: str
):
    """Read permission denied on one object (403 on its GET and HEAD, as a bucket policy gives; root
    cannot bypass it as it bypasses a local chmod), through a proxy in front of the S3 server."""
    storage = Storage(s3_endpoint_url=s3_proxy.url)
    for name in ("fine.mp4", "locked.mp4"):
        storage.upload(str(make_clip(tmp_path / name, frames=8, size=(48, 32))), f"s3://{s3_bucket}/in/{name}")
    s3_proxy.add(Rule("denied", contains="/in/locked.mp4", times=1_000))
    out = tmp_path / "out"

    result = pssr("run", f"s3://{s3_bucket}/in/", str(out), "--config", job_file, "--scale", "2",
                  "--s3-endpoint-url", s3_proxy.url)  # fmt: skip

    assert result.exit_code == 1, result.output
    rows = manifest_rows(Storage(), str(out))
    assert rows["fine.mp4"]["status"] == "ok"
    failures = {"locked.mp4": re.escape(f"StorageError: s3://{s3_bucket}/in/locked.mp4: access denied")}
    assert_failed_cleanly(rows, result.output, failures, lambda key: (out / "locked_x2.mp4").exists())


def test_s3_keys_with_dot_parts_never_write_outside_a_local_output(tmp_path: Path, s3_server: str, s3_bucket: str):
    storage = Storage(s3_endpoint_url=s3_server)
    clip = make_clip(tmp_path / "c.mp4", frames=2, size=(32, 24))
    storage.upload(str(clip), f"s3://{s3_bucket}/in/../../escape.mp4")
    storage.upload(str(clip), f"s3://{s3_bucket}/in/fine.mp4")
    spec = load_job_spec(None, {"input": f"s3://{s3_bucket}/in/", "output": str(tmp_path / "out"),
                                "storage.s3_endpoint_url": s3_server})  # fmt: skip
    states = {s.key: s for s in Job(spec, echo=lambda _: None).list_videos()}
    assert states["fine.mp4"].error == ""
    assert "'..' parts" in states["../../escape.mp4"].error
