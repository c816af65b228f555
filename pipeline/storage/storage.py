"""`Storage`: one set of methods over local paths and ``s3://`` URIs, each URI going to its
backend (`LocalStore` or `S3Store`). Ray-free and picklable: it travels to Ray workers.

Writes are atomic at their URI: S3 PUT and CompleteMultipartUpload are atomic, and local writes
go to a temp file that is `os.replace`d. A backend has the methods of `Store`; `Storage` routes
to one by the URI's scheme and does what is the same for all: extension filters, `exists`, and
the local side of downloads and uploads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, Protocol

import pyarrow.fs as pafs

from pipeline.storage.errors import StorageError
from pipeline.storage.local import LocalStore
from pipeline.storage.s3 import S3Store
from pipeline.storage.uris import ObjectInfo, is_s3, normalise_extensions, to_local_path


class Store(Protocol):
    """What a backend implements, on URIs of its own scheme (local paths: absolute)."""

    def list_videos(self, uri: str, exts: tuple[str, ...]) -> list[ObjectInfo]: ...
    def list_uris(self, prefix: str) -> list[str]: ...
    def list_folders(self, prefix: str) -> list[str]: ...
    def stat(self, uri: str) -> ObjectInfo | None: ...
    def open_read(self, uri: str, version: str | None = None) -> BinaryIO: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...
    def open_write(self, uri: str, content_type: str | None = None) -> AbstractContextManager[BinaryIO]: ...
    def download(self, uri: str, target: str) -> None: ...
    def upload(self, source: str, uri: str, content_type: str | None = None) -> None: ...
    def delete(self, uri: str) -> None: ...
    def delete_prefix(self, uri: str) -> None: ...
    def arrow_filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]: ...


class Storage:
    """Local folders and S3 behind one set of methods; the keyword arguments are the S3 backend's
    settings (`S3Store`: endpoint, region, encryption, storage class, checksums, timeouts)."""

    def __init__(self, s3_endpoint_url: str | None = None, region: str | None = None, **s3: Any) -> None:
        self.local = LocalStore()
        self.s3 = S3Store(s3_endpoint_url, region, **s3)

    def __repr__(self) -> str:
        return f"Storage({self.s3!r})"

    def _store(self, uri: str) -> Store:
        return self.s3 if is_s3(uri) else self.local

    # --- listing ---

    def list_videos(self, uri: str, extensions: Sequence[str]) -> list[ObjectInfo]:
        """The object at `uri` (any extension), or every matching object below the folder
        `uri`, sorted by uri, skipping the pipeline's own `_pssr/` areas."""
        return self._store(uri).list_videos(uri, normalise_extensions(extensions))

    def list_uris(self, prefix: str) -> list[str]:
        """Every object/file below the folder `prefix`, sorted; [] when there is none."""
        return self._store(prefix).list_uris(prefix)

    def list_folders(self, prefix: str) -> list[str]:
        """The names of the folders right below the folder `prefix` (S3: its common prefixes), sorted;
        [] when there is none. One request per thousand folders on S3, whatever lies below them."""
        return self._store(prefix).list_folders(prefix)

    # --- single objects ---

    def stat(self, uri: str) -> ObjectInfo | None:
        """Size and version of the object/file at `uri`, or None when there is none."""
        return self._store(uri).stat(uri)

    def exists(self, uri: str) -> bool:
        return self.stat(uri) is not None

    def open_read(self, uri: str, version: str | None = None) -> BinaryIO:
        """A seekable binary reader; on S3 it pins the object's ETag seen now. With `version` (as
        `list_videos` gave it), StorageError unless the object is still that version: work planned
        from a listing never reads what replaced the listed object."""
        return self._store(uri).open_read(uri, version)

    def read_bytes(self, uri: str) -> bytes:
        """The whole object; on S3 checked against its stored checksum when it has one."""
        return self._store(uri).read_bytes(uri)

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Atomic: readers see the old content or the new, never a partial object."""
        self._store(uri).write_bytes(uri, data)

    def open_write(self, uri: str, content_type: str | None = None) -> AbstractContextManager[BinaryIO]:
        """A seekable binary writer for `uri`, streamed to its store as it is written (no local
        copy on S3): the object appears whole when the block ends cleanly, and nothing appears
        when it raises."""
        return self._store(uri).open_write(uri, content_type)

    def download(self, uri: str, local_path: str) -> None:
        """Copy the object to a local file (created atomically; parent folders made)."""
        target = to_local_path(local_path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self._store(uri).download(uri, target)

    def upload(self, local_path: str, uri: str, content_type: str | None = None) -> None:
        """Copy a local file to `uri` atomically (multipart above the threshold on S3).

        On S3 the stored object is checked against the file: its size, and its full-object
        CRC32 unless `checksums` is off.
        """
        source = to_local_path(local_path)
        if not os.path.isfile(source):
            raise StorageError(f"{uri}: upload source {source} is not a file")
        self._store(uri).upload(source, uri, content_type)

    # --- deletion ---

    def delete(self, uri: str) -> None:
        """Remove one object/file; a missing one is fine."""
        self._store(uri).delete(uri)

    def delete_prefix(self, uri: str) -> None:
        """Remove everything below the folder `uri`; a missing folder is fine."""
        self._store(uri).delete_prefix(uri)

    # --- pyarrow ---

    def arrow_filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the path inside it, for `pyarrow.dataset` over `uri`."""
        return self._store(uri).arrow_filesystem(uri)
