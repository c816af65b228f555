"""Peak disk use of a folder tree, sampled: what a job keeps on local scratch disk at its worst.

A sampler thread adds up the sizes of the files under the folder every `interval` seconds (files
that come and go between two samples are missed, so the figure is a lower bound, as any sampled
peak is) and keeps the largest total.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self


def tree_bytes(folder: str, skip: frozenset[str] = frozenset()) -> int:
    """Bytes in the files below `folder`, leaving out subfolders named in `skip`; files that vanish
    while being counted count as gone."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


class PeakDiskSampler:
    """`with PeakDiskSampler(folder) as s: ...` then `s.peak_bytes`."""

    def __init__(self, folder: str, interval: float = 0.1, skip: frozenset[str] = frozenset()) -> None:
        self.folder, self.interval, self.skip = folder, interval, skip
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, tree_bytes(self.folder, self.skip))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Self:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
