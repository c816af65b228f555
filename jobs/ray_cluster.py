"""Joining a Ray cluster, or starting a local one in-process (the embedded default)."""

from __future__ import annotations

import os
import sys

import ray

from pipeline.config import RaySpec


def connect(spec: RaySpec) -> None:
    """Use the Ray of this process if it is up (tests, `ray job submit`), else join or start one."""
    if not ray.is_initialized():
        # `ray job submit` sets RAY_ADDRESS: the job then joins the cluster it was sent to.
        if spec.address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=spec.address)
        else:
            ray.init(num_cpus=spec.num_cpus, include_dashboard=False)
    ctx = ray.data.DataContext.get_current()
    # Ray Data's progress bars are for people at a terminal; scheduled runs log plain lines.
    ctx.enable_progress_bars = sys.stderr.isatty()
