"""Shared fixtures: a moto S3 server over HTTP, buckets and Storage objects; a guard that fails
any test during which the project logged an ERROR, and one that keeps Ray out of the fast tier
(`make test-fast` runs what is not marked `slow`)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import ray
from moto.server import ThreadedMotoServer

from pipeline.storage import Storage
from tests.s3_fault_proxy import S3FaultProxy

# Dummy credentials at import, before any fixture, so processes started later (Ray workers)
# inherit them; IMDS is off so no SDK waits on EC2 metadata for a region or credentials.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_name, _value)

_GUARDED_LOGGERS = ("pipeline", "actors", "jobs")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_error_logs: the test may log ERROR records on purpose")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the shared Ray cluster belongs to the slow tier: refuse the run when one is not marked so."""
    unmarked = [
        item.nodeid
        for item in items
        if "ray_cluster" in getattr(item, "fixturenames", ()) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError("these tests use the Ray cluster, mark them slow: " + ", ".join(unmarked))


@pytest.fixture(autouse=True)
def no_ray_in_fast_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked slow that starts Ray (a whole job does) fails, so the fast tier stays fast."""
    if request.node.get_closest_marker("slow") is None:

        def refuse(*args: object, **kwargs: object) -> None:
            pytest.fail("this test starts Ray: mark it slow (the fast tier runs no Ray)")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL (http://127.0.0.1:PORT) of a moto S3 server for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks a free one
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, uniquely named bucket on the moto server."""
    name = f"pssr-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(s3_server: str) -> Storage:
    return Storage(s3_endpoint_url=s3_server, region="us-east-1")


@pytest.fixture(params=["local", "s3"])
def storage_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, str]:
    """(Storage, empty root URI), once on a local folder and once on an S3 bucket."""
    if request.param == "local":
        return Storage(), str(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return request.getfixturevalue("s3_storage"), f"s3://{bucket}/root"


def _guarded(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR and any(
        record.name == name or record.name.startswith(name + ".") for name in _GUARDED_LOGGERS
    )


@pytest.fixture(autouse=True)
def no_error_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test that logged an ERROR from our packages, unless marked allow_error_logs."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [r for phase in ("setup", "call") for r in caplog.get_records(phase) if _guarded(r)]
    if errors:
        lines = "\n".join(f"  {r.name}: {r.getMessage()}" for r in errors)
        pytest.fail(f"ERROR logged during the test (mark it allow_error_logs if intended):\n{lines}")


@pytest.fixture
def s3_proxy(s3_server: str) -> Iterator[S3FaultProxy]:
    """A fault-injecting HTTP proxy in front of the moto server; point a Storage at `.url`."""
    with S3FaultProxy(s3_server) as proxy:
        yield proxy
