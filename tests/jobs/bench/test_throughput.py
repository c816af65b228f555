"""`pssr bench throughput`: the roofline and steady-rate arithmetic, the RRDBNet baseline, pools that
fit the CPUs, and one --quick run of the command on a tiny clip (real stages, a real job on its
own Ray cluster; no speed is asserted)."""

from __future__ import annotations

import math
import os

import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from jobs.bench.throughput.compute import mfu, peak_flops
from jobs.bench.throughput.e2e import pool_overrides, steady_fps
from jobs.bench.throughput.run import roofline
from jobs.bench.throughput.settings import CPU, GPU, STAGES
from jobs.cli.main import cli
from pipeline.config import load_job_spec
from pipeline.models.baselines import RRDBNet


def test_roofline_is_the_scarcer_resource() -> None:
    busy = {"decode": (CPU, 0.01), "strong": (GPU, 0.02), "light": (GPU, 0.03), "encode": (CPU, 0.05)}
    # CPU: 2 cores / 0.06 s = 33.3 frames/s; GPU: 1 / 0.05 s = 20 frames/s.
    ideal, bound = roofline(busy, {CPU: 2, GPU: 1})
    assert bound == GPU and ideal == pytest.approx(20.0)
    # Four GPUs move the bound to the CPUs: 1 core / 0.06 s against 4 / 0.05 s.
    ideal, bound = roofline(busy, {CPU: 1, GPU: 4})
    assert bound == CPU and ideal == pytest.approx(1 / 0.06)


def test_roofline_of_one_resource_sums_its_stages() -> None:
    ideal, bound = roofline({"a": (CPU, 0.1), "b": (CPU, 0.15), "c": (CPU, 0.25)}, {CPU: 2, GPU: 0})
    assert (bound, ideal) == (CPU, pytest.approx(4.0))  # 2 cores / 0.5 s per frame


def test_roofline_needs_the_units_of_every_resource() -> None:
    with pytest.raises(ValueError, match="gpu"):
        roofline({"strong": (GPU, 0.1)}, {CPU: 2})


def test_steady_rate_is_the_spacing_of_the_chunks_after_the_second() -> None:
    # The first 48-frame chunk lands 20 s in (start-up and the pipeline's fill), the second only
    # 3 s later (the first encode waited for its worker), then one every 8 s: 6 frames/s, whatever
    # the start-up, in whatever order the chunks are listed.
    chunks = [(1020.0, 48), (1039.0, 48), (1023.0, 48), (1031.0, 48), (1047.0, 48)]
    assert steady_fps(chunks) == pytest.approx(6.0)
    assert steady_fps([(1020.0, 48), (1028.0, 48)]) is None  # no interval after the second
    assert steady_fps([(1020.0, 48), (1021.0, 48), (1021.0, 8)]) is None


def test_rrdbnet_is_esrgan_x4plus() -> None:
    model = RRDBNet(scale=4)
    # Real-ESRGAN's RealESRGAN_x4plus.pth (64 features, 23 blocks, growth 32) holds 16,697,987 parameters.
    assert sum(p.numel() for p in model.parameters()) == 16_697_987
    assert "body.22.rdb3.conv5.weight" in model.state_dict() and "body.23.rdb1.conv1.weight" not in model.state_dict()
    with torch.no_grad():
        for scale in (2, 3, 4):
            out = RRDBNet(scale=scale, num_block=1)(torch.rand(2, 3, 10, 14))
            assert out.shape == (2, 3, 10 * scale, 14 * scale)
    with pytest.raises(ValueError, match="2, 3 or 4"):
        RRDBNet(scale=8)



def test_mfu_is_over_the_peak_of_the_arithmetic_the_pass_ran_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    gpu = torch.device("cuda")
    assert peak_flops(gpu, "bf16") == peak_flops(gpu, "fp16") == 989e12
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # torch's default: fp32 convolutions as TF32
    assert peak_flops(gpu, "fp32") == 495e12
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert peak_flops(gpu, "fp32") == 67e12
    tflops, utilisation = mfu(1.0, 1000.0, gpu, "fp32")  # 1 GMAC a frame at 1000 frames/s: 2 TFLOP/s
    assert tflops == pytest.approx(2.0) and utilisation == pytest.approx(2e12 / 67e12)
    assert math.isnan(peak_flops(torch.device("cpu"), "bf16")) and math.isnan(mfu(1.0, 1.0, torch.device("cpu"), "fp32")[1])

def test_pools_leave_room_for_a_task_on_two_cores() -> None:
    spec = load_job_spec(None, {"input": "-", "output": "-"})
    assert pool_overrides(spec, 1, cpus=2) == {"strong_pool.size": 1, "light_pool.size": 1}  # 0.5 + 0.5 + task 0.5
    two = pool_overrides(spec, 2, cpus=2)
    reserved = 2 * (two["strong_pool.num_cpus"] + two["light_pool.num_cpus"])
    assert reserved + spec.ray.task_cpus <= 2 and two["strong_pool.torch_threads"] == 1


@pytest.mark.slow  # real jobs, each in its own process and Ray cluster
def test_quick_run_writes_every_figure(tmp_path) -> None:
    out = tmp_path / "bench"
    config = tmp_path / "job.yaml"
    config.write_text("segment: {max_core_frames: 5}\n")  # four segments: a steady rate to measure
    args = ["bench", "throughput", "--quick", "--size", "64x36", "--out", str(out), "--object-store-mb", "150"]
    args += ["--config", str(config)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "throughput.parquet").to_pylist()

    def of(kind: str) -> dict[str, dict]:
        return {r["stage"]: r for r in rows if r["kind"] == kind}

    stages = of("stage")
    assert sorted(stages) == sorted(STAGES)
    assert all(r["fps"] > 0 and r["busy_s_per_frame"] == pytest.approx(1 / r["fps"]) for r in stages.values())
    (ideal,) = of("ideal").values()
    # On CPU every stage shares the cores: the roofline is the cores over the summed busy seconds.
    assert ideal["fps"] == pytest.approx(os.cpu_count() / sum(r["busy_s_per_frame"] for r in stages.values()))
    baselines = of("baseline")
    assert {"PyAV decode -> Lanczos-3 -> encode", "tiny+tiny", "SRVGGNetCompact", "RRDBNet"} <= set(baselines)
    assert baselines["RRDBNet"]["gmac_per_frame"] > baselines["SRVGGNetCompact"]["gmac_per_frame"] > 0
    assert math.isnan(baselines["RRDBNet"]["mfu"])  # no peak FLOP/s for a CPU
    e2e = of("e2e")
    assert {f"{pool}{run}" for pool in ("", "fused pool, ") for run in ("with start-up", "job", "steady")} == set(e2e)
    for run in e2e.values():
        assert run["frames"] == 16 and run["efficiency"] > 0
        assert run["efficiency"] <= 1.5 or run["stage"].endswith("steady")  # a few chunks make a coarse clock
    for prefix in ("", "fused pool, "):  # Ray's start and the imports come first, the pipeline's fill next
        assert e2e[prefix + "with start-up"]["seconds"] > e2e[prefix + "job"]["seconds"]
        assert e2e[prefix + "steady"]["fps"] > e2e[prefix + "job"]["fps"]
    assert (e2e["job"]["actors"], e2e["fused pool, job"]["actors"]) == (1, 2)
    assert len(of("fused")) == 2
    assert {"driver", "strong actor", "light actor"} <= set(of("rss"))
    report = (out / "throughput.md").read_text()
    assert "IDEAL" in report and "RRDBNet" in report and report in result.output


def test_cli_throughput_options() -> None:
    result = CliRunner().invoke(cli, ["bench", "throughput", "--help"])
    assert result.exit_code == 0
    for option in (
        "--scale",
        "--size",
        "--frames",
        "--strong",
        "--light",
        "--device",
        "--actors",
        "--lengths",
        "--quick",
    ):
        assert option in result.output
    bad = CliRunner().invoke(cli, ["bench", "throughput", "--scale", "5"])
    assert bad.exit_code == 2 and "2, 3 or 4" in bad.output
