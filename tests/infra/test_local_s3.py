"""infra/local_s3.sh serves S3 on 127.0.0.1 at the port given and says where."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

SCRIPT = Path(__file__).parents[2] / "infra" / "local_s3.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses that have a socket listening on port (Linux's /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.fixture
def local_s3() -> Iterator[tuple[str, int]]:
    """The script's first line and the port it serves."""
    port = free_port()
    # Its own process group, so the server exec'd by the script is stopped with it.
    server = subprocess.Popen(
        ["bash", str(SCRIPT), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    yield server.stdout.readline().strip(), port
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def test_serves_s3_on_loopback_and_prints_the_endpoint(local_s3: tuple[str, int]) -> None:
    line, port = local_s3
    endpoint = f"http://127.0.0.1:{port}"
    assert line == f"S3 endpoint: {endpoint}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for _ in range(120):  # the server starts after the line is printed; wait for it, within a minute
        try:
            s3.create_bucket(Bucket="videos")
            break
        except EndpointConnectionError:
            time.sleep(0.5)
    else:
        pytest.fail(f"nothing answers at {endpoint}")
    assert listening_on(port) == {"127.0.0.1"}  # loopback only: nothing else on the network reaches it
    s3.put_object(Bucket="videos", Key="in/a.mp4", Body=b"frames")
    assert s3.get_object(Bucket="videos", Key="in/a.mp4")["Body"].read() == b"frames"
