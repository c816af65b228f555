"""`pssr bench scale`: a long video's planning shared out over a cluster's CPUs.

A synthetic clip (`frames` frames of `width`x`height`, a keyframe every `gop` frames, a scene cut
every `scene_frames`) is planned on a local multi-node Ray cluster (`ray.cluster_utils.Cluster`,
`nodes` nodes of one CPU each), alternately by one task scanning it serially and by one task
sharing its ranges out as the job does (actors/plan.py: range_scanner), `repeat` times each; the
fastest of each counts. The plans must be identical and the shared one at least `SPEEDUP_TARGET`
times faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

from actors.plan import plan_stored_video, range_scanner
from jobs.bench.errors import BenchError
from jobs.bench.tables import Column, table
from pipeline.config import JobSpec, load_job_spec
from pipeline.plan import VideoPlan
from pipeline.storage import Storage

SPEEDUP_TARGET = 1.8
SCALE_SCHEMA = pa.schema(
    [("planning", pa.string()), ("nodes", pa.int32()), ("frames", pa.int64()), ("ranges", pa.string())]
    + [("seconds", pa.float64()), ("speedup", pa.float64()), ("same_plan", pa.bool_())]
)


def make_long_clip(out: Path, frames: int, width: int, height: int, gop: int, scene_frames: int) -> Path:
    """The clip (kept between runs: the same settings give the same file)."""
    from pipeline.media.synthetic import make_clip

    path = out / "clips" / f"long_{frames}f_{width}x{height}_g{gop}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part.mp4")
        make_clip(
            part,
            frames=frames,
            size=(width, height),
            gop=gop,
            scene_cut_at=list(range(scene_frames, frames, scene_frames)),
        )
        part.rename(path)
    return path


def _plan_timed(uri: str, spec: JobSpec, shared: bool) -> tuple[VideoPlan, float]:
    """One planning task, as the job's planning stage plans a video."""
    storage = Storage()
    started = time.perf_counter()
    scanner = range_scanner(storage, uri, spec) if shared else None
    plan, error = plan_stored_video(storage, uri, spec, 2, None, scanner)
    if plan is None:
        raise BenchError(f"planning {uri} failed: {error}")
    return plan, time.perf_counter() - started


def bench_scale(
    out: str,
    *,
    frames: int = 6000,
    width: int = 640,
    height: int = 360,
    gop: int = 50,
    scene_frames: int = 400,
    nodes: int = 3,
    range_frames: int = 750,
    repeat: int = 2,
    echo: Callable[[str], None] = print,
) -> bool:
    """Run the benchmark; print and write OUT/scale.parquet and OUT/scale.md; True when the target is met."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    echo(f"clip: {frames} frames of {width}x{height}, a keyframe every {gop}, a cut every {scene_frames}")
    clip = make_long_clip(root, frames, width, height, gop, scene_frames)
    spec = load_job_spec(
        None, {"input": str(clip), "output": str(root / "unused"), "segment.range_frames": range_frames}
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        task = ray.remote(num_cpus=1)(_plan_timed)
        times: dict[bool, list[float]] = {False: [], True: []}
        plans: dict[bool, VideoPlan] = {}
        for _ in range(repeat):
            for shared in (False, True):
                plans[shared], seconds = ray.get(task.remote(str(clip), spec, shared))
                times[shared].append(seconds)
                echo(f"  {'shared' if shared else 'serial'}: {seconds:.1f} s ({plans[shared].probe.planning})")
    finally:
        ray.shutdown()
        cluster.shutdown()
    serial, shared = plans[False], plans[True]
    same = (
        serial.segments == shared.segments
        and serial.seek_pts == shared.seek_pts
        and serial.probe.cuts == shared.probe.cuts
    )
    speedup = min(times[False]) / min(times[True])
    rows = [
        {"planning": "one task, serial", "seconds": min(times[False]), "speedup": 1.0, "ranges": serial.probe.planning},
        {
            "planning": f"shared over {nodes} nodes",
            "seconds": min(times[True]),
            "speedup": speedup,
            "ranges": shared.probe.planning,
        },
    ]
    rows = [{**row, "nodes": nodes, "frames": frames, "same_plan": same} for row in rows]
    ok = same and speedup >= SPEEDUP_TARGET
    columns: list[Column] = [("planning", "planning", "s"), ("scan", "ranges", "s"), ("seconds", "seconds", ".1f")]
    columns += [("speed-up", "speedup", ".2f")]
    text = table(rows, columns)
    verdict = f"plans identical: {'yes' if same else 'NO'}; speed-up {speedup:.2f} (target >= {SPEEDUP_TARGET}): {'met' if speedup >= SPEEDUP_TARGET else 'NOT met'}"
    echo(text + "\n" + verdict)
    pq.write_table(pa.Table.from_pylist(rows, SCALE_SCHEMA), root / "scale.parquet")
    (root / "scale.md").write_text(text + "\n\n" + verdict + "\n")
    return ok
