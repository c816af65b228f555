"""`pssr sync` end to end on a local Ray cluster: S3 (moto answering one request at a time, as S3
resolves racing conditional writes) and local folders."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import ray
from click.testing import CliRunner

from jobs.cli.main import cli
from jobs.run.sync import SyncJob, run_sync
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.runs.lease import Leases
from pipeline.storage import Storage
from tests.clips import make_clip
from tests.jobs.conftest import video_timeline
from tests.s3_fault_proxy import S3FaultProxy
from tests.serial_s3 import SerialS3Server

KEYS = ["a.mp4", "b.mp4", "sub/c.mp4"]


@pytest.fixture(scope="module")
def serial_s3() -> Iterator[str]:
    with SerialS3Server() as url:
        yield url


@pytest.fixture
def bucket(serial_s3: str) -> str:
    name = f"pssr-sync-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=serial_s3, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def spec_for(src: str, dst: str, endpoint: str | None = None, **overrides):
    # Tiny jobs: one segment per clip, x2.
    fields = {
        "input": src,
        "output": dst,
        "scale": 2,
        "segment.max_core_frames": 8,
        "storage.s3_endpoint_url": endpoint,
    }
    return load_job_spec(None, {**fields, **overrides})


def quiet(_: str) -> None:
    pass


def upload_clips(tmp_path: Path, storage: Storage, prefix: str, keys: list[str], frames: int = 6) -> None:
    for key in keys:
        clip = make_clip(tmp_path / f"clip-{frames}.mp4", frames=frames, size=(32, 24))
        storage.upload(str(clip), f"{prefix}/{key}")


def ok_rows_per_video(storage: Storage, dst: str) -> Counter:
    videos, _ = read_manifests(storage, dst)
    return Counter(row["video_key"] for row in videos.to_pylist() if row["status"] == "ok")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_sync_does_the_new_videos_then_nothing_then_only_the_changed_one(tmp_path: Path, serial_s3: str, bucket):
    storage = Storage(s3_endpoint_url=serial_s3)
    src, dst = f"s3://{bucket}/in", f"s3://{bucket}/out"
    upload_clips(tmp_path, storage, src, KEYS)

    first = run_sync(spec_for(src, dst, serial_s3), echo=quiet)

    assert first.ok and sorted(first.videos_ok) == sorted(first.videos_new) == KEYS
    assert first.videos_changed == first.videos_skipped == first.videos_leased == []
    reader = Leases(storage, dst, "reader", 3600)
    for key in KEYS:  # released, with the outcome recorded
        lease = reader.read(key)
        assert lease.released and lease.outcome["status"] == "ok" and lease.owner == first.job_id

    with S3FaultProxy(serial_s3) as proxy:  # it records every request
        second = run_sync(spec_for(src, dst, proxy.url), echo=quiet)

    assert second.ok and second.videos_ok == [] and sorted(second.videos_skipped) == KEYS
    assert second.videos_new == second.videos_changed == second.videos_redone == []
    # The listing's sizes and ETags sufficed: no input object was read, probed or HEADed, no
    # output HEADed, no segment manifest read, no lease taken, no manifest written.
    assert proxy.count(contains=f"/{bucket}/in/") == 0
    assert proxy.count(contains="/_pssr/manifest/segments") == 0
    assert [s.target for s in proxy.seen() if s.target.endswith(".mp4")] == []
    assert [s.target for s in proxy.seen("PUT", "/_pssr/leases/") if "/probe-" not in s.target] == []
    assert proxy.count("PUT", contains="/_pssr/manifest/") == 0

    upload_clips(tmp_path, storage, src, ["b.mp4"], frames=9)  # a new version: a new ETag
    third = run_sync(spec_for(src, dst, serial_s3), echo=quiet)

    assert third.ok and third.videos_ok == third.videos_changed == ["b.mp4"]
    assert sorted(third.videos_skipped) == ["a.mp4", "sub/c.mp4"] and third.videos_new == []
    assert ok_rows_per_video(storage, dst) == {"a.mp4": 1, "b.mp4": 2, "sub/c.mp4": 1}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_a_live_lease_is_skipped_and_an_expired_one_taken_over(tmp_path: Path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(src / name, frames=6, size=(32, 24))
    storage = Storage()
    busy = Leases(storage, str(out), "busy-run", seconds=3600)
    busy.acquire("a.mp4")
    crashed = Leases(storage, str(out), "crashed-run", seconds=0)  # expired as soon as written
    crashed.acquire("c.mp4")

    first = run_sync(spec_for(str(src), str(out)), echo=quiet)

    assert first.ok and sorted(first.videos_ok) == ["b.mp4", "c.mp4"]  # in the order they finished
    assert first.videos_leased == ["a.mp4"] and first.leases_taken_over == ["c.mp4"]
    assert not (out / "a_x2.mp4").exists()
    assert ok_rows_per_video(storage, str(out)) == {"b.mp4": 1, "c.mp4": 1}  # nothing recorded for a
    videos, _ = read_manifests(storage, str(out))
    assert set(videos.column("status").to_pylist()) == {"ok"}
    assert not crashed.release("c.mp4", {"status": "failed"})  # a taken-over lease stays the taker's
    assert Leases(storage, str(out), "reader", 60).read("c.mp4").outcome["status"] == "ok"

    busy.release("a.mp4")  # the busy run stopped without finishing it
    second = run_sync(spec_for(str(src), str(out)), echo=quiet)

    assert second.ok and second.videos_ok == second.videos_new == ["a.mp4"]
    assert sorted(second.videos_skipped) == ["b.mp4", "c.mp4"] and second.videos_leased == []


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_a_video_another_run_finished_after_the_listing_is_not_done_again(tmp_path: Path, serial_s3: str, bucket):
    storage = Storage(s3_endpoint_url=serial_s3)
    src, dst = f"s3://{bucket}/in", f"s3://{bucket}/out"
    upload_clips(tmp_path, storage, src, ["a.mp4", "b.mp4"])
    spec = spec_for(src, dst, serial_s3)
    late = SyncJob(spec, echo=quiet)
    listed = late.list_videos()

    early = run_sync(spec, echo=quiet)
    late.list_videos = lambda: listed  # as it listed them, before the early run finished them
    summary = late.run()

    assert sorted(early.videos_ok) == ["a.mp4", "b.mp4"]
    assert summary.ok and summary.videos_ok == [] and sorted(summary.videos_done_elsewhere) == ["a.mp4", "b.mp4"]
    assert ok_rows_per_video(storage, dst) == {"a.mp4": 1, "b.mp4": 1}

    storage.delete(f"{dst}/a_x2.mp4")  # an output removed on purpose is made again
    again = run_sync(spec, echo=quiet)

    assert again.videos_ok == again.videos_redone == ["a.mp4"] and again.videos_done_elsewhere == []


@pytest.mark.slow
@pytest.mark.allow_error_logs  # the two inputs' failures
@pytest.mark.usefixtures("ray_cluster")
def test_a_listing_that_changes_during_a_sync_converges(tmp_path: Path, serial_s3: str, bucket):
    storage = Storage(s3_endpoint_url=serial_s3)
    src, dst = f"s3://{bucket}/in", f"s3://{bucket}/out"
    upload_clips(tmp_path, storage, src, ["a.mp4", "b.mp4", "c.mp4"])
    spec = spec_for(src, dst, serial_s3)
    job = SyncJob(spec, echo=quiet)
    listed = job.list_videos()
    upload_clips(tmp_path, storage, src, ["b.mp4"], frames=9)  # replaced after the listing
    storage.delete(f"{src}/c.mp4")  # deleted after the listing
    upload_clips(tmp_path, storage, src, ["d.mp4"])  # added after the listing
    job.list_videos = lambda: listed
    first = job.run()

    # What was listed and is still there is done; the replaced and the deleted inputs fail by name,
    # with nothing at their outputs: nothing is made from content other than the version listed.
    assert first.videos_ok == ["a.mp4"] and sorted(first.videos_failed) == ["b.mp4", "c.mp4"]
    assert f"{src}/b.mp4: changed since it was listed (now version " in first.videos_failed["b.mp4"]
    assert f"{src}/c.mp4" in first.videos_failed["c.mp4"] and "no such" in first.videos_failed["c.mp4"].lower()
    assert not storage.exists(f"{dst}/b_x2.mp4") and not storage.exists(f"{dst}/c_x2.mp4")

    second = run_sync(spec, echo=quiet)  # the next sync finishes the work

    assert second.ok and sorted(second.videos_ok) == ["b.mp4", "d.mp4"] and second.videos_skipped == ["a.mp4"]
    third = run_sync(spec, echo=quiet)
    assert third.ok and third.videos_ok == [] and sorted(third.videos_skipped) == ["a.mp4", "b.mp4", "d.mp4"]
    assert ok_rows_per_video(storage, dst) == {"a.mp4": 1, "b.mp4": 1, "d.mp4": 1}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_two_syncs_started_together_never_process_a_video_twice(tmp_path: Path, serial_s3: str, bucket):
    storage = Storage(s3_endpoint_url=serial_s3)
    src, dst = f"s3://{bucket}/in", f"s3://{bucket}/out"
    keys = [f"v{i}.mp4" for i in range(4)]
    upload_clips(tmp_path, storage, src, keys)
    # Two scheduled runs: two drivers on the test's Ray cluster, each leasing a video when its
    # planning stage reaches it.
    args = ["sync", src, dst, "--scale", "2", "--segment-frames", "8",
            "--s3-endpoint-url", serial_s3, "--ray-address", ray.get_runtime_context().gcs_address]  # fmt: skip
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobs.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=500)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    done = [line.split()[1] for output in outputs for line in output.splitlines() if line.startswith("ok     ")]
    assert sorted(done) == sorted(f"{src}/{key}" for key in keys), outputs  # each by one run only
    assert ok_rows_per_video(storage, dst) == dict.fromkeys(keys, 1)
    for key in keys:
        assert storage.exists(f"{dst}/{key.removesuffix('.mp4')}_x2.mp4")


def assert_consistent(storage: Storage, dst: str, keys: list[str], tmp_path: Path) -> list[str]:
    """Every output in DST is whole (all its frames, at the output size) and the manifests read;
    the keys whose output is there."""
    read_manifests(storage, dst)
    done = []
    for key in keys:
        output = f"{dst}/{key.removesuffix('.mp4')}_x2.mp4"
        if storage.exists(output):
            local = tmp_path / "check.mp4"
            storage.download(output, str(local))
            times, width, height = video_timeline(local)
            assert (len(times), width, height) == (6, 64, 48), output
            done.append(key)
    return done


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_syncs_killed_at_random_points_leave_the_bucket_whole_and_the_next_finishes(
    tmp_path: Path, serial_s3: str, bucket
):
    storage = Storage(s3_endpoint_url=serial_s3)
    src, dst = f"s3://{bucket}/in", f"s3://{bucket}/out"
    keys = [f"v{i}.mp4" for i in range(6)]
    upload_clips(tmp_path, storage, src, keys)
    command = [sys.executable, "-m", "jobs.cli.main", "sync", src, dst, "--scale", "2", "--segment-frames", "8",
               "--s3-endpoint-url", serial_s3, "--ray-address", ray.get_runtime_context().gcs_address,
               "--lease-seconds", "60"]  # fmt: skip
    rng = random.Random(19)
    killed = 0
    for _ in range(3):  # each run killed (SIGKILL: no clean-up of any kind) at a random point
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run.wait(timeout=rng.uniform(3.0, 15.0))
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
            killed += 1
        assert_consistent(storage, dst, keys, tmp_path)
    assert killed, "every run finished before its kill: the test proved nothing"

    time.sleep(62)  # the leases the killed runs held expire (sync.lease_seconds), as after a crash
    final = subprocess.run(command, check=False, capture_output=True, text=True, timeout=500)

    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert assert_consistent(storage, dst, keys, tmp_path) == keys
    assert ok_rows_per_video(storage, dst) == dict.fromkeys(keys, 1)  # none done twice
    again = run_sync(spec_for(src, dst, serial_s3), echo=quiet)
    assert again.ok and again.videos_ok == [] and sorted(again.videos_skipped) == keys


def test_sync_takes_every_run_option_and_the_lease_lifetime():
    runner = CliRunner()
    run_help, sync_help = (runner.invoke(cli, [command, "--help"]).output for command in ("run", "sync"))
    run_options = {word for word in run_help.split() if word.startswith("--")}

    assert run_options and run_options <= {word for word in sync_help.split() if word.startswith("--")}
    assert "--lease-seconds" in sync_help and "sync.lease_seconds; default: 3600" in " ".join(sync_help.split())


def test_a_lease_shorter_than_a_minute_is_refused_before_any_work(tmp_path: Path):
    result = CliRunner().invoke(cli, ["sync", str(tmp_path), str(tmp_path / "out"), "--lease-seconds", "10"])

    assert result.exit_code == 2 and "sync.lease_seconds" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.allow_error_logs  # the broken input's failures
@pytest.mark.usefixtures("ray_cluster")
def test_a_failing_input_is_given_up_after_max_attempts_until_it_changes(tmp_path: Path):
    """A broken file fails once per sync, up to sync.max_attempts runs of that version; then sync
    leaves it alone and `pssr status` lists it; replaced by a good file (a new version), it is done."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "good.mp4", frames=6, size=(32, 24))
    (src / "broken.mp4").write_bytes(b"not a video")
    spec = spec_for(str(src), str(dst), **{"sync.max_attempts": 2})

    runs = [run_sync(spec, echo=quiet) for _ in range(3)]

    assert [sorted(r.videos_failed) for r in runs] == [["broken.mp4"], ["broken.mp4"], []]
    assert runs[2].videos_gave_up == ["broken.mp4"] and runs[2].videos_ok == []
    videos, _ = read_manifests(Storage(), str(dst))
    broken = sorted((r["attempt"], r["max_attempts"]) for r in videos.to_pylist() if r["video_key"] == "broken.mp4")
    assert broken == [(1, 2), (2, 2)]
    status = CliRunner().invoke(cli, ["status", str(dst)])
    assert "given up by pssr sync until their input changes:\n  broken.mp4: failed 2 times" in status.output

    make_clip(src / "broken.mp4", frames=6, size=(32, 24))  # a new version of the input
    fixed = run_sync(spec, echo=quiet)
    assert fixed.videos_ok == ["broken.mp4"] and fixed.videos_gave_up == []


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_outputs_of_deleted_inputs_are_reported_then_removed_on_request(tmp_path: Path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("kept.mp4", "dropped.mp4"):
        make_clip(src / name, frames=6, size=(32, 24))
    assert run_sync(spec_for(str(src), str(dst)), echo=quiet).ok
    (src / "dropped.mp4").unlink()
    orphan = dst / "dropped_x2.mp4"

    lines: list[str] = []
    reported = run_sync(spec_for(str(src), str(dst)), echo=lines.append)
    assert reported.orphans == [str(orphan)] and orphan.exists()
    assert f"orphan {orphan}: its input {src / 'dropped.mp4'} is gone; kept (--delete-orphans removes it)" in lines

    removed = run_sync(spec_for(str(src), str(dst), **{"sync.delete_orphans": True}), echo=quiet)
    assert removed.orphans == [str(orphan)] and removed.ok
    assert not orphan.exists() and not list(dst.glob("dropped_x2.mp4.*"))  # the sidecars too
    assert (dst / "kept_x2.mp4").exists() and (dst / "kept_x2.mp4.sha256").exists()
    videos, _ = read_manifests(Storage(), str(dst))
    record = [r for r in videos.to_pylist() if r["status"] == "removed"]
    assert [(r["video_key"], r["job_id"], r["output_uri"]) for r in record] == [
        ("dropped.mp4", removed.job_id, str(orphan))
    ]
    status = CliRunner().invoke(cli, ["status", str(dst)])
    assert "1 removed (input gone)" in status.output
    assert run_sync(spec_for(str(src), str(dst), **{"sync.delete_orphans": True}), echo=quiet).orphans == []
