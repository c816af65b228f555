"""Log records of the `pssr` commands, on stderr: the running job's id on each, as text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_job_id: str | None = None  # the job this process runs; one at a time


def set_job_id(job_id: str | None) -> None:
    """Put `job_id` on every log record from now on (jobs/run/reporters.py does it as a job starts)."""
    global _job_id
    _job_id = job_id


class JobIdFilter(logging.Filter):
    """Adds `job_id` to each record: the running job's, None before one starts."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _job_id
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [job ID]: message`; no job part before a job starts."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job = f" [job {job_id}]" if job_id else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ISO 8601, UTC), level, logger, job_id, message, and exc (a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "job_id": getattr(record, "job_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(verbose: bool, log_format: str) -> None:
    """Records at INFO (DEBUG if `verbose`) to stderr, as `log_format` ("text" or "json") says."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # Like logging.basicConfig, a no-op when the root logger has handlers already (pytest's).
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
