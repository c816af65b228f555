"""Log records of the `pssr` commands, on stderr: the running job's id on each, as text or JSON;
and the job's log file (JobLog), where everything else the driver prints goes."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

_job_id: str | None = None  # the job this process runs; one at a time


def set_job_id(job_id: str | None) -> None:
    """Put `job_id` on every log record from now on (jobs/run/reporters.py does it as a job starts)."""
    global _job_id
    _job_id = job_id


def file_only(record: logging.LogRecord) -> bool:
    """False for a record logged with `extra=FILE_ONLY`: detail for the job's log, not the console."""
    return getattr(record, "console", True)


FILE_ONLY = {"console": False}


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
    handler.addFilter(file_only)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # Like logging.basicConfig, a no-op when the root logger has handlers already (pytest's).
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def job_log_path(output: str, job_id: str) -> Path:
    """OUTPUT/_pssr/logs/JOB_ID.log for a local OUTPUT, beside the manifests; for an S3 OUTPUT, the
    same name in the temporary folder of the machine that runs the driver."""
    from pipeline.storage import PIPELINE_AREA, is_s3, join_uri  # late: boto3's import is slow, `pssr --help` needs none

    if is_s3(output):
        return Path(tempfile.gettempdir()) / "pssr-logs" / f"{job_id}.log"
    return Path(join_uri(output, PIPELINE_AREA, "logs", f"{job_id}.log"))


class JobLog:
    """The job's log file, and the console kept for pssr's own lines.

    As a context around a job (the CLI's `pssr run` and `pssr sync`): `console` is the process's
    stderr as it was. Once `open` names the file, file descriptor 2 points at it, so whatever else
    the driver writes to stderr lands there: Ray's and Ray Data's log lines, the C++ lines of
    Ray's core worker, Python warnings. The root logger's stderr handlers (configure_logging)
    write to `console` instead, and the file gets every pssr record as well (`FILE_ONLY` ones
    included). Left on exit. Without a real stderr (an in-memory stream: click's test runner)
    nothing is redirected and `console` is stderr.
    """

    def __init__(self) -> None:
        self.console: TextIO = sys.stderr
        self.path: Path | None = None
        self._saved_fd: int | None = None
        self._file: TextIO | None = None
        self._handler: logging.Handler | None = None
        self._moved: list[logging.StreamHandler] = []

    def __enter__(self) -> Self:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        sys.stderr.flush()
        self._saved_fd = os.dup(fd)
        self.console = os.fdopen(os.dup(self._saved_fd), "w", buffering=1, encoding="utf-8", errors="replace")
        return self

    def open(self, path: Path) -> None:
        """From now on, stderr goes to `path` (appended to) and pssr's records to the console and the file."""
        if self._saved_fd is None or self._file is not None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed on exit
        self.path = path
        sys.stderr.flush()
        os.dup2(self._file.fileno(), sys.stderr.fileno())
        root = logging.getLogger()
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.setStream(self.console)
                self._moved.append(handler)
        self._handler = logging.StreamHandler(self._file)
        self._handler.addFilter(JobIdFilter())
        self._handler.setFormatter(self._moved[0].formatter if self._moved else TextFormatter())
        root.addHandler(self._handler)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._saved_fd is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved_fd, sys.stderr.fileno())
        os.close(self._saved_fd)
        self._saved_fd = None
        for handler in self._moved:
            handler.setStream(sys.stderr)
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        if self._file is not None:
            self._file.close()
        self.console.close()
        self.console = sys.stderr
