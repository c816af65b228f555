"""`pssr bench first-chunk`: time from `pssr run` to its first chunk, against the video's length.

A synthetic clip of the first length (a keyframe every `gop` frames, a cut every `scene_frames`)
is repeated by stream copy into the longer ones (built in seconds, kept between runs). For each
length, `pssr run` with the classical stand-ins (`bicubic`/`none`, x2: the models do not dominate)
runs in its own process until the first chunk lands in its staging, and is then stopped; the
fastest of `repeat` runs counts. Target: every length within `RATIO_TARGET` of the shortest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.bench.errors import BenchError
from jobs.bench.scale import make_long_clip
from jobs.bench.tables import Column, table

RATIO_TARGET = 1.2
FPS = 24  # make_long_clip's rate
FIRST_CHUNK_SCHEMA = pa.schema(
    [("minutes", pa.float64()), ("frames", pa.int64()), ("seconds", pa.float64()), ("ratio", pa.float64())]
)


def repeat_clip(src: Path, dst: Path, times: int) -> Path:
    """`src` played `times` times over, by stream copy (video only)."""
    if dst.exists():
        return dst
    with av.open(str(src)) as first:
        stream = first.streams.video[0]
        packets = [p for p in first.demux(stream) if p.size]
        end = max(p.pts + (p.duration or 0) for p in packets)  # type: ignore[operator]
        span = end - min(p.pts for p in packets)  # type: ignore[type-var]
    part = dst.with_suffix(".part.mp4")
    with av.open(str(part), "w") as out:
        copy = None
        for i in range(times):
            with av.open(str(src)) as source:
                stream = source.streams.video[0]
                copy = copy or out.add_stream_from_template(stream)
                for packet in source.demux(stream):
                    if packet.size:
                        packet.pts += i * span  # type: ignore[operator]
                        packet.dts += i * span  # type: ignore[operator]
                        packet.stream = copy
                        out.mux(packet)
    part.rename(dst)
    return dst


def time_to_first_chunk(clip: Path, out: Path, timeout_s: float) -> float:
    """Seconds from starting `pssr run` on `clip` to the first chunk in its staging; the run is then
    stopped (its process group: the driver and the Ray processes it started)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "jobs.cli.main", "run", str(clip), str(out), "--scale", "2"]
    command += ["--strong-model", "bicubic", "--light-model", "none"]
    started = time.monotonic()
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.monotonic() - started < timeout_s:
            if next((out / "_pssr" / "staging").glob("**/chunk_*"), None) is not None:
                return time.monotonic() - started
            if run.poll() is not None:
                raise BenchError(f"pssr run on {clip} ended (exit {run.returncode}) before a chunk was written")
            time.sleep(0.05)
        raise BenchError(f"pssr run on {clip} wrote no chunk in {timeout_s:.0f} s")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def bench_first_chunk(
    out: str,
    *,
    minutes: tuple[float, ...] = (1, 10, 60),
    width: int = 640,
    height: int = 360,
    gop: int = 48,
    scene_frames: int = 400,
    repeat: int = 2,
    timeout_s: float = 600,
    echo: Callable[[str], None] = print,
) -> bool:
    """Run the benchmark; print and write OUT/first_chunk.parquet and .md; True when the target is met."""
    root = Path(out)
    base_frames = round(minutes[0] * 60 * FPS)
    lengths = ", ".join(f"{m:g}" for m in minutes)
    echo(f"clip: {minutes[0]:g} min of {width}x{height} at {FPS} fps, repeated by stream copy to {lengths} min")
    base = make_long_clip(root, base_frames, width, height, gop, scene_frames)
    rows = []
    for length in minutes:
        times = round(length / minutes[0])
        clip = repeat_clip(base, base.with_name(f"{base.stem}_x{times}.mp4"), times) if times > 1 else base
        seconds = min(time_to_first_chunk(clip, root / "first-chunk-run", timeout_s) for _ in range(repeat))
        echo(f"  {length:g} min: first chunk after {seconds:.1f} s")
        rows.append({"minutes": float(length), "frames": base_frames * times, "seconds": seconds})
    for row in rows:
        row["ratio"] = row["seconds"] / rows[0]["seconds"]
    ok = all(row["ratio"] <= RATIO_TARGET for row in rows)
    columns: list[Column] = [("minutes", "minutes", "g"), ("frames", "frames", "d")]
    columns += [("first chunk s", "seconds", ".1f"), ("vs shortest", "ratio", ".2f")]
    text = table(rows, columns)
    verdict = f"every length within {RATIO_TARGET}x of the shortest: {'met' if ok else 'NOT met'}"
    echo(text + "\n" + verdict)
    pq.write_table(pa.Table.from_pylist(rows, FIRST_CHUNK_SCHEMA), root / "first_chunk.parquet")
    (root / "first_chunk.md").write_text(text + "\n\n" + verdict + "\n")
    return ok
