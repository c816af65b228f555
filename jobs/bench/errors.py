"""The benchmarks' error."""

from __future__ import annotations

from pipeline.errors import PssrError


class BenchError(PssrError, RuntimeError):
    """A measured run failed: its figures would be partial, or not those of the work asked for, so
    none are reported."""
