"""Joining a Ray cluster, or starting a local one in-process (the embedded default); and Ray
Data's memory warnings turned into one line that says what to change."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import ray

from jobs.run.logs import FILE_ONLY
from pipeline.config import RaySpec

log = logging.getLogger(__name__)

# A local cluster keeps idle workers this long (Ray's default: one second whenever the node has more
# workers than CPUs, which the pools' and Ray Data's actors alone make it). A task that then finds no
# idle worker starts a fresh process, importing PyAV, NumPy and the pipeline: measured with
# `pssr bench bucket`, short clips spent more CPU starting workers than working
# (docs/benchmarks.md#bucket). A job's tasks come one after another, so their workers stay busy.
IDLE_WORKER_S = 60
LOCAL_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": IDLE_WORKER_S * 1000}

# Where Ray Data logs the issues its detectors find (ray/data/_internal/issue_detection/): each a
# block of many lines about Ray Data's settings, every 30 s while it lasts.
ISSUES_LOGGER = "ray.data._internal.issue_detection.issue_detector_manager"


def connect(spec: RaySpec, verbose: bool = False) -> None:
    """Use the Ray of this process if it is up (tests, `ray job submit`), else join or start one.

    Unless `verbose`, Ray's own start-up and execution-plan lines stay in its log files and the
    workers' output in theirs (the session's logs folder) instead of being echoed by the driver:
    the job's console output is the job's progress and results.
    """
    level = logging.INFO if verbose else logging.WARNING
    if not ray.is_initialized():
        # `ray job submit` sets RAY_ADDRESS: the job then joins the cluster it was sent to.
        if spec.address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=spec.address, logging_level=level, log_to_driver=verbose)
        else:
            ray.init(
                num_cpus=spec.num_cpus,
                include_dashboard=False,
                logging_level=level,
                log_to_driver=verbose,
                _system_config=LOCAL_SYSTEM_CONFIG,
            )
    if not verbose:
        # Read by Ray Data each time a Dataset starts (its documented logging hook).
        os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(Path(__file__).with_name("ray_data_quiet_logging.yaml")))
    # The job shows its own progress (jobs/run/reporters.py); Ray Data's bars would fight its status line.
    ray.data.DataContext.get_current().enable_progress_bars = False
    issues = logging.getLogger(ISSUES_LOGGER)
    if not any(isinstance(f, MemoryNotice) for f in issues.filters):
        issues.addFilter(MemoryNotice())
    logs = ray._private.worker._global_node.get_logs_dir_path()
    log.info("Ray's session logs (the workers' output among them): %s", logs, extra=FILE_ONLY)


# The pool or task a Ray Data operator runs (jobs/run/dataset.py), and what bounds its memory.
_REMEDIES = {
    "FusedStage": ("the fused pool", "strong_pool"),
    "StrongStage": ("the strong pool", "strong_pool"),
    "LightStage": ("the light pool", "light_pool"),
}
_TASKS = "lower segment.max_core_frames (frames per segment) or raise ray.task_cpus (fewer tasks per node)"


def memory_advice(operator: str, peak: str) -> str:
    """One line: which stage's workers use `peak` memory each, and the settings that lower it."""
    for marker, (stage, pool) in _REMEDIES.items():
        if marker in operator:
            return (
                f"memory: {stage}'s workers use up to {peak} each, more than Ray plans for; if the node runs "
                f"short, lower {pool}.frames_per_pass or set a smaller {pool}.tile, or run fewer actors "
                f"({pool}.size, or more {pool}.num_cpus or num_gpus each)"
            )
    return f"memory: the decode or encode tasks ({operator}) use up to {peak} each; if the node runs short, {_TASKS}"


class MemoryNotice(logging.Filter):
    """On Ray Data's issue logger: its high-memory warning becomes one pssr warning per operator and
    job (the console's line, with what to change); every issue block is kept off Ray Data's console
    handler (`hide`, its documented switch) and goes whole to the job's log file only."""

    PATTERN = re.compile(r"Operator '(?P<operator>[^']+)' (?:uses|used) .*?up to\s+(?P<peak>[\d.]+\s*\w+)", re.S)

    def __init__(self) -> None:
        super().__init__()
        self.told: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        record.hide = True
        text = record.getMessage().strip()
        log.info("Ray Data: %s", text, extra=FILE_ONLY)
        found = self.PATTERN.search(text)
        if found and found["operator"] not in self.told:
            self.told.add(found["operator"])
            log.warning(memory_advice(found["operator"], " ".join(found["peak"].split())))
        return True
