"""keep_freed_memory: large blocks come from the heap, not from a fresh mmap each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.host_memory import keep_freed_memory

# Counts glibc's mmapped blocks (mallinfo2().hblks) around a 16 MiB malloc, in a fresh process.
_PROBE = """
import ctypes, ctypes.util, sys
from pipeline.host_memory import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblks
block = libc.malloc(16 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


def _mmapped_blocks(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not keep_freed_memory(), reason="no glibc malloc to tune")
def test_a_large_block_comes_from_the_heap_once_tuned() -> None:
    assert _mmapped_blocks("default") == 1  # glibc's own default: a fresh mmap for 16 MiB
    assert _mmapped_blocks("tuned") == 0
