"""The deployment files in infra/ against the code they deploy, offline (no docker, kubectl or cloud).

Every YAML parses and has the kind it should; every command line in them that runs `pssr` or `ray` is parsed by
that program's own click command (an unknown command, option or value fails, nothing runs); the job settings load
as a JobSpec with the project's loader; the pools ask for custom resources that exactly one worker group offers,
in amounts that let every actor be placed; and the versions pinned in the Dockerfile, the manifests, the cluster
launcher, pyproject.toml and the Makefile agree.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import click
import pytest
import yaml

from jobs.cli.main import cli as pssr_cli
from jobs.cli.options import RUN_FIELDS
from jobs.run.ray_cluster import IDLE_WORKER_S, LOCAL_SYSTEM_CONFIG
from pipeline.config import JobSpec, PoolSpec, load_job_spec

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
JOB_CONFIG = INFRA / "job.yaml"
# The Kubernetes objects each manifest holds; a new manifest must be listed here, which gets it checked.
MANIFEST_KINDS = {
    "kuberay/raycluster.yaml": [("ray.io/v1", "RayCluster")],
    "kuberay/rayjob.yaml": [("ray.io/v1", "RayJob")],
    "kuberay/sync-cronjob.yaml": [("batch/v1", "CronJob")],
    "kuberay/service-account.yaml": [("v1", "ServiceAccount")],
}
SEPARATORS = {";", "&&", "||", "|", "&"}


def load(relative: str) -> Any:
    return yaml.safe_load((INFRA / relative).read_text())


@pytest.fixture(scope="module")
def programs() -> dict[str, click.Group]:
    from ray.scripts.scripts import cli as ray_cli  # imported here: Ray's import is slow

    return {"pssr": pssr_cli, "ray": ray_cli}


# --- command lines, parsed by the programs' own click commands --------------------------------------------------


@dataclass
class Invocation:
    program: str
    command: tuple[str, ...]  # ("run",), ("job", "submit"), () when only --help ran
    params: dict[str, Any] = field(default_factory=dict)
    arguments: list[Any] = field(default_factory=list)  # the positional ones, in order (INPUT, OUTPUT)


def parse_argv(argv: list[str], programs: dict[str, click.Group]) -> Invocation:
    """Parse argv as its program would, down to the leaf command, without running it: click raises UsageError on an
    unknown command or option and BadParameter on a bad value. The leaf's callback is replaced by a recorder; a
    `--help` prints and stops as usual."""
    program, *args = argv
    seen: list[click.Context] = []

    def record(self: click.Command, ctx: click.Context) -> None:
        if not isinstance(self, click.Group):  # a group's own callback is skipped too; it only sets up logging
            seen.append(ctx)

    with mock.patch.object(click.Command, "invoke", record):
        exit_code = programs[program].main(args, prog_name=program, standalone_mode=False)
    if not seen:
        assert exit_code == 0, f"{shlex.join(argv)} exited {exit_code}"
        return Invocation(program, ())
    leaf = seen[-1]
    arguments = [leaf.params[p.name] for p in leaf.command.params if isinstance(p, click.Argument)]
    return Invocation(program, tuple(leaf.command_path.split()[1:]), leaf.params, arguments)


def localize(argv: list[str], mounts: dict[str, Path]) -> list[str]:
    """Container paths (a mounted folder and what is under it) replaced by the local files they come from, so click's
    exists=True checks see the real file."""

    def local(arg: str) -> str:
        for remote, here in mounts.items():
            if arg == remote or arg.startswith(remote.rstrip("/") + "/"):
                return str(here / Path(arg).relative_to(remote))
        return arg

    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(f"{name}={local(value)}" if eq and name.startswith("--") else local(arg))
    return out


def simple_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of shell lines (`ulimit -n 65536; ray start ...` -> two argv lists)."""
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        argv: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                if argv:
                    yield argv
                argv = []
            else:
                argv.append(token)
        if argv:
            yield argv


def check_command(argv: list[str], programs: dict[str, click.Group], mounts: dict[str, Path]) -> list[Invocation]:
    """Every pssr/ray invocation in argv, parsed; a `ray job submit` entrypoint is parsed as a command line too."""
    if argv[0] not in programs:
        return []
    found = [parse_argv(localize(argv, mounts), programs)]
    if found[0].command == ("job", "submit"):
        found += check_command(list(found[0].params["entrypoint"]), programs, mounts)
    return found


def spec_of(invocation: Invocation) -> JobSpec:
    """The JobSpec a parsed `pssr run/sync` would build: the YAML of --config, then the options, as jobs/cli/main.py does."""
    params = invocation.params
    overrides: dict[str, Any] = {"input": invocation.arguments[0], "output": invocation.arguments[1]}
    overrides.update({RUN_FIELDS[name]: value for name, value in params.items() if name in RUN_FIELDS})
    if overrides.get("scale"):
        overrides["scale"] = int(overrides["scale"])
    return load_job_spec(params["config"], overrides)


def test_the_checker_rejects_what_the_programs_reject(programs: dict[str, click.Group]) -> None:
    ok = parse_argv(["pssr", "run", "s3://a/", "s3://b/", "--scale", "2", "--ray-address", "auto"], programs)
    assert ok.command == ("run",) and ok.params["scale"] == "2" and ok.params["ray_address"] == "auto"
    for wrong in (
        ["pssr", "run", "s3://a/", "s3://b/", "--ray-adress", "auto"],  # unknown option
        ["pssr", "upscale", "s3://a/", "s3://b/"],  # unknown command
        ["pssr", "run", "s3://a/", "s3://b/", "--scale", "5"],  # value outside the choices
        ["pssr", "run", "s3://a/", "s3://b/", "--config", "/config/job.yaml"],  # no such file here
        ["pssr", "run", "s3://a/"],  # OUTPUT missing
        ["ray", "start", "--head", "--num-cpu=0"],
    ):
        with pytest.raises(click.UsageError):
            parse_argv(wrong, programs)
    with pytest.raises(click.UsageError):  # inside a `ray job submit` entrypoint too
        check_command(
            shlex.split("ray job submit --address http://h:8265 -- pssr run a b --strong-gpu 1"), programs, {}
        )
    assert parse_argv(["pssr", "--help"], programs).command == ()
    assert list(simple_commands("ulimit -n 1; ray stop && ray \\\n start --head  # comment\nray status &")) == [
        ["ulimit", "-n", "1"],
        ["ray", "stop"],
        ["ray", "start", "--head"],
        ["ray", "status"],
    ]


# --- the files parse and hold what they should -------------------------------------------------------------------


def test_every_manifest_has_its_kinds() -> None:
    found = {str(path.relative_to(INFRA)) for path in (INFRA / "kuberay").glob("*.y*ml")}
    assert found == set(MANIFEST_KINDS), "list a new manifest in MANIFEST_KINDS so that it is checked"
    for relative, kinds in MANIFEST_KINDS.items():
        docs = list(yaml.safe_load_all((INFRA / relative).read_text()))
        assert [(doc["apiVersion"], doc["kind"]) for doc in docs] == kinds, relative
        for doc in docs:
            assert doc["metadata"]["name"], relative


def test_every_yaml_in_infra_parses() -> None:
    paths = sorted(INFRA.rglob("*.y*ml"))
    assert len(paths) == len(MANIFEST_KINDS) + 2  # + the job settings and the cluster launcher's config
    for path in paths:
        assert all(isinstance(doc, dict) for doc in yaml.safe_load_all(path.read_text())), path


def env_entries(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "env" and isinstance(value, list):
                yield from value
            else:
                yield from env_entries(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from env_entries(item)


def test_no_credentials_are_written_in_a_manifest() -> None:
    for relative in MANIFEST_KINDS:
        for doc in yaml.safe_load_all((INFRA / relative).read_text()):
            for entry in env_entries(doc):
                assert not (re.search(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY", entry["name"]) and "value" in entry), (
                    f"{relative}: {entry['name']} is written out; take it from a Secret (valueFrom) or a role"
                )
    assert "aws_secret_access_key" not in (INFRA / "aws" / "cluster.yaml").read_text().lower()


# --- KubeRay -------------------------------------------------------------------------------------------------------


@dataclass
class NodeGroup:
    name: str
    max_nodes: int
    min_nodes: int
    resources: dict[str, float]  # what one node offers Ray: CPU, GPU and the custom resources


def cpu_quantity(value: str | int) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def ray_start_argv(group: dict[str, Any], head: bool) -> list[str]:
    """The `ray start` KubeRay makes of a group's rayStartParams: each value goes through a shell, as there."""
    argv = ["ray", "start", "--head" if head else "--address=pssr-head-svc:6379"]
    for name, value in group["rayStartParams"].items():
        argv += [f"--{name}={word}" for word in shlex.split(value)]
    return argv


def kuberay_groups(cluster_spec: dict[str, Any], programs: dict[str, click.Group]) -> list[NodeGroup]:
    groups = []
    for group, head in [(cluster_spec["headGroupSpec"], True)] + [(g, False) for g in cluster_spec["workerGroupSpecs"]]:
        params = parse_argv(ray_start_argv(group, head), programs).params
        (container,) = [c for c in group["template"]["spec"]["containers"] if c["name"].startswith("ray-")]
        limits = container["resources"]["limits"]
        assert container["resources"]["requests"] == limits, f"{container['name']}: requests = limits (Guaranteed)"
        offered = {
            "CPU": params["num_cpus"] if params["num_cpus"] is not None else cpu_quantity(limits["cpu"]),
            "GPU": params["num_gpus"] if params["num_gpus"] is not None else int(limits.get("nvidia.com/gpu", 0)),
        }
        offered.update(json.loads(params["resources"]) if params["resources"] else {})
        if head:
            groups.append(NodeGroup("head", 1, 1, offered))
        else:
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
            groups.append(NodeGroup(group["groupName"], group["maxReplicas"], group["minReplicas"], offered))
    return groups


def pools(spec: JobSpec) -> dict[str, PoolSpec]:
    return {"strong_pool": spec.strong_pool, "light_pool": spec.light_pool}


def check_pools_fit(spec: JobSpec, groups: list[NodeGroup]) -> None:
    """Each pool is pinned to exactly one group (its own), every actor of it can be placed on the group's nodes at
    their maximum count, and a pool on groups that start with no GPU states its num_gpus (its default is decided
    from the GPUs present when the job starts)."""
    hosts: dict[str, str] = {}
    for name, pool in pools(spec).items():
        assert pool.resources, f"{name} asks for no custom resource: its actors could land on any group"
        can_host = [g for g in groups if all(g.resources.get(r, 0) >= amount for r, amount in pool.resources.items())]
        assert len(can_host) == 1, f"{name} {pool.resources} fits groups {[g.name for g in can_host]}, not one"
        (group,) = can_host
        assert pool.num_gpus is not None or group.min_nodes > 0, f"{name}: state num_gpus ({group.name} starts empty)"
        asks = {**pool.resources, "CPU": pool.num_cpus, "GPU": pool.num_gpus or 0}
        per_node = min(math.floor(group.resources.get(r, 0) / amount + 1e-9) for r, amount in asks.items() if amount)
        assert per_node * group.max_nodes >= pool.size, (
            f"{name}: {pool.size} actors asking {asks} but {group.name} holds {per_node} per node x {group.max_nodes}"
        )
        hosts[name] = group.name
    assert len(set(hosts.values())) == len(hosts), f"the pools share a group: {hosts}"


def config_mounts(pod_spec: dict[str, Any]) -> dict[str, Path]:
    """Where the head finds the job settings: job.yaml in the mount of the ConfigMap pssr-job, which is made from
    infra/job.yaml."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    mounts = {}
    for container in pod_spec["containers"]:
        for mount in container.get("volumeMounts", []):
            if volumes[mount["name"]].get("configMap", {}).get("name") == "pssr-job":
                mounts[f"{mount['mountPath']}/job.yaml"] = JOB_CONFIG
    assert mounts, "the head does not mount the ConfigMap pssr-job"
    assert "--from-file=job.yaml=infra/job.yaml" in JOB_CONFIG.read_text()  # how that ConfigMap is made
    return mounts


def test_raycluster_pins_each_pool_to_its_worker_group(programs: dict[str, click.Group]) -> None:
    spec = load("kuberay/raycluster.yaml")["spec"]
    groups = kuberay_groups(spec, programs)
    assert [g.name for g in groups] == ["head", "strong", "light"]
    assert groups[0].resources["CPU"] == 0, "the head runs the drivers; tasks and actors go to the workers"
    assert all(g.resources["GPU"] >= 1 and g.min_nodes == 0 for g in groups[1:])
    check_pools_fit(load_job_spec(JOB_CONFIG, {"input": "s3://in/", "output": "s3://out/"}), groups)
    for group in [spec["headGroupSpec"]] + spec["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        in_memory = {v["name"] for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"}
        shm = [m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"] if m["name"] in in_memory]
        assert shm == ["/dev/shm"], f"{group.get('groupName', 'head')}: Ray's object store needs a large /dev/shm"
        assert pod["serviceAccountName"] == load("kuberay/service-account.yaml")["metadata"]["name"]


def test_the_pool_check_fails_a_pool_without_room(programs: dict[str, click.Group]) -> None:
    groups = kuberay_groups(load("kuberay/raycluster.yaml")["spec"], programs)
    spec = load_job_spec(JOB_CONFIG, {"input": "s3://in/", "output": "s3://out/"})
    for change in (
        {"strong_pool.size": spec.strong_pool.size + 1},  # one actor more than the strong nodes hold
        {"light_pool.resources": {"strong_pool": 1}},  # both pools on one group
        {"light_pool.resources": {"light_pool": 3}},  # more than a node offers
    ):
        changed = load_job_spec(JOB_CONFIG, {"input": "s3://in/", "output": "s3://out/", **change})
        with pytest.raises(AssertionError):
            check_pools_fit(changed, groups)
    with pytest.raises(AssertionError, match="state num_gpus"):
        check_pools_fit(spec.model_copy(update={"light_pool": PoolSpec(size=1, resources={"light_pool": 1})}), groups)


def test_rayjob_runs_pssr_on_the_raycluster_spec(programs: dict[str, click.Group]) -> None:
    rayjob = load("kuberay/rayjob.yaml")["spec"]
    assert rayjob["rayClusterSpec"] == load("kuberay/raycluster.yaml")["spec"]
    assert rayjob["shutdownAfterJobFinishes"] is True
    assert rayjob["backoffLimit"] >= 0 and rayjob["activeDeadlineSeconds"] > 0
    mounts = config_mounts(rayjob["rayClusterSpec"]["headGroupSpec"]["template"]["spec"])
    (invocation,) = check_command(shlex.split(rayjob["entrypoint"]), programs, mounts)
    assert invocation.command == ("run",) and invocation.params["ray_address"] == "auto"
    check_pools_fit(spec_of(invocation), kuberay_groups(rayjob["rayClusterSpec"], programs))

    broken = shlex.split(rayjob["entrypoint"].replace("--ray-address", "--ray-adress"))
    with pytest.raises(click.NoSuchOption):
        check_command(broken, programs, mounts)


def test_sync_cronjob_submits_pssr_sync_to_the_raycluster(programs: dict[str, click.Group]) -> None:
    cronjob = load("kuberay/sync-cronjob.yaml")["spec"]
    cluster = load("kuberay/raycluster.yaml")
    assert cronjob["concurrencyPolicy"] in ("Forbid", "Allow", "Replace") and len(cronjob["schedule"].split()) == 5
    pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    argv = container["command"] + container.get("args", [])
    mounts = config_mounts(cluster["spec"]["headGroupSpec"]["template"]["spec"])
    submit, sync = check_command(argv, programs, mounts)
    assert submit.command == ("job", "submit") and sync.command == ("sync",)
    assert submit.params["address"] == f"http://{cluster['metadata']['name']}-head-svc:8265"
    assert sync.params["ray_address"] == "auto"
    check_pools_fit(spec_of(sync), kuberay_groups(cluster["spec"], programs))


# --- the cluster launcher -------------------------------------------------------------------------------------------


def launcher_groups(config: dict[str, Any]) -> list[NodeGroup]:
    return [
        NodeGroup(name, node.get("max_workers", 1), node.get("min_workers", 1), node["resources"])
        for name, node in config["available_node_types"].items()
    ]


def test_cluster_launcher_config_is_valid_for_ray(programs: dict[str, click.Group]) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load("aws/cluster.yaml")
    validate_config(prepare_config(copy.deepcopy(config)))  # Ray's own schema and checks, as `ray up` runs them
    broken = copy.deepcopy(config)
    broken["available_node_types"]["strong"]["min_wokers"] = 1
    with pytest.raises(Exception, match="min_wokers"):
        validate_config(prepare_config(broken))

    assert config["provider"]["type"] == "aws"
    groups = launcher_groups(config)
    assert [g.name for g in groups] == [config["head_node_type"], "strong", "light"]
    check_pools_fit(load_job_spec(JOB_CONFIG, {"input": "s3://in/", "output": "s3://out/"}), groups)
    for remote, local in config["file_mounts"].items():
        assert (ROOT / local).exists(), f"file_mounts {remote}: {local} is not in the checkout"
    mounts = {remote: ROOT / local for remote, local in config["file_mounts"].items()}
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        for line in config[key]:
            for argv in simple_commands(line):
                check_command(argv, programs, mounts)


# --- versions that must agree -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def torch_pins(text: str) -> set[str]:
    return set(re.findall(r"torch==([\w.+]+)", text))


def test_versions_agree() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    (version,) = re.findall(r'^version = "(.+)"', pyproject, re.MULTILINE)
    (ray_pin,) = re.findall(r'"ray\[data\]==([^"]+)"', pyproject)
    (makefile_torch,) = torch_pins((ROOT / "Makefile").read_text())
    instructions = dockerfile_instructions()
    runtime_base = [arg for op, arg in instructions if op == "FROM"][-1]
    assert re.fullmatch(rf"rayproject/ray:{re.escape(ray_pin)}-py3\d+-cu\d+", runtime_base), runtime_base
    docker_runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert torch_pins(docker_runs) == {makefile_torch}

    launcher = load("aws/cluster.yaml")
    assert launcher["docker"]["image"] == runtime_base
    assert torch_pins(" ".join(launcher["setup_commands"])) == {makefile_torch}

    image = f"registry.example.com/pssr:{version}"
    cluster = load("kuberay/raycluster.yaml")
    assert cluster["spec"]["rayVersion"] == ray_pin
    for relative in MANIFEST_KINDS:
        for doc in yaml.safe_load_all((INFRA / relative).read_text()):
            for found in re.findall(r"image: (\S+)", yaml.safe_dump(doc)):
                assert found == image, f"{relative}: {found}, not the image of infra/Dockerfile ({image})"


def test_the_image_and_the_launcher_keep_idle_workers_as_a_local_cluster_does() -> None:
    setting = f"RAY_idle_worker_killing_time_threshold_ms={IDLE_WORKER_S * 1000}"
    assert setting.split("=") in [arg.split("=", 1) for op, arg in dockerfile_instructions() if op == "ENV"]
    launcher = load("aws/cluster.yaml")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [line for line in launcher[key] if "ray start" in line]
        assert f"export {setting};" in start
    assert LOCAL_SYSTEM_CONFIG["idle_worker_killing_time_threshold_ms"] == IDLE_WORKER_S * 1000


def test_dockerfile_default_command_is_a_pssr_command(programs: dict[str, click.Group]) -> None:
    instructions = dockerfile_instructions()
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    assert not [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert cmd[0] == "pssr"
    check_command(cmd, programs, {})
    assert [arg for op, arg in instructions if op == "USER"] == ["ray"]


# --- the command lines of the docs ---------------------------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "examples").glob("*.yaml"))]


def doc_command_lines(text: str, comments: bool = False) -> Iterator[list[str]]:
    """The simple commands of the ```sh blocks of a Markdown page (synopses with [OPTIONS] go in ```text blocks), or
    with `comments` (a YAML file) of its commented command lines; shell redirections (`> out.jsonl`, `2> log`) left out."""
    if comments:  # its comment lines that run a program, and their continuation lines
        lines: list[str] = []
        for line in text.splitlines():
            words = line.lstrip("# ")
            if line.startswith("#") and (words.startswith(("pssr ", "ray ")) or lines and lines[-1].endswith("\\")):
                lines.append(words)
        blocks = ["\n".join(lines)]
    else:
        blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    for block in blocks:
        yield from simple_commands(re.sub(r"\s\d?>>?\s*\S+", "", block))


@pytest.fixture(scope="module")
def doc_mounts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Where the docs' paths are: the KubeRay head's ConfigMap mount, the cluster launcher's copies, and the held-out
    photos that `python -m jobs.train.photos natural` fetches (docs/benchmarks.md) before a benchmark reads them."""
    return {
        **config_mounts(load("kuberay/raycluster.yaml")["spec"]["headGroupSpec"]["template"]["spec"]),
        **{remote: ROOT / local for remote, local in load("aws/cluster.yaml")["file_mounts"].items()},
        ".cache/bench-natural": tmp_path_factory.mktemp("bench-natural"),
    }


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_command_lines_are_valid(page: Path, programs: dict[str, click.Group], doc_mounts: dict[str, Path]) -> None:
    """Every `pssr` and `ray` command line of the README, docs/ and examples/ is one the program accepts, and the job
    settings a `pssr run`/`sync` line names load."""
    text = page.read_text()
    for path in re.findall(r"\binfra/[\w./-]+\w", text):
        assert (ROOT / path).exists(), f"{page.relative_to(ROOT)} names {path}, which is not in the checkout"
    for argv in doc_command_lines(text, comments=page.suffix == ".yaml"):
        for invocation in check_command(argv, programs, doc_mounts):
            if invocation.command in (("run",), ("sync",)):
                spec_of(invocation)


def test_doc_command_lines_cover_the_docs(programs: dict[str, click.Group], doc_mounts: dict[str, Path]) -> None:
    found: dict[str, list[tuple[str, ...]]] = {}
    for page in DOCS:
        for argv in doc_command_lines(page.read_text(), comments=page.suffix == ".yaml"):
            found.setdefault(page.name, []).extend(
                (i.program, *i.command) for i in check_command(argv, programs, doc_mounts)
            )
    assert found["cluster.md"].count(("pssr", "run")) == 2  # on the KubeRay cluster and on the launcher's
    assert {("ray", "up"), ("ray", "down"), ("ray", "job", "submit")} <= set(found["cluster.md"])
    assert {("pssr", "run"), ("pssr", "sync"), ("pssr", "status"), ("ray", "job", "submit")} <= set(found["README.md"])
    assert ("pssr", "run") in found["status-and-report.md"]  # after the redirections are left out
    assert ("pssr", "sync") in found["job.yaml"]
    assert ["pssr", "run", "a", "b"] in list(doc_command_lines("```sh\npssr run a b > x.jsonl 2> log\n```\n"))
