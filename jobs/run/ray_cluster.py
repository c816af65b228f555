"""Joining a Ray cluster, or starting a local one in-process (the embedded default)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from pipeline.config import RaySpec


def connect(spec: RaySpec, verbose: bool = False) -> None:
    """Use the Ray of this process if it is up (tests, `ray job submit`), else join or start one.

    Unless `verbose`, Ray's own start-up and execution-plan lines stay in its log files: the
    job's console output is the job's progress and results.
    """
    level = logging.INFO if verbose else logging.WARNING
    if not ray.is_initialized():
        # `ray job submit` sets RAY_ADDRESS: the job then joins the cluster it was sent to.
        if spec.address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=spec.address, logging_level=level)
        else:
            ray.init(num_cpus=spec.num_cpus, include_dashboard=False, logging_level=level)
    if not verbose:
        # Read by Ray Data each time a Dataset starts (its documented logging hook).
        os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(Path(__file__).with_name("ray_data_quiet_logging.yaml")))
    # The job shows its own progress (jobs/run/reporters.py); Ray Data's bars would fight its status line.
    ray.data.DataContext.get_current().enable_progress_bars = False
