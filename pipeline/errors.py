"""The base of the errors PS-SR raises on purpose: a caller catches `PssrError` to tell a refused
input, setting or store from a bug. Each error lives beside the code that raises it:

| error | what failed | where |
|---|---|---|
| `ConfigError` | a job or training setting | `pipeline/config.py` |
| `StorageError` | a local or S3 operation | `pipeline/storage/errors.py` |
| `MediaError` | reading, writing or remuxing a video | `pipeline/media/errors.py` |
| `WeightsError` | a weight file: missing, unregistered, altered | `pipeline/models/weights.py` |
| `TileError` | a tile too small for its model | `pipeline/models/tiling.py` |
| `ReferenceMismatch` | an HR reference that does not fit its input | `pipeline/plan.py` |
| `NotProvenanced` | a file without PS-SR's provenance tags | `pipeline/provenance.py` |
| `SourceError` | a training folder or file | `pipeline/training/sources.py` |
| `BenchError` | a benchmark run, whose figures would be partial | `jobs/bench/errors.py` |
"""

from __future__ import annotations


class PssrError(Exception):
    """Something PS-SR refuses or could not do; the message says what and why."""
