"""The local backend of `Storage`: files and folders, written atomically (a temp file renamed
into place), errors as StorageError naming the path."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from pipeline.storage.errors import check_version, local_errors
from pipeline.storage.uris import PIPELINE_AREA, MiB, ObjectInfo, to_local_path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class LocalStore:
    """Local paths and ``file://`` URIs behind the methods of `Storage`."""

    def list_videos(self, uri: str, exts: tuple[str, ...]) -> list[ObjectInfo]:
        path = to_local_path(uri)
        with local_errors(path):
            st = os.stat(path)
            if not os.path.isdir(path):
                return [_info(path, st)]
            videos = []
            for folder, dirs, files in os.walk(path, onerror=_raise):
                dirs[:] = [d for d in dirs if d != PIPELINE_AREA]
                for name in files:
                    if name.lower().endswith(exts):
                        full = os.path.join(folder, name)
                        videos.append(_info(full, os.stat(full)))
        return sorted(videos, key=lambda v: v.uri)

    def list_uris(self, prefix: str) -> list[str]:
        path = to_local_path(prefix)
        if not os.path.isdir(path):
            return []
        with local_errors(path):
            return sorted(
                os.path.join(folder, name) for folder, _, files in os.walk(path, onerror=_raise) for name in files
            )

    def list_folders(self, prefix: str) -> list[str]:
        path = to_local_path(prefix)
        if not os.path.isdir(path):
            return []
        with local_errors(path):
            return sorted(entry.name for entry in os.scandir(path) if entry.is_dir())

    def stat(self, uri: str) -> ObjectInfo | None:
        path = to_local_path(uri)
        with local_errors(path):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
        return None if os.path.isdir(path) else _info(path, st)

    def open_read(self, uri: str, version: str | None = None) -> BinaryIO:
        path = to_local_path(uri)
        with local_errors(path):
            if version is not None:
                check_version(path, _info(path, os.stat(path)).version, version)
            return open(path, "rb")

    def read_bytes(self, uri: str) -> bytes:
        path = to_local_path(uri)
        with local_errors(path):
            return Path(path).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = to_local_path(uri)
        with local_errors(path):
            _atomic_write(path, lambda f: f.write(data))

    @contextmanager
    def open_write(self, uri: str, content_type: str | None = None) -> Iterator[BinaryIO]:
        path = to_local_path(uri)
        with local_errors(path), _atomic_file(path) as f:
            yield f

    def download(self, uri: str, target: str) -> None:
        _copy(to_local_path(uri), target)

    def upload(self, source: str, uri: str, content_type: str | None = None) -> None:
        _copy(source, to_local_path(uri))

    def delete(self, uri: str) -> None:
        path = to_local_path(uri)
        with local_errors(path):
            Path(path).unlink(missing_ok=True)

    def delete_prefix(self, uri: str) -> None:
        path = to_local_path(uri)
        with local_errors(path):
            if os.path.isdir(path):
                shutil.rmtree(path)

    def arrow_filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        return pafs.LocalFileSystem(), to_local_path(uri)


def _info(path: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(uri=path, size=st.st_size, version=f"{st.st_mtime_ns}:{st.st_size}")


def _atomic_write(path: str, write: Callable[[BinaryIO], object]) -> None:
    with _atomic_file(path) as f:
        write(f)


@contextmanager
def _atomic_file(path: str) -> Iterator[BinaryIO]:
    """A temp file in the target's folder, renamed over the target when the block ends cleanly.

    The temp name starts with '.' so dataset readers (pyarrow ignores '.'/'_' names) skip it.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy(source: str, target: str) -> None:
    """Copy a local file; the target appears whole or not at all. Errors name the source."""
    with local_errors(source), open(source, "rb") as src:
        _atomic_write(target, lambda f: shutil.copyfileobj(src, f, 4 * MiB))


def _raise(exc: OSError) -> None:
    """os.walk error hook: fail instead of silently skipping unreadable folders."""
    raise exc
