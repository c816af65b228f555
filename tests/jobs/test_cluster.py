"""A real two-node Ray cluster on this machine, jobs sent with `ray job submit`, and node loss mid-job.

The head node offers the custom resource `strong_node` and a worker node `light_node`; the job
pins the strong pool to the first and the light pool to the second (PoolSpec.resources), so
every segment crosses nodes. Both nodes share this machine's file system, so local input and
output folders serve the job. The cluster has its own --temp-dir, ports and auth token; teardown
kills only its processes (a `ray stop` would stop every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.manifest.files import read_manifests
from pipeline.runs.attempts import MARKER_SUFFIX
from pipeline.runs.resume import RECORD_SUFFIX
from pipeline.storage import Storage
from tests.clips import make_clip

# Above the suite's 600 s per test: the first test's setup starts the cluster and runs a job, each
# with its own deadline and message below.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(1200)]

BIN = Path(sys.executable).parent  # this venv's `ray` and `pssr`
OBJECT_STORE_BYTES = 200 * 1024**2
START_TIMEOUT_S = 120
START_ATTEMPTS = 2
JOB_TIMEOUT_S = 420

# Lossless output, so frames compare exactly; short segments, so a job has seven of them.
SETTINGS = "scale: 2\nsegment: {max_core_frames: 4}\nencode: {codec: ffv1}\n"
# The strong pool on the head node, the light pool on the worker node.
POOLS_ACROSS_NODES = "strong_pool: {resources: {strong_node: 1}}\nlight_pool: {resources: {light_node: 1}}\n"
VIDEOS = {"a.mkv": "a_x2.mkv", "b.mkv": "b_x2.mkv"}


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process in /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                # The parent pid follows the command name, which is in parentheses and may hold spaces.
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            found[int(entry)] = (ppid, cmdline)
    return found


def with_descendants(roots: set[int], table: dict[int, tuple[int, str]]) -> set[int]:
    """`roots` and every process below them (Ray's workers are children of their node's raylet,
    titled `ray::...`: their command lines do not name the temp dir)."""
    tree, grew = set(roots), True
    while grew:
        below = {pid for pid, (ppid, _) in table.items() if ppid in tree} - tree
        tree |= below
        grew = bool(below)
    return tree


def kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class Node:
    resource: str  # the custom resource it offers
    raylet_pid: int


@dataclass
class Cluster:
    """`ray start --head` plus worker nodes joined with `ray start --address`, under one temp dir."""

    temp_dir: str
    gcs_port: int
    dashboard_port: int
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)

    @property
    def dashboard(self) -> str:
        """Where `ray job submit` and the state API reach the cluster (the dashboard's HTTP server)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _ray_start(self, args: list[str], resource: str) -> Node:
        for attempt in range(START_ATTEMPTS):
            manager, objects, agent, agent_grpc, runtime_env, metrics = free_ports(6)
            # Every port given: two nodes on one machine would both take Ray's fixed defaults.
            command = [
                str(BIN / "ray"), "start", *args, "--num-cpus", "2", "--resources", json.dumps({resource: 1}),
                "--object-store-memory", str(OBJECT_STORE_BYTES), "--temp-dir", self.temp_dir,
                "--node-ip-address", "127.0.0.1", "--node-manager-port", str(manager),
                "--object-manager-port", str(objects), "--dashboard-agent-listen-port", str(agent),
                "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port", str(runtime_env),
                "--metrics-export-port", str(metrics), "--disable-usage-stats",
            ]  # fmt: skip
            done = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
            )
            if done.returncode == 0:
                break
            # On a loaded machine a node's agents can miss the raylet's start-up deadline (it
            # then exits): try once more, after the pieces of a failed head are gone.
            if "--head" in args:
                self.stop()
            assert attempt + 1 < START_ATTEMPTS, f"ray start {args[0]} failed:\n{done.stdout}\n{done.stderr}"
        # `ray start` leaves the node's processes running on their own; its raylet is the one
        # listening on the node manager port chosen here.
        raylets = [
            pid
            for pid, (_, cmd) in processes().items()
            if cmd.split(" ", 1)[0].endswith("/raylet") and f"--node_manager_port={manager} " in f"{cmd} "
        ]
        assert len(raylets) == 1, f"expected one raylet on node manager port {manager}, found {raylets}"
        node = Node(resource, raylets[0])
        self.nodes.append(node)
        return node

    def start_head(self) -> Node:
        return self._ray_start(
            ["--head", "--port", str(self.gcs_port), "--dashboard-host", "127.0.0.1",
             "--dashboard-port", str(self.dashboard_port), "--include-dashboard", "true"],
            "strong_node",
        )  # fmt: skip

    def add_worker(self) -> Node:
        return self._ray_start(["--address", f"127.0.0.1:{self.gcs_port}"], "light_node")

    def lose(self, node: Node) -> None:
        """A node going away as a reclaimed spot instance does: its raylet dies without a word
        (its workers and agents follow it)."""
        kill({node.raylet_pid})
        self.nodes.remove(node)

    def stop(self) -> None:
        table = processes()
        ours = {pid for pid, (_, cmd) in table.items() if self.temp_dir in cmd and pid != os.getpid()}
        kill(with_descendants(ours, table))

    def submit(self, args: list[str], log: Path) -> subprocess.Popen:
        """`pssr run ARGS` sent with `ray job submit`, as users send it: the client follows the
        job's logs (into `log`) and exits 1 if the job failed."""
        command = [str(BIN / "ray"), "job", "submit", "--address", self.dashboard,
                   "--submission-id", f"pssr-test-{uuid.uuid4().hex[:8]}", "--",
                   "pssr", "run", *args, "--ray-address", "auto"]  # fmt: skip
        with log.open("w") as sink:
            return subprocess.Popen(command, env=self.env, stdout=sink, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    temp_dir = f"/tmp/pssr-cluster-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths must fit 107 bytes
    gcs_port, dashboard_port = free_ports(2)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    # Token authentication, as Ray sets up for local clusters, with this cluster's own token.
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex}
    # Health checks every second, not every few: a lost node is noticed in seconds (the same
    # mechanism, minus most of the wait).
    env |= {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "2000"}
    cluster = Cluster(temp_dir, gcs_port, dashboard_port, env)
    try:
        cluster.start_head()
        cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("inputs")
    make_clip(src / "a.mkv", frames=16, size=(48, 32))
    make_clip(src / "b.mkv", frames=12, size=(48, 32), audio_streams=1)
    return src


@pytest.fixture(scope="module")
def job_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "job.yaml"
    path.write_text(SETTINGS + POOLS_ACROSS_NODES)
    return path


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def finish(job: subprocess.Popen, log: Path) -> int:
    """The exit status of `ray job submit`, within JOB_TIMEOUT_S."""
    try:
        return job.wait(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"the job did not finish within {JOB_TIMEOUT_S} s; its log ends with:\n{log_tail(log)}")


def job_args(src: Path, out: Path, job_file: Path) -> list[str]:
    return [str(src), str(out), "--config", str(job_file)]


@pytest.fixture(scope="module")
def fault_free(cluster: Cluster, inputs: Path, job_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTPUT of the job run on the cluster without faults."""
    out = tmp_path_factory.mktemp("fault-free") / "out"
    log = out.parent / "job.log"
    returncode = finish(cluster.submit(job_args(inputs, out, job_file), log), log)
    assert returncode == 0, f"the job failed; its log ends with:\n{log_tail(log)}"
    return out


def decode_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def assert_same_frames(out: Path, expected: Path) -> None:
    for name in VIDEOS.values():
        assert np.array_equal(decode_frames(out / name), decode_frames(expected / name)), f"{name} differs"


def manifests(out: Path) -> tuple[list[dict], list[dict]]:
    """The manifest rows of the one job under `out`, after checking that every video is ok with
    every planned segment present exactly once."""
    videos, segments = (table.to_pylist() for table in read_manifests(Storage(), str(out)))
    assert {v["video_key"]: v["status"] for v in videos} == dict.fromkeys(VIDEOS, "ok")
    for video in videos:
        indices = sorted(s["segment_index"] for s in segments if s["video_key"] == video["video_key"])
        assert indices == list(range(video["segments"])), f"{video['video_key']}: segment rows {indices}"
        assert video["frames_out"] == video["frames_in"]
    return videos, segments


def ray_list(cluster: Cluster, what: str) -> list[dict]:
    """`ray list actors|nodes` (Ray's state API, through the dashboard), dead ones included."""
    done = subprocess.run(
        [str(BIN / "ray"), "list", what, "--address", cluster.dashboard, "--format", "json", "--detail",
         "--limit", "10000"],
        env=cluster.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"ray list {what} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def test_a_submitted_job_runs_each_pool_on_the_nodes_it_is_pinned_to(cluster: Cluster, fault_free: Path):
    videos, segments = manifests(fault_free)
    assert [v["segment_retries"] for v in videos] == [0, 0]
    assert {s["attempts"] for s in segments} == {1}

    offers = {node["node_id"]: set(node["resources_total"]) for node in ray_list(cluster, "nodes")}
    pinned = {"StrongStage": "strong_node", "LightStage": "light_node"}
    placed = [
        (stage, offers[actor["node_id"]])
        for actor in ray_list(cluster, "actors")
        for stage in pinned
        if stage in actor["class_name"]
    ]
    assert {stage for stage, _ in placed} == set(pinned), f"pool actors seen: {placed}"
    for stage, resources in placed:
        assert pinned[stage] in resources, f"a {stage} actor ran on a node offering only {sorted(resources)}"


def light_runs_unfinished(staging: Path) -> set[str]:
    """Segments (staging paths of their chunks) the light stage has started on, by its run
    markers, that have no chunk record yet: work that lives on the light node right now."""
    try:
        names = {str(p.relative_to(staging)) for p in staging.rglob("*")}
    except OSError:
        return set()  # a video finished meanwhile and its staging went away
    light = {n.rsplit(".", 3)[0] for n in names if n.endswith(MARKER_SUFFIX) and n.rsplit(".", 3)[1] == "light"}
    return {chunk for chunk in light if chunk + RECORD_SUFFIX not in names}


def test_losing_the_light_node_mid_job_loses_no_segment_and_changes_no_frame(
    cluster: Cluster, fault_free: Path, inputs: Path, job_file: Path, tmp_path: Path
):
    out, log = tmp_path / "out", tmp_path / "job.log"
    (light_node,) = [node for node in cluster.nodes if node.resource == "light_node"]
    job = cluster.submit(job_args(inputs, out, job_file), log)

    # Caught while the light node holds a segment's work (the light model running, or its output
    # waiting for the encode or being encoded), so that losing the node costs Ray a re-run.
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (in_flight := light_runs_unfinished(out / "_pssr" / "staging")):
        assert job.poll() is None, f"the job ended before the light node held any work:\n{log_tail(log)}"
        assert time.monotonic() < deadline, f"no light run started within {JOB_TIMEOUT_S} s:\n{log_tail(log)}"
        time.sleep(0.005)
    cluster.lose(light_node)
    cluster.add_worker()  # what an autoscaler does: a new node offering light_node, for the light pool

    returncode = finish(job, log)
    assert returncode == 0, f"the job failed after the node loss; its log ends with:\n{log_tail(log)}"
    videos, segments = manifests(out)
    assert_same_frames(out, fault_free)
    for video in videos:
        rows = [s for s in segments if s["video_key"] == video["video_key"]]
        assert video["segment_retries"] == sum(s["attempts"] - 1 for s in rows)
    assert sum(v["segment_retries"] for v in videos) >= 1, (
        f"no re-run was counted, though {sorted(in_flight)} were in flight on the lost node"
    )
