"""Peak resident memory of a process and all its descendants, read from Linux's /proc.

The kernel keeps each process's high-water mark of resident memory (`VmHWM` in
/proc/<pid>/status, shared-memory pages it touched included). A sampler thread walks the
process tree every `interval` seconds and keeps, per pid, the largest mark seen and the command
lines it ran under (Ray workers retitle themselves per task or actor), so processes that exit
before the end are counted up to their last sample. Benchmarks read the marks; nothing here
knows about Ray.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from jobs.bench.sampler import Sampler

PROC = Path("/proc")


@dataclass
class ProcessPeak:
    pid: int
    peak_bytes: int = 0
    titles: list[str] = field(default_factory=list)  # command lines seen, oldest first


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM), or None once it has exited."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    return None  # a zombie has no memory lines


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(root: int) -> list[int]:
    """Every live process under `root` (children, grandchildren, ...), from the ppid of each /proc entry."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class PeakRssSampler(Sampler):
    """Polls `root` and its descendants in a background thread; use as a context manager."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        if not PROC.joinpath("self", "status").exists():
            raise RuntimeError("peak RSS is read from /proc/<pid>/status: Linux only")
        self.root = root
        self.processes: dict[int, ProcessPeak] = {}
        self._lock = threading.Lock()
        super().__init__(interval, "peak-rss")

    def sample(self) -> None:
        """One pass over the tree now (call it once more just before the processes end)."""
        for pid in [self.root, *descendants(self.root)]:
            peak, title = peak_rss_bytes(pid), command_line(pid)
            if peak is None:
                continue
            with self._lock:
                record = self.processes.setdefault(pid, ProcessPeak(pid))
                record.peak_bytes = max(record.peak_bytes, peak)
                if title and title not in record.titles:
                    record.titles.append(title)

    def peaks(self) -> list[ProcessPeak]:
        with self._lock:
            return [ProcessPeak(p.pid, p.peak_bytes, list(p.titles)) for p in self.processes.values()]
