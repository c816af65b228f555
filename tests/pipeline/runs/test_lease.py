"""Per-video leases on a local folder and on S3 (moto answering one request at a time, as S3
resolves racing conditional writes)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pipeline.runs.lease import Leases
from pipeline.storage import Storage, StorageError
from tests.serial_s3 import SerialS3Server


@pytest.fixture(scope="module")
def serial_s3() -> Iterator[str]:
    with SerialS3Server() as url:
        yield url


def _bucket(endpoint: str) -> str:
    name = f"pssr-lease-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, str]:
    """(Storage, output root) on a local folder and on an S3 bucket."""
    if request.param == "local":
        return Storage(), str(tmp_path / "out")
    endpoint = request.getfixturevalue("serial_s3")
    return Storage(s3_endpoint_url=endpoint, region="us-east-1"), f"s3://{_bucket(endpoint)}/out"


def leases(root: tuple[Storage, str], owner: str, seconds: float = 3600) -> Leases:
    storage, uri = root
    return Leases(storage, uri, owner, seconds)


def test_a_free_lease_is_taken_and_a_live_one_is_refused(root):
    first, second = leases(root, "run-1"), leases(root, "run-2")

    claim = first.acquire("shows/a.mp4")
    refused = second.acquire("shows/a.mp4")

    assert claim.acquired and claim.previous is None
    assert not refused.acquired
    assert (refused.previous.owner, refused.previous.live, refused.previous.video_key) == ("run-1", True, "shows/a.mp4")
    assert 3590 < refused.previous.left_s <= 3600
    assert first.held == ["shows/a.mp4"] and second.held == []
    assert first.uri("shows/a.mp4").startswith(root[1] + "/_pssr/leases/")
    assert second.acquire("shows/b.mp4").acquired  # leases are per video


def test_a_released_lease_keeps_the_outcome_and_is_free_again(root):
    first, second = leases(root, "run-1"), leases(root, "run-2")
    first.acquire("a.mp4")

    assert first.release("a.mp4", {"status": "ok", "input_version": "v1"})
    claim = second.acquire("a.mp4")

    assert first.held == [] and not first.release("a.mp4")  # released once
    assert claim.acquired
    assert (claim.previous.owner, claim.previous.released, claim.previous.live) == ("run-1", True, False)
    assert claim.previous.outcome == {"status": "ok", "input_version": "v1"}
    second.release_all()  # a run that stops early frees what it held, with no outcome
    after = second.read("a.mp4")
    assert (after.owner, after.released, after.outcome) == ("run-2", True, None)


def test_an_expired_lease_is_taken_over_and_its_old_holder_can_no_longer_write_it(root):
    crashed = leases(root, "crashed-run", seconds=0)  # expired as soon as it is written
    crashed.acquire("a.mp4")
    successor = leases(root, "run-2")

    claim = successor.acquire("a.mp4")
    crashed.renew()

    assert claim.acquired and claim.previous.owner == "crashed-run" and not claim.previous.live
    assert crashed.held == [] and crashed.lost == ["a.mp4"]
    assert not crashed.release("a.mp4", {"status": "failed"})
    now = successor.read("a.mp4")
    assert (now.owner, now.live) == ("run-2", True)


def test_renewal_rewrites_each_held_lease(root):
    holder = leases(root, "run-1")
    holder.acquire("a.mp4")
    holder.acquire("b.mp4")
    before = {key: holder.read(key).version for key in ("a.mp4", "b.mp4")}

    holder.renew()

    for key in ("a.mp4", "b.mp4"):
        renewed = holder.read(key)
        assert renewed.version != before[key] and (renewed.owner, renewed.live) == ("run-1", True)
    assert holder.lost == []


def test_the_renewal_thread_renews_until_the_block_ends(root):
    holder = leases(root, "run-1", seconds=0.3)  # renewed every 0.1 s
    holder.acquire("a.mp4")
    first = holder.read("a.mp4").version

    with holder.renewing():
        deadline = time.monotonic() + 30
        while holder.read("a.mp4").version == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
    last = holder.read("a.mp4").version
    time.sleep(0.5)

    assert holder.read("a.mp4").version == last  # the thread stopped with the block


@pytest.mark.parametrize("expired", [False, True], ids=["free", "expired"])
def test_of_many_runs_racing_for_one_lease_exactly_one_gets_it(root, expired: bool):
    if expired:
        leases(root, "crashed-run", seconds=0).acquire("a.mp4")
    runs = [leases(root, f"run-{i}") for i in range(8)]
    start = threading.Barrier(len(runs))
    claims: dict[str, bool] = {}

    def race(run: Leases) -> None:
        start.wait()
        claims[run.owner] = run.acquire("a.mp4").acquired

    threads = [threading.Thread(target=race, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [owner for owner, acquired in claims.items() if acquired]
    assert len(claims) == len(runs) and len(winners) == 1
    assert leases(root, "reader").read("a.mp4").owner == winners[0]


def test_the_store_check_passes_on_s3_and_leaves_nothing(serial_s3: str):
    storage = Storage(s3_endpoint_url=serial_s3, region="us-east-1")
    bucket = _bucket(serial_s3)

    Leases(storage, f"s3://{bucket}/out", "run-1", 3600).check_store()

    assert storage.list_uris(f"s3://{bucket}/out/") == []


def test_the_store_check_refuses_a_store_that_ignores_conditional_writes():
    with SerialS3Server(ignore_conditions=True) as endpoint:
        storage = Storage(s3_endpoint_url=endpoint, region="us-east-1")
        bucket = _bucket(endpoint)
        with pytest.raises(StorageError, match="ignored 'If-None-Match: \\*'"):
            Leases(storage, f"s3://{bucket}/out", "run-1", 3600).check_store()
        assert storage.list_uris(f"s3://{bucket}/out/") == []  # the probe is removed either way
