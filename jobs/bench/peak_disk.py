"""Peak disk use of a folder tree, sampled: what a job keeps on local scratch disk at its worst.

A sampler thread adds up the sizes of the files under the folder every `interval` seconds (files
that come and go between two samples are missed, so the figure is a lower bound, as any sampled
peak is) and keeps the largest total.
"""

from __future__ import annotations

import os

from jobs.bench.sampler import Sampler


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


class PeakDiskSampler(Sampler):
    """`with PeakDiskSampler(folder) as s: ...` then `s.peak_bytes`."""

    def __init__(self, folder: str, interval: float = 0.1, skip: frozenset[str] = frozenset()) -> None:
        self.folder, self.skip = folder, skip
        self.peak_bytes = 0
        super().__init__(interval, "peak-disk")

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, tree_bytes(self.folder, self.skip))

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.sample()
