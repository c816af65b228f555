"""Local folders and S3 behind one interface, `Storage` (storage.py); the backends are local.py and
s3.py (with s3_reader.py and s3_writer.py), URIs in uris.py, failures and retries in errors.py."""

from pipeline.storage.errors import StorageError
from pipeline.storage.storage import Storage, Store
from pipeline.storage.uris import PIPELINE_AREA, ObjectInfo, is_s3, join_uri, relative_key, split_s3, to_local_path

__all__ = [
    "PIPELINE_AREA",
    "ObjectInfo",
    "Storage",
    "StorageError",
    "Store",
    "is_s3",
    "join_uri",
    "relative_key",
    "split_s3",
    "to_local_path",
]
